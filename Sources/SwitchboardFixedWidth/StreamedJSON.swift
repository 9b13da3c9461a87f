// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardTransform

/// A JSON document written as the parser walks the file, indented as
/// `JSONValue.prettySerialized()` indents it (the same bytes), and handed on in chunks: the
/// nested form of a file of any size in constant memory.
public final class StreamedJSON {
    private var buffer: [UInt8] = []
    private let emit: ([UInt8]) throws -> Void
    /// The open containers: whether each is an array, and how many members it has so far.
    private var open: [(array: Bool, count: Int)] = []
    /// A key was written and its value is due.
    private var keyed = false

    /// Chunks of about this many bytes go to `emit`.
    static let chunk = 1 << 20

    public init(emit: @escaping ([UInt8]) throws -> Void) {
        self.emit = emit
    }

    private var depth: Int { open.count }

    private func pad(_ levels: Int) {
        buffer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * levels))
    }

    /// Before a member of the innermost container: the separator and the indentation.
    private func beforeMember() {
        guard !open.isEmpty else { return }
        buffer.append(contentsOf: open[open.count - 1].count == 0 ? [UInt8(ascii: "\n")] : [UInt8(ascii: ","), UInt8(ascii: "\n")])
        open[open.count - 1].count += 1
        pad(depth)
    }

    /// Before a value: in an array it is a member; after a key it follows the key.
    private func beforeValue() {
        if keyed {
            keyed = false
        } else {
            beforeMember()
        }
    }

    func key(_ key: JSONKey) {
        beforeMember()
        JSONValue.writeString(key.text, into: &buffer)
        buffer.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
        keyed = true
    }

    func key(_ text: String) {
        key(JSONKey(text))
    }

    func beginObject() {
        beforeValue()
        buffer.append(UInt8(ascii: "{"))
        open.append((false, 0))
    }

    func beginArray() {
        beforeValue()
        buffer.append(UInt8(ascii: "["))
        open.append((true, 0))
    }

    /// Closes the innermost container (`{}` or `[]` when it stayed empty).
    func end() throws {
        guard let last = open.popLast() else { return }
        if last.count > 0 {
            buffer.append(UInt8(ascii: "\n"))
            pad(depth)
        }
        buffer.append(last.array ? UInt8(ascii: "]") : UInt8(ascii: "}"))
        if buffer.count >= Self.chunk { try flush() }
    }

    func value(_ value: JSONValue) throws {
        beforeValue()
        buffer.append(contentsOf: value.prettySerialized(indent: depth).utf8)
        if buffer.count >= Self.chunk { try flush() }
    }

    /// Hands on what is buffered.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        try emit(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

extension FixedWidthTextFormat {
    /// The member `convert --to json` adds to a document: how the text was laid out, so that
    /// writing the document back gives the same bytes.
    public static let member = "$text"

    public var json: JSONValue {
        .object([
            ("lineEnding", .string(lineEnding.rawValue)),
            ("finalLineEnding", .bool(finalLineEnding)),
            ("fillerRecords", .number(JSONNumber(fillerRecords))),
        ])
    }

    /// The format a document's `$text` member names, or nil when it has none (or it is not one).
    public init?(json document: JSONValue) {
        guard let format = document[Self.member], case .string(let ending)? = format["lineEnding"],
              let lineEnding = FixedWidthLayout.LineEnding(rawValue: ending), lineEnding != .auto,
              case .bool(let final)? = format["finalLineEnding"],
              case .number(let fillers)? = format["fillerRecords"], let count = fillers.int64, count >= 0
        else { return nil }
        self.init(lineEnding: lineEnding, finalLineEnding: final, fillerRecords: Int(count))
    }
}
