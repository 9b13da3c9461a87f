// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

/// A problem in a fixed-width file: where (line, record type, field and columns) and what.
public struct FixedWidthError: Error, Sendable, CustomStringConvertible {
    public var line: Int
    public var record: String?
    public var field: String?
    public var columns: String?
    public var message: String

    public var description: String {
        var place = "line \(line)"
        if let record { place += ", record \(record)" }
        if let field { place += ", field \(field)" }
        if let columns { place += " (\(columns))" }
        return "\(place): \(message)"
    }
}

/// How a file was laid out beyond its records, so that formatting gives the same bytes back.
public struct FixedWidthTextFormat: Sendable, Equatable {
    public var lineEnding: FixedWidthLayout.LineEnding
    /// Whether the last record ends with a line ending too.
    public var finalLineEnding: Bool
    /// Filler records after the last record of the structure.
    public var fillerRecords: Int

    public init(lineEnding: FixedWidthLayout.LineEnding = .lf, finalLineEnding: Bool = true, fillerRecords: Int = 0) {
        self.lineEnding = lineEnding
        self.finalLineEnding = finalLineEnding
        self.fillerRecords = fillerRecords
    }
}

/// Cuts bytes into records: at line endings, or every `record-length` bytes when the file
/// has none. Reads its source a chunk at a time.
struct RecordReader {
    let layout: FixedWidthLayout
    let next: () throws -> [UInt8]?
    private var buffer: [UInt8] = []
    private var position = 0
    private var finished = false
    private(set) var line = 0
    private(set) var ending: FixedWidthLayout.LineEnding?
    private(set) var lastHadEnding = true

    init(layout: FixedWidthLayout, next: @escaping () throws -> [UInt8]?) {
        self.layout = layout
        self.next = next
        if layout.lineEnding != .auto { ending = layout.lineEnding }
    }

    /// Makes sure `count` bytes past the position are buffered, if the source has them.
    private mutating func fill(_ count: Int) throws {
        while buffer.count - position < count, !finished {
            if position > 0, position > buffer.count / 2 {
                buffer.removeFirst(position)
                position = 0
            }
            if let chunk = try next() { buffer += chunk } else { finished = true }
        }
    }

    /// The next record's bytes, padded when the layout allows short lines, or nil at the end.
    mutating func nextRecord() throws -> [UInt8]? {
        let length = layout.recordLength
        try fill(length + 2)
        guard position < buffer.count else { return nil }
        line += 1
        if ending == nil {
            // Detect: a line ending right after the first record, else records back to back.
            // A line ending where the first record ends (or earlier, for a trimmed line) means
            // lines; none there means records back to back (perhaps with one final newline).
            if let newline = buffer[position...].firstIndex(of: 0x0A), newline - position <= length + 1 {
                ending = newline > position && buffer[newline - 1] == 0x0D ? .crlf : .lf
            } else {
                ending = FixedWidthLayout.LineEnding.none
            }
        }
        if ending == FixedWidthLayout.LineEnding.none {
            let rest = buffer[position...]
            if finished, rest.count <= 2, rest.last == 0x0A, rest.count == 1 || rest.first == 0x0D {
                // The newline some writers put after records without line breaks.
                position = buffer.count
                line -= 1
                lastHadEnding = true
                return nil
            }
            let end = min(position + length, buffer.count)
            let record = Array(buffer[position..<end])
            position = end
            lastHadEnding = false
            guard record.count == length || layout.padShortLines else {
                throw FixedWidthError(line: line, message: "the file ends with a record of \(record.count) characters; records are \(length)")
            }
            return record + Array(repeating: 0x20, count: length - record.count)
        }
        // Find the end of the line, reading more until it turns up.
        var searched = position
        var newline: Int?
        while newline == nil {
            newline = buffer[searched...].firstIndex(of: 0x0A)
            if newline != nil || finished { break }
            searched = buffer.count
            try fill(buffer.count - position + 65_536)
        }
        let end = newline ?? buffer.count
        var contentEnd = end
        if contentEnd > position, buffer[contentEnd - 1] == 0x0D { contentEnd -= 1 }
        var record = Array(buffer[position..<contentEnd])
        position = newline.map { $0 + 1 } ?? buffer.count
        lastHadEnding = newline != nil
        if record.count > length {
            throw FixedWidthError(line: line, message: "the line has \(record.count) characters; records are \(length)")
        }
        if record.count < length {
            guard layout.padShortLines else {
                throw FixedWidthError(line: line, message: "the line has \(record.count) characters; records are \(length) (short-lines: pad accepts lines whose trailing spaces were trimmed)")
            }
            record += Array(repeating: 0x20, count: length - record.count)
        }
        return record
    }
}

/// Parses records into JSON as the layout's structure nests them.
///
/// With `splitAt`, every value at that path (a group or record of the structure, or
/// `records` for a layout without one) is handed to `onPart` as soon as it is complete and
/// left out of the document: memory then holds one such value at a time, whatever the
/// file's size.
public struct FixedWidthParser {
    let layout: FixedWidthLayout
    var reader: RecordReader
    /// Fields kept from earlier records for `when` and `same-as`, by slot, and how often
    /// each slot changed (so a variant's `when` is worked out again only after a change).
    var context: [String?]
    var contextChanges: [Int]
    var whenChecked: [Int]
    var whenHolds: [Bool]
    let matcher: RecordMatcher
    let whenSlots: [Int]
    var lookahead: FixedWidthRecord?
    var looked = false
    var fillers = 0
    var rules: RuleState
    /// The structure item parts are split at (`splitsRecords`: the records of a layout
    /// without structure).
    let splitNode: Int?
    let splitsRecords: Bool
    let onPart: ((FixedWidthValue) throws -> Void)?
    /// Takes records that do not parse (no record type matches, or a field is wrong) so
    /// parsing goes on without them; nil: such a record stops the parse with its error.
    /// Rules still count only the records that parsed, so a control record's totals then
    /// fail where the layout has rules.
    let badRecord: ((_ error: FixedWidthError, _ bytes: [UInt8]) throws -> Void)?

    public init(
        layout: FixedWidthLayout,
        next: @escaping () throws -> [UInt8]?,
        splitAt path: [String]? = nil,
        onPart: ((FixedWidthValue) throws -> Void)? = nil,
        badRecord: ((_ error: FixedWidthError, _ bytes: [UInt8]) throws -> Void)? = nil
    ) {
        self.layout = layout
        self.reader = RecordReader(layout: layout, next: layout.ebcdic ? { try next().map(EBCDIC037.decoded) } : next)
        self.onPart = onPart
        self.badRecord = badRecord
        self.rules = RuleState(tables: layout.tables)
        let slots = layout.tables.slotCount
        context = Array(repeating: nil, count: slots)
        contextChanges = Array(repeating: 0, count: slots)
        whenChecked = Array(repeating: -1, count: layout.records.count)
        whenHolds = Array(repeating: false, count: layout.records.count)
        matcher = layout.matcher
        whenSlots = layout.tables.whenSlots
        if let path, onPart != nil {
            splitsRecords = layout.structure.isEmpty && path == ["records"]
            splitNode = layout.plan.node(at: path)?.id
        } else {
            splitsRecords = false
            splitNode = nil
        }
    }

    /// A parser of bytes held in memory.
    public init(
        layout: FixedWidthLayout,
        bytes: [UInt8],
        splitAt path: [String]? = nil,
        onPart: ((FixedWidthValue) throws -> Void)? = nil,
        badRecord: ((_ error: FixedWidthError, _ bytes: [UInt8]) throws -> Void)? = nil
    ) {
        var delivered = false
        self.init(layout: layout, next: {
            defer { delivered = true }
            return delivered ? nil : bytes
        }, splitAt: path, onPart: onPart, badRecord: badRecord)
    }

    /// Parses bytes held in memory.
    public static func parse(_ data: [UInt8], layout: FixedWidthLayout) throws -> (document: JSONValue, format: FixedWidthTextFormat) {
        var parser = FixedWidthParser(layout: layout, bytes: data)
        return try parser.parse()
    }

    /// Reads every record; returns the document (without the parts split off) and how the
    /// text was laid out.
    public mutating func parse() throws -> (document: JSONValue, format: FixedWidthTextFormat) {
        let members: [(key: JSONKey, value: FixedWidthValue)]
        if layout.structure.isEmpty {
            var records: [FixedWidthValue] = []
            while let next = try nextAccepted() {
                let value = FixedWidthValue.record(next, tagged: true)
                if splitsRecords, let onPart { try onPart(value) } else { records.append(value) }
            }
            members = [(layout.plan.recordsKey, .array(records))]
        } else {
            members = try parseItems(layout.plan.roots)
        }
        return (FixedWidthValue.object(members).json, try finish())
    }

    /// The next record, checked; one that fails goes to `badRecord` (when set) and is skipped.
    private mutating func nextAccepted() throws -> FixedWidthRecord? {
        while let next = try peek() {
            if try accepted(next) { return next }
        }
        return nil
    }

    /// Consumes and checks `record`: false when it failed and went to `badRecord`.
    private mutating func accepted(_ record: FixedWidthRecord) throws -> Bool {
        do {
            try consume(record)
            return true
        } catch let error as FixedWidthError where badRecord != nil {
            try badRecord?(error, record.bytes)
            return false
        }
    }

    /// Once the records are read: nothing may follow the structure, the file-wide rules
    /// must hold; returns how the text was laid out.
    private mutating func finish() throws -> FixedWidthTextFormat {
        if !layout.structure.isEmpty, let extra = try peek() {
            throw FixedWidthError(line: extra.line, record: extra.name, message: "a \(extra.name) record after the end of the file's structure")
        }
        if layout.checkRules { try rules.finish(fillers: fillers) }
        return FixedWidthTextFormat(lineEnding: reader.ending ?? .lf, finalLineEnding: reader.lastHadEnding, fillerRecords: fillers)
    }

    /// Reads every record and writes the document to `output` as it goes (the nested form
    /// in constant memory), ending it with a `$text` member saying how the text was laid out.
    /// Writes what `parse()` would return, pretty-printed, byte for byte, before that member.
    public mutating func stream(into output: StreamedJSON) throws -> FixedWidthTextFormat {
        output.beginObject()
        if layout.structure.isEmpty {
            output.key(layout.plan.recordsKey)
            output.beginArray()
            while let next = try nextAccepted() {
                try output.value(FixedWidthValue.record(next, tagged: true).json)
            }
            try output.end()
        } else {
            try streamItems(layout.plan.roots, into: output)
        }
        let format = try finish()
        output.key(FixedWidthTextFormat.member)
        try output.value(format.json)
        try output.end()
        try output.flush()
        return format
    }

    private mutating func streamItems(_ items: [StructureNode], into output: StreamedJSON) throws {
        for item in items {
            var found = 0
            while let next = try peek(), item.starts[next.layout.nameID] {
                if item.isRecord {
                    guard try accepted(next) else { continue }
                }
                if found == 0 {
                    output.key(item.key)
                    if item.repeats { output.beginArray() }
                }
                if item.isRecord {
                    try output.value(FixedWidthValue.record(next, tagged: false).json)
                } else {
                    rules.enter(item.scopeRules)
                    output.beginObject()
                    try streamItems(item.children, into: output)
                    try output.end()
                }
                found += 1
                if !item.repeats { break }
            }
            if found == 0 {
                guard item.optional else { throw try missing(item) }
                if item.repeats {
                    output.key(item.key)
                    output.beginArray()
                    try output.end()
                }
                continue
            }
            if item.repeats { try output.end() }
        }
    }

    /// The error for a required item that is not where it should be.
    private mutating func missing(_ item: StructureNode) throws -> FixedWidthError {
        let found = try peek()
        return FixedWidthError(
            line: found?.line ?? reader.line,
            record: found?.name,
            message: "expected \(item.firstNames.joined(separator: " or ")), found \(found.map { "a \($0.name) record" } ?? "the end of the file")"
        )
    }

    // MARK: Records

    private mutating func peek() throws -> FixedWidthRecord? {
        if looked { return lookahead }
        looked = true
        lookahead = nil
        while let bytes = try reader.nextRecord() {
            if let filler = layout.filler, bytes.first == filler.character, bytes.allSatisfy({ $0 == filler.character }) {
                fillers += 1
                continue
            }
            if fillers > 0 {
                throw FixedWidthError(line: reader.line, message: "a record after the filler records")
            }
            guard let record = match(bytes) else {
                let start = String(decoding: bytes.prefix(3), as: UTF8.self)
                let error = FixedWidthError(line: reader.line, message: "no record type of the layout matches this record (it starts with '\(start)')")
                guard let badRecord else { throw error }
                try badRecord(error, bytes)
                continue
            }
            lookahead = FixedWidthRecord(layout: record, bytes: bytes, line: reader.line, latin1: layout.latin1)
            break
        }
        return lookahead
    }

    /// The first record variant whose tags the bytes carry and whose `when` holds.
    private mutating func match(_ bytes: [UInt8]) -> RecordLayout? {
        let found: Int? = bytes.withUnsafeBufferPointer { bytes in
            for index in 0..<matcher.ranges.count where matcher.carriesTags(index, bytes) {
                if matcher.hasPatterns[index], !layout.records[index].matchesTags(UnsafeRawBufferPointer(bytes)) { continue }
                let slot = whenSlots[index]
                if slot < 0 { return index }
                if whenChecked[index] != contextChanges[slot] {
                    whenChecked[index] = contextChanges[slot]
                    whenHolds[index] = context[slot].map(layout.records[index].whenValues.contains) ?? false
                }
                if whenHolds[index] { return index }
            }
            return nil
        }
        return found.map { layout.records[$0] }
    }

    private mutating func consume(_ record: FixedWidthRecord) throws {
        looked = false
        lookahead = nil
        try record.withView { view in
            try record.validate(view)
            if layout.checkRules, !layout.rules.isEmpty {
                try rules.record(record, view, context: context)
            }
        }
        let tables = layout.tables
        for index in tables.keepRanges[record.layout.index] {
            let keep = tables.keeps[index]
            guard let value = record.member(keep.field) else { continue }
            context[keep.slot] = value.text
            contextChanges[keep.slot] += 1
        }
    }

    private mutating func parseItems(_ items: [StructureNode]) throws -> [(key: JSONKey, value: FixedWidthValue)] {
        var members: [(key: JSONKey, value: FixedWidthValue)] = []
        members.reserveCapacity(items.count)
        for item in items {
            var found = 0
            var kept: [FixedWidthValue] = []
            var single: FixedWidthValue?
            while let next = try peek(), item.starts[next.layout.nameID] {
                let value: FixedWidthValue
                if item.isRecord {
                    guard try accepted(next) else { continue }
                    value = .record(next, tagged: false)
                } else {
                    rules.enter(item.scopeRules)
                    value = .object(try parseItems(item.children))
                }
                found += 1
                if item.id == splitNode, let onPart {
                    try onPart(value)
                } else if item.repeats {
                    kept.append(value)
                } else {
                    single = value
                }
                if !item.repeats { break }
            }
            if found == 0 {
                guard item.optional else { throw try missing(item) }
                if item.repeats { members.append((item.key, .array([]))) }
                continue
            }
            if item.repeats {
                members.append((item.key, .array(kept)))
            } else if let single {
                members.append((item.key, single))
            }
        }
        return members
    }
}

extension StructureItem {
    var repeats: Bool {
        switch self {
        case .record(_, _, let repeats, _), .group(_, _, let repeats, _): repeats
        }
    }
}
