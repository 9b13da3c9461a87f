// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardTransform

/// A field as plain values (no references), for the loops that run once per record.
struct FieldPlan: Sendable {
    enum Code: UInt8, Sendable {
        case string, integer, decimal, date, constant, filler
    }

    /// 0-based, end exclusive.
    let lower: Int
    let upper: Int
    let code: Code
    let padding: UInt8
    let rightAligned: Bool
    let trim: Bool
    let required: Bool
    let signed: Bool
    /// Where the field's `"name":` is in the record's key bytes.
    let key: Range<Int>
    /// Where a constant field's value is in the record's constants.
    let constant: Range<Int>

    init(_ field: FieldLayout, key: Range<Int>, constant: Range<Int>) {
        lower = field.start - 1
        upper = field.start - 1 + field.length
        code = switch field.kind {
        case .string: .string
        case .integer: .integer
        case .decimal: .decimal
        case .date: .date
        case .constant: .constant
        case .filler: .filler
        }
        padding = field.padding
        rightAligned = field.alignment == .right
        trim = field.trim
        required = field.required
        signed = field.signed
        self.key = key
        self.constant = constant
    }
}

/// One record as read: its bytes and the layout variant they matched. Field values are read
/// from the bytes when asked for, and a record is written as JSON straight from its bytes.
public struct FixedWidthRecord: Sendable {
    let layout: RecordLayout
    let bytes: [UInt8]
    /// The line (or record number, without line endings) in the file.
    let line: Int
    /// ISO-8859-1 rather than UTF-8.
    let latin1: Bool

    var name: String { layout.name }

    private var fields: FixedWidthFields { FixedWidthFields(latin1: latin1) }

    /// The record's fields as a JSON object.
    var json: JSONValue {
        // A record is checked when it is read (`validate`), so this does not fail.
        (try? fields.parse(bytes, record: layout, line: line)) ?? .object([])
    }

    /// Field `index`'s value as the record's JSON object holds it (nil: left out).
    func member(_ index: Int) -> JSONValue? {
        (try? fields.value(of: layout.fields[index], in: bytes, record: layout, line: line)) ?? nil
    }

    /// Runs `body` with the record's bytes and field plan at hand.
    func withView<Result>(_ body: (RecordView) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { bytes in
            try layout.plan.withUnsafeBufferPointer { plan in
                try layout.constants.withUnsafeBufferPointer { constants in
                    try body(RecordView(bytes: bytes, plan: plan, constants: constants))
                }
            }
        }
    }

    /// Checks every field (constants, required values, digits, dates) and throws the first
    /// problem, as the JSON object would.
    func validate(_ view: RecordView) throws {
        // The slow way names the problem; it is only taken for a record with one (or a date).
        if !view.surelyValid { _ = try fields.parse(bytes, record: layout, line: line) }
    }

    /// Field `index` as an integer, as the rules read it (a number, or a string of digits and
    /// spaces); nil when it is neither.
    func integer(_ index: Int, _ view: RecordView) -> Int64? {
        if let fast = view.integer(index) { return fast }
        return RuleState.integer(member(index))
    }

    // MARK: Writing JSON

    /// Appends the record's JSON object (what `json` serializes to), optionally led by a
    /// `"$record": NAME` member.
    func write(into output: inout [UInt8], tag: JSONKey? = nil) {
        withView { view in
            layout.keyBytes.withUnsafeBufferPointer { keys in
                // Each field takes at most 6 bytes per byte (`\u00XX`) plus its key, quotes
                // and comma; fields that need more than copying are written apart first.
                let bound = 2 + keys.count + (tag.map { $0.bytes.count + layout.nameJSON.count } ?? 0) + view.plan.count * 3 + view.bytes.count * 6 + 8
                let base = output.count
                output.append(contentsOf: repeatElement(0, count: bound))
                let end = output.withUnsafeMutableBufferPointer { room in
                var writer = ByteWriter(room, at: base)
                writer.append(UInt8(ascii: "{"))
                var first = true
                if let tag {
                    writer.append(tag.bytes)
                    writer.append(layout.nameJSON)
                    first = false
                }
                for index in view.plan.indices {
                    let field = view.plan[index]
                    func key() {
                        if !first { writer.append(UInt8(ascii: ",")) }
                        first = false
                        writer.append(UnsafeBufferPointer(rebasing: keys[field.key]))
                    }
                    func slow() {
                        guard let value = member(index) else { return }
                        key()
                        var bytes: [UInt8] = []
                        value.write(into: &bytes)
                        writer.append(bytes)
                    }
                    switch field.code {
                    case .constant:
                        continue
                    case .filler:
                        guard view.bytes[field.lower..<field.upper].contains(where: { $0 != field.padding }) else { continue }
                        key()
                        writeText(field.lower..<field.upper, view, into: &writer)
                    case .string:
                        key()
                        writeText(view.trimmed(field), view, into: &writer)
                    case .integer where view.digits(field) == nil:
                        key()
                        writer.append(RecordView.null)
                    case .integer:
                        guard let small = view.smallInteger(field) else {
                            slow()
                            continue
                        }
                        key()
                        if small.range.isEmpty {
                            writer.append(UInt8(ascii: "0"))
                        } else {
                            if small.negative { writer.append(UInt8(ascii: "-")) }
                            writer.append(UnsafeBufferPointer(rebasing: view.bytes[small.range]))
                        }
                    case .decimal, .date:
                        slow()
                    }
                }
                writer.append(UInt8(ascii: "}"))
                return writer.position
                }
                output.removeLast(output.count - end)
            }
        }
    }

    /// Writes bytes as a JSON string: copied when they are printable ASCII without quotes or
    /// backslashes, else decoded and escaped as the JSON object's string would be.
    private func writeText(_ range: Range<Int>, _ view: RecordView, into writer: inout ByteWriter) {
        let text = UnsafeBufferPointer(rebasing: view.bytes[range])
        if !text.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            writer.append(UInt8(ascii: "\""))
            writer.append(text)
            writer.append(UInt8(ascii: "\""))
            return
        }
        var escaped: [UInt8] = []
        JSONValue.writeString(fields.text(ArraySlice(text)), into: &escaped)
        writer.append(escaped)
    }
}

/// Bytes written through a pointer into room made ahead (the caller knows the bound).
struct ByteWriter {
    private let room: UnsafeMutableBufferPointer<UInt8>
    private(set) var position: Int

    init(_ room: UnsafeMutableBufferPointer<UInt8>, at position: Int) {
        self.room = room
        self.position = position
    }

    mutating func append(_ byte: UInt8) {
        precondition(position < room.count)
        room[position] = byte
        position += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        precondition(position + bytes.count <= room.count)
        guard let source = bytes.baseAddress, let target = room.baseAddress else { return }
        (target + position).update(from: source, count: bytes.count)
        position += bytes.count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }
}

/// A record's bytes and its fields' plan, for reading values without copying or counting
/// references.
struct RecordView {
    let bytes: UnsafeBufferPointer<UInt8>
    let plan: UnsafeBufferPointer<FieldPlan>
    let constants: UnsafeBufferPointer<UInt8>

    static let null = Array("null".utf8)

    /// True when every field is surely valid; false sends the record the slow way (which
    /// also takes every record with a date).
    var surelyValid: Bool {
        for field in plan {
            switch field.code {
            case .filler:
                continue
            case .constant:
                guard bytes[field.lower..<field.upper].elementsEqual(constants[field.constant]) else { return false }
            case .date:
                return false
            case .string:
                guard field.required else { continue }
                guard bytes[trimmed(field)].contains(where: { $0 != 0x20 }) else { return false }
            case .integer, .decimal:
                guard let digits = digits(field) else {
                    if field.required { return false }
                    continue
                }
                guard !digits.range.isEmpty, bytes[digits.range].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            }
        }
        return true
    }

    /// The field's text as the JSON object holds it: without padding when the field trims.
    func trimmed(_ field: FieldPlan) -> Range<Int> {
        var lower = field.lower
        var upper = field.upper
        if field.trim {
            if field.rightAligned {
                while lower < upper, bytes[lower] == field.padding { lower += 1 }
            } else {
                while upper > lower, bytes[upper - 1] == field.padding { upper -= 1 }
            }
        }
        return lower..<upper
    }

    /// A number field's digits without surrounding spaces and sign; nil when blank.
    func digits(_ field: FieldPlan) -> (range: Range<Int>, negative: Bool)? {
        var lower = field.lower
        var upper = field.upper
        while lower < upper, bytes[lower] == 0x20 { lower += 1 }
        while upper > lower, bytes[upper - 1] == 0x20 { upper -= 1 }
        guard lower < upper else { return nil }
        var negative = false
        if field.signed, bytes[lower] == UInt8(ascii: "-") || bytes[lower] == UInt8(ascii: "+") {
            negative = bytes[lower] == UInt8(ascii: "-")
            lower += 1
        }
        return (lower..<upper, negative)
    }

    /// An integer field of at most 15 significant digits (what a JSON number holds exactly):
    /// its digits from the first that is not zero, and the sign; nil otherwise.
    func smallInteger(_ field: FieldPlan) -> (range: Range<Int>, negative: Bool)? {
        guard field.code == .integer, let digits = digits(field) else { return nil }
        var lower = digits.range.lowerBound
        while lower < digits.range.upperBound, bytes[lower] == UInt8(ascii: "0") { lower += 1 }
        guard digits.range.upperBound - lower <= 15 else { return nil }
        return (lower..<digits.range.upperBound, digits.negative)
    }

    /// Field `index` as the rules read an integer, when that can be told from the bytes
    /// alone (`.some(nil)`: not an integer); nil: ask the field's JSON value.
    func integer(_ index: Int) -> Int64?? {
        let field = plan[index]
        switch field.code {
        case .integer:
            guard let small = smallInteger(field) else { return .none }
            var value: Int64 = 0
            for digit in bytes[small.range] { value = value * 10 + Int64(digit - 0x30) }
            return .some(small.negative ? -value : value)
        case .string:
            var value: Int64 = 0
            var count = 0
            for byte in bytes[trimmed(field)] where byte != 0x20 {
                guard byte >= 0x30, byte <= 0x39, count < 18 else { return .some(nil) }
                value = value * 10 + Int64(byte - 0x30)
                count += 1
            }
            return .some(count > 0 ? value : nil)
        default:
            return .none
        }
    }

    /// Field `index`'s bytes packed into an integer, when the field is at most 8 bytes: the
    /// same packed bytes give the same value.
    func packed(_ index: Int) -> UInt64? {
        let field = plan[index]
        guard field.upper - field.lower <= 8 else { return nil }
        var key: UInt64 = 0
        for position in field.lower..<field.upper { key = key << 8 | UInt64(bytes[position]) }
        return key
    }

    /// Whether field `index` is a string field holding `weights.count` digits whose check
    /// digit (weights, modulo) is what field `checked` holds. False sends the check the slow
    /// way, which names the problem.
    func checkDigitHolds(_ checked: Int, of index: Int, weights: UnsafeBufferPointer<Int>, modulo: Int) -> Bool {
        guard plan[checked].code == .string, plan[index].code == .string, modulo > 0 else { return false }
        let digits = bytes[trimmed(plan[index])]
        guard digits.count == weights.count else { return false }
        var sum = 0
        for (digit, weight) in zip(digits, weights) {
            guard digit >= 0x30, digit <= 0x39 else { return false }
            sum += Int(digit - 0x30) * weight
        }
        var expected = (modulo - sum % modulo) % modulo
        let written = bytes[trimmed(plan[checked])]
        // Compare the written text with `expected` in decimal, last digit first.
        var position = written.endIndex
        repeat {
            position -= 1
            guard position >= written.startIndex, written[position] == UInt8(ascii: "0") + UInt8(expected % 10) else { return false }
            expected /= 10
        } while expected > 0
        return position == written.startIndex
    }
}

/// A value the parser hands out: a record, or the groups and lists around records. Written
/// as JSON straight from the records' bytes, or turned into a ``JSONValue``.
public enum FixedWidthValue: Sendable {
    /// A record; `tagged` leads its object with `"$record": NAME` (layouts without structure).
    case record(FixedWidthRecord, tagged: Bool)
    case object([(key: JSONKey, value: FixedWidthValue)])
    case array([FixedWidthValue])

    static let recordTag = JSONKey("$record")

    /// Appends the value's compact JSON text (what `json.write(into:)` gives).
    public func write(into output: inout [UInt8]) {
        switch self {
        case .record(let record, let tagged):
            record.write(into: &output, tag: tagged ? Self.recordTag : nil)
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                output.append(contentsOf: member.key.bytes)
                member.value.write(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.write(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        }
    }

    /// The value as JSON.
    public var json: JSONValue {
        switch self {
        case .record(let record, let tagged):
            guard tagged, case .object(let fields) = record.json else { return record.json }
            return .object([("$record", .string(record.name))] + fields)
        case .object(let members):
            return .object(members.map { ($0.key.text, $0.value.json) })
        case .array(let items):
            return .array(items.map(\.json))
        }
    }
}
