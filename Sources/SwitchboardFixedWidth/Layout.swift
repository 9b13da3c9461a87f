// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform
import SwitchboardYAML
import Yams

/// A fixed-width file layout, compiled once from YAML: record types told apart by a tag,
/// fields by position, and the structure that nests records into groups.
///
/// ```yaml
/// record-length: 94
/// line-ending: auto            # lf, crlf, none (records back to back) or auto (detect)
/// short-lines: error           # or pad: lines that lost their trailing spaces are padded
/// filler: { char: "9", block: 10 }   # records of only this character after the end, to a multiple of block
/// records:
///   - name: fileHeader
///     tag: { start: 1, value: "1" }
///     fields:
///       - { name: recordType, start: 1, length: 1, const: "1" }
///       - { name: fileCreationDate, start: 24, length: 6, type: date, format: yyMMdd }
/// structure:
///   - record: fileHeader
///   - group: batches
///     repeat: true
///     items: [ { record: batchHeader }, { record: batchControl } ]
/// ```
public struct FixedWidthLayout: Sendable {
    public enum LineEnding: String, Sendable {
        case auto, lf, crlf, none
    }

    public var name: String
    public var recordLength: Int
    public var lineEnding: LineEnding
    /// Whether lines that lost their trailing spaces are padded back (`short-lines: pad`);
    /// callers may override the layout's choice.
    public var padShortLines: Bool
    /// ISO-8859-1 (one byte, one character) rather than UTF-8; callers may override.
    public var latin1 = false
    /// EBCDIC code page 037: bytes are mapped to ISO-8859-1 when read and back when written.
    public var ebcdic = false
    /// Whether the layout's `rules:` are checked while parsing (on unless turned off).
    public var checkRules = true
    public var filler: Filler?
    var records: [RecordLayout]
    var structure: [StructureItem]
    var rules: [LayoutRule] = []
    /// The rules and `when` conditions, arranged for streaming (built when the layout loads).
    var tables = RuleTables(rules: [], records: [])
    /// The structure as the parser walks it (built when the layout loads).
    var plan = StructurePlan(structure: [], records: [], tables: RuleTables(rules: [], records: []))
    var matcher = RecordMatcher(records: [])

    public struct Filler: Sendable {
        public var character: UInt8
        public var block: Int
    }

    /// Loads a layout file.
    ///
    /// - Throws: ``ConfigurationError`` with every problem at its `file:line:column`.
    public init(path: String) throws {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: path, line: 1, column: 1), "cannot read the layout file")])
        }
        let text: String
        do {
            text = try YAMLComposer.text(Array(bytes))
        } catch let error as YAMLInvalidUTF8 {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: path, line: error.line, column: error.column), error.description)])
        }
        try self.init(yaml: text, file: path)
    }

    public init(yaml: String, file: String = "layout.yaml") throws {
        var loader = LayoutLoader(file: file)
        guard let layout = loader.load(yaml) else {
            throw ConfigurationError(loader.diagnostics)
        }
        self = layout
    }

    init(name: String, recordLength: Int, lineEnding: LineEnding, padShortLines: Bool, filler: Filler?, records: [RecordLayout], structure: [StructureItem]) {
        self.name = name
        self.recordLength = recordLength
        self.lineEnding = lineEnding
        self.padShortLines = padShortLines
        self.filler = filler
        self.records = records
        self.structure = structure
    }
}

/// One record type (or one variant of it: several may share a name and differ by `when`).
final class RecordLayout: @unchecked Sendable {
    // @unchecked: immutable once the layout has loaded (the loader numbers the records); the
    // compiled tag patterns are only read.
    let name: String
    /// Every (1-based position, text) the record must hold to be this type.
    let tags: [(start: Int, value: [UInt8])]
    /// Regular expressions the record's text must match (tags written as { pattern: … }).
    let patterns: [Regex<AnyRegexOutput>]
    /// Another record's field that must hold one of `whenValues` for this variant to apply.
    let whenRecord: String?
    let whenField: String?
    let whenValues: [String]
    let fields: [FieldLayout]
    /// The fields as plain values (no references), for the per-record loops.
    let plan: [FieldPlan]
    /// Each field's JSON key, `"name":`, one after another (`FieldPlan.key` ranges into it).
    let keyBytes: [UInt8]
    /// The constant fields' values, one after another (`FieldPlan.constant` ranges into it).
    let constants: [UInt8]
    /// The record's name as a JSON string, for `"$record": NAME`.
    let nameJSON: [UInt8]
    let line: Int
    /// Position among the layout's records (variants counted apart), set by the loader.
    var index = 0
    /// Position of `name` among the layout's distinct record names, set by the loader.
    var nameID = 0

    init(
        name: String, tags: [(start: Int, value: [UInt8])], patterns: [Regex<AnyRegexOutput>] = [],
        whenRecord: String?, whenField: String?, whenValues: [String], fields: [FieldLayout], line: Int
    ) {
        self.name = name
        self.tags = tags
        self.patterns = patterns
        self.whenRecord = whenRecord
        self.whenField = whenField
        self.whenValues = whenValues
        self.fields = fields
        self.line = line
        var keyBytes: [UInt8] = []
        var constants: [UInt8] = []
        var plan: [FieldPlan] = []
        for field in fields {
            let keyStart = keyBytes.count
            JSONValue.writeString(field.name, into: &keyBytes)
            keyBytes.append(UInt8(ascii: ":"))
            let constantStart = constants.count
            if case .constant(let value) = field.kind { constants += value }
            plan.append(FieldPlan(field, key: keyStart..<keyBytes.count, constant: constantStart..<constants.count))
        }
        self.plan = plan
        self.keyBytes = keyBytes
        self.constants = constants
        var nameJSON: [UInt8] = []
        JSONValue.writeString(name, into: &nameJSON)
        self.nameJSON = nameJSON
    }

    /// The index of the field named `name` in `fields`, if the record has one.
    func fieldIndex(_ name: String) -> Int? {
        fields.firstIndex { $0.name == name }
    }

    /// Whether the record carries this variant's tags and patterns (`when` is checked apart).
    func matchesTags(_ record: UnsafeRawBufferPointer) -> Bool {
        for tag in tags {
            guard tag.start - 1 + tag.value.count <= record.count else { return false }
            for (offset, byte) in tag.value.enumerated() where record[tag.start - 1 + offset] != byte { return false }
        }
        if !patterns.isEmpty {
            var text = ""
            text.unicodeScalars.append(contentsOf: record.map { Unicode.Scalar($0) })
            for pattern in patterns where (try? pattern.firstMatch(in: text)) == nil { return false }
        }
        return true
    }
}

struct FieldLayout: Sendable {
    enum Kind: Sendable, Equatable {
        case string
        case integer
        case decimal(Int)
        /// Compiled when the layout loads.
        case date(DateLayout)
        case constant([UInt8])
        case filler
    }

    enum Alignment: Sendable {
        case left, right
    }

    var name: String
    var start: Int
    var length: Int
    var kind: Kind
    var alignment: Alignment
    var padding: UInt8
    var trim: Bool
    var required: Bool
    var signed: Bool

    var columns: String { "columns \(start)-\(start + length - 1)" }
}

indirect enum StructureItem: Sendable {
    case record(name: String, key: String, repeats: Bool, optional: Bool)
    case group(name: String, items: [StructureItem], repeats: Bool, optional: Bool)

    var key: String {
        switch self {
        case .record(_, let key, _, _): key
        case .group(let name, _, _, _): name
        }
    }

    /// The record names that can start this item.
    var firstRecords: [String] {
        switch self {
        case .record(let name, _, _, _): return [name]
        case .group(_, let items, _, _):
            var names: [String] = []
            for item in items {
                names += item.firstRecords
                if !item.isOptional { break }
            }
            return names
        }
    }

    var isOptional: Bool {
        switch self {
        case .record(_, _, _, let optional), .group(_, _, _, let optional): optional
        }
    }
}

/// Reads a layout YAML file into a ``FixedWidthLayout``, collecting every problem.
struct LayoutLoader {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) {
        self.file = file
    }

    mutating func error(_ node: Node?, _ message: String) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(at: SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1), message))
    }

    mutating func load(_ yaml: String) -> FixedWidthLayout? {
        let root: Node
        do {
            guard let composed = try YAMLComposer.compose(yaml) else {
                error(nil, "the layout file is empty")
                return nil
            }
            root = composed
        } catch let expansion as YAMLAliasExpansion {
            diagnostics.append(Diagnostic(at: SourceLocation(file: file, line: expansion.line, column: expansion.column), expansion.description))
            return nil
        } catch {
            self.error(nil, "not valid YAML: \(error)")
            return nil
        }
        guard let mapping = root.mapping else {
            error(root, "a layout is a mapping with record-length, records and structure")
            return nil
        }
        let known = ["name", "record-length", "line-ending", "short-lines", "filler", "encoding", "records", "structure", "rules", "description"]
        for key in mapping.keys {
            if let name = key.string, !known.contains(name) { error(key, "unknown layout key '\(name)'; known: \(known.joined(separator: ", "))") }
        }
        let recordLength = mapping["record-length"]?.int ?? 0
        if recordLength <= 0 { error(mapping["record-length"] ?? root, "'record-length' must be a positive integer") }
        var lineEnding = FixedWidthLayout.LineEnding.auto
        if let node = mapping["line-ending"] {
            if let value = node.string.flatMap(FixedWidthLayout.LineEnding.init(rawValue:)) { lineEnding = value } else { error(node, "'line-ending' is auto, lf, crlf or none") }
        }
        var padShort = false
        if let node = mapping["short-lines"] {
            switch node.string {
            case "pad": padShort = true
            case "error": padShort = false
            default: error(node, "'short-lines' is error or pad")
            }
        }
        var latin1 = false
        var ebcdic = false
        if let node = mapping["encoding"], let encoding = node.string {
            switch encoding {
            case "ascii", "utf-8": latin1 = false
            case "iso-8859-1", "latin1": latin1 = true
            case "ebcdic-037", "cp037":
                latin1 = true
                ebcdic = true
            default: error(node, "'encoding' is ascii, utf-8, iso-8859-1 or ebcdic-037, found '\(encoding)'")
            }
        }
        var filler: FixedWidthLayout.Filler?
        if let node = mapping["filler"] {
            if let character = node.mapping?["char"]?.string, character.utf8.count == 1, let byte = character.utf8.first,
               let block = node.mapping?["block"]?.int, block > 0 {
                filler = .init(character: byte, block: block)
            } else {
                error(node, "'filler' is { char: \"9\", block: 10 }: one character and a positive block size")
            }
        }
        var records: [RecordLayout] = []
        if let list = mapping["records"]?.sequence {
            for node in list {
                if let record = loadRecord(node, recordLength: recordLength) { records.append(record) }
            }
        } else {
            error(mapping["records"] ?? root, "'records' must be a list of record types")
        }
        let names = Set(records.map(\.name))
        var structure: [StructureItem] = []
        if let node = mapping["structure"] {
            structure = loadItems(node, names: names) ?? []
        } else {
            // Without a structure: any record, any number of times, in a list named "records".
            structure = []
        }
        for record in records where record.whenRecord != nil && !names.contains(record.whenRecord ?? "") {
            diagnostics.append(Diagnostic(at: SourceLocation(file: file, line: record.line, column: 1), "'when' names record '\(record.whenRecord ?? "")', which the layout does not define"))
        }
        let rules = mapping["rules"].map { loadRules($0, names: names) } ?? []
        guard diagnostics.isEmpty else { return nil }
        var layout = FixedWidthLayout(
            name: mapping["name"]?.string ?? (file as NSString).lastPathComponent,
            recordLength: recordLength,
            lineEnding: lineEnding,
            padShortLines: padShort,
            filler: filler,
            records: records,
            structure: structure
        )
        var distinct: [String] = []
        for (index, record) in records.enumerated() {
            record.index = index
            if let known = distinct.firstIndex(of: record.name) {
                record.nameID = known
            } else {
                record.nameID = distinct.count
                distinct.append(record.name)
            }
        }
        layout.rules = rules
        layout.tables = RuleTables(rules: rules, records: records)
        layout.plan = StructurePlan(structure: structure, records: records, tables: layout.tables)
        layout.matcher = RecordMatcher(records: records)
        layout.latin1 = latin1
        layout.ebcdic = ebcdic
        return layout
    }

    mutating func loadRecord(_ node: Node, recordLength: Int) -> RecordLayout? {
        guard let mapping = node.mapping, let name = mapping["name"]?.string else {
            error(node, "a record needs a 'name', a 'tag' and 'fields'")
            return nil
        }
        let tagNodes = mapping["tag"].map { $0.sequence ?? [$0] } ?? []
        var tags: [(start: Int, value: [UInt8])] = []
        var patterns: [Regex<AnyRegexOutput>] = []
        for tagNode in tagNodes {
            if let source = tagNode.mapping?["pattern"]?.string {
                guard let pattern = try? Regex(source) else {
                    error(tagNode, "tag pattern '\(source)' is not a valid regular expression")
                    return nil
                }
                patterns.append(pattern)
                continue
            }
            guard let tag = tagNode.mapping, let start = tag["start"]?.int, let value = tag["value"]?.string, start >= 1, !value.isEmpty,
                  start - 1 + value.utf8.count <= recordLength else {
                error(tagNode, "a tag is { start: POSITION, value: TEXT } inside the record, or { pattern: REGEX }")
                return nil
            }
            tags.append((start, Array(value.utf8)))
        }
        guard !tags.isEmpty || !patterns.isEmpty else {
            error(mapping["tag"] ?? node, "record '\(name)' needs a tag: { start: POSITION, value: TEXT } or { pattern: REGEX }, or a list of them")
            return nil
        }
        var whenRecord: String?
        var whenField: String?
        var whenValues: [String] = []
        if let when = mapping["when"] {
            let path = when.mapping?["field"]?.string?.split(separator: ".").map(String.init) ?? []
            let values = when.mapping?["in"]?.sequence?.compactMap(\.string) ?? when.mapping?["equals"]?.string.map { [$0] } ?? []
            if path.count == 2, !values.isEmpty {
                whenRecord = path[0]
                whenField = path[1]
                whenValues = values
            } else {
                error(when, "'when' is { field: RECORD.FIELD, in: [values] } or { field: RECORD.FIELD, equals: value }")
            }
        }
        var fields: [FieldLayout] = []
        for fieldNode in mapping["fields"]?.sequence ?? [] {
            if let field = loadField(fieldNode, record: name, recordLength: recordLength) { fields.append(field) }
        }
        if fields.isEmpty { error(mapping["fields"] ?? node, "record '\(name)' has no fields") }
        let sorted = fields.sorted { $0.start < $1.start }
        for (earlier, later) in zip(sorted, sorted.dropFirst()) where earlier.start + earlier.length > later.start {
            error(node, "record '\(name)': fields '\(earlier.name)' (\(earlier.columns)) and '\(later.name)' (\(later.columns)) overlap")
        }
        return RecordLayout(
            name: name, tags: tags, patterns: patterns, whenRecord: whenRecord, whenField: whenField,
            whenValues: whenValues, fields: sorted, line: node.mark?.line ?? 1
        )
    }

    mutating func loadField(_ node: Node, record: String, recordLength: Int) -> FieldLayout? {
        guard let mapping = node.mapping, let name = mapping["name"]?.string, let start = mapping["start"]?.int, let length = mapping["length"]?.int,
              start >= 1, length >= 1 else {
            error(node, "a field needs a name, a 1-based start and a length")
            return nil
        }
        if start + length - 1 > recordLength {
            error(node, "field '\(name)' (columns \(start)-\(start + length - 1)) ends past the record length \(recordLength)")
            return nil
        }
        let type = mapping["type"]?.string ?? (mapping["const"] != nil ? "const" : "string")
        let kind: FieldLayout.Kind
        switch type {
        case "string": kind = .string
        case "integer": kind = .integer
        case "decimal":
            kind = .decimal(mapping["decimals"]?.int ?? 0)
        case "date":
            guard let format = mapping["format"]?.string.flatMap(DateLayout.init) else {
                error(mapping["format"] ?? node, "date field '\(name)' needs a format made of yyyy, yy, MM, dd, HH, mm, ss (such as yyMMdd)")
                return nil
            }
            kind = .date(format)
        case "const":
            guard let value = mapping["const"]?.string, value.utf8.count == length else {
                error(mapping["const"] ?? node, "constant field '\(name)' needs 'const' of exactly \(length) characters")
                return nil
            }
            kind = .constant(Array(value.utf8))
        case "filler": kind = .filler
        default:
            error(mapping["type"], "field '\(name)': type '\(type)' is not one of string, integer, decimal, date, const, filler")
            return nil
        }
        let numeric: Bool
        switch kind {
        case .integer, .decimal: numeric = true
        default: numeric = false
        }
        var alignment: FieldLayout.Alignment = numeric ? .right : .left
        if let node = mapping["align"] {
            switch node.string {
            case "left": alignment = .left
            case "right": alignment = .right
            default: error(node, "'align' is left or right")
            }
        }
        var padding: UInt8 = numeric ? UInt8(ascii: "0") : UInt8(ascii: " ")
        if let node = mapping["pad"] {
            if let text = node.string, text.utf8.count == 1, let byte = text.utf8.first { padding = byte } else { error(node, "'pad' is one character") }
        }
        return FieldLayout(
            name: name, start: start, length: length, kind: kind, alignment: alignment, padding: padding,
            trim: mapping["trim"]?.bool ?? true, required: mapping["required"]?.bool ?? false,
            signed: mapping["signed"]?.bool ?? false
        )
    }

    mutating func loadItems(_ node: Node, names: Set<String>) -> [StructureItem]? {
        guard let list = node.sequence, !list.isEmpty else {
            error(node, "a structure is a list of { record: NAME } and { group: NAME, items: [...] }")
            return nil
        }
        var items: [StructureItem] = []
        for item in list {
            guard let mapping = item.mapping else {
                error(item, "expected { record: NAME } or { group: NAME, items: [...] }")
                continue
            }
            let repeats = mapping["repeat"]?.bool ?? false
            let optional = mapping["optional"]?.bool ?? false
            if let record = mapping["record"]?.string {
                if !names.contains(record) { error(mapping["record"], "no record named '\(record)' in 'records'") }
                items.append(.record(name: record, key: mapping["as"]?.string ?? record, repeats: repeats, optional: optional))
            } else if let group = mapping["group"]?.string, let inner = mapping["items"] {
                if let children = loadItems(inner, names: names) {
                    items.append(.group(name: group, items: children, repeats: repeats, optional: optional))
                }
            } else {
                error(item, "expected { record: NAME } or { group: NAME, items: [...] }")
            }
        }
        return items
    }
}
