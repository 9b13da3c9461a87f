// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform

/// Writes a JSON document in the shape ``FixedWidthParser`` produces back to fixed-width text.
public struct FixedWidthFormatter {
    let layout: FixedWidthLayout
    var context: [String: [String: String]] = [:]
    var output: [UInt8] = []
    var records = 0

    public init(layout: FixedWidthLayout) {
        self.layout = layout
    }

    /// The file's bytes. Without `format`, the one the document's `$text` member names (what
    /// `convert --to json` wrote), else the layout's line ending (LF when it says auto), a
    /// line ending after the last record, and filler records up to the layout's block size.
    public static func format(_ document: JSONValue, layout: FixedWidthLayout, format: FixedWidthTextFormat? = nil) throws -> [UInt8] {
        var formatter = FixedWidthFormatter(layout: layout)
        return try formatter.write(document, format: format ?? FixedWidthTextFormat(json: document))
    }

    mutating func write(_ document: JSONValue, format: FixedWidthTextFormat?) throws -> [UInt8] {
        let ending = format?.lineEnding ?? (layout.lineEnding == .auto ? .lf : layout.lineEnding)
        let terminator: [UInt8] = switch ending {
        case .crlf: [0x0D, 0x0A]
        case .none: []
        default: [0x0A]
        }
        var lines: [[UInt8]] = []
        if layout.structure.isEmpty {
            guard case .array(let items)? = document["records"] else {
                throw FixedWidthError(line: 0, message: "expected an object with a 'records' array")
            }
            for (index, item) in items.enumerated() {
                guard case .string(let name)? = item["$record"], let record = layout.records.first(where: { $0.name == name }) else {
                    throw FixedWidthError(line: 0, message: "/records/\(index): needs '$record' naming one of the layout's records")
                }
                lines.append(try FixedWidthFields(latin1: layout.latin1).format(item, record: record, length: layout.recordLength, path: "/records/\(index)"))
            }
        } else {
            try writeItems(layout.structure, document, path: "", into: &lines)
        }
        if let filler = layout.filler {
            let count = format?.fillerRecords ?? ((filler.block - lines.count % filler.block) % filler.block)
            for _ in 0..<count { lines.append([UInt8](repeating: filler.character, count: layout.recordLength)) }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(lines.count * (layout.recordLength + terminator.count))
        for (index, line) in lines.enumerated() {
            bytes += line
            if index < lines.count - 1 {
                bytes += terminator
            } else if format?.finalLineEnding ?? true {
                // Records without line breaks may still end with one newline.
                bytes += terminator.isEmpty ? [0x0A] : terminator
            }
        }
        if layout.ebcdic { return EBCDIC037.encoded(bytes) }
        return bytes
    }

    private mutating func writeItems(_ items: [StructureItem], _ object: JSONValue, path: String, into lines: inout [[UInt8]]) throws {
        for item in items {
            let itemPath = path + "/" + item.key
            let values: [JSONValue]
            switch object[item.key] {
            case nil, .null?:
                guard item.isOptional else { throw FixedWidthError(line: 0, message: "\(itemPath) is missing") }
                continue
            case .array(let array)? where item.repeats:
                values = array
            case let value?:
                values = [value]
            }
            if values.isEmpty, !item.isOptional {
                throw FixedWidthError(line: 0, message: "\(itemPath) needs at least one item")
            }
            for (index, value) in values.enumerated() {
                let valuePath = item.repeats ? itemPath + "/\(index)" : itemPath
                switch item {
                case .record(let name, _, _, _):
                    lines.append(try writeRecord(name, value, path: valuePath))
                case .group(_, let inner, _, _):
                    try writeItems(inner, value, path: valuePath, into: &lines)
                }
            }
        }
    }

    private mutating func writeRecord(_ name: String, _ value: JSONValue, path: String) throws -> [UInt8] {
        // The first variant whose condition holds and whose tags the written record carries.
        var firstError: (any Error)?
        for variant in layout.records where variant.name == name {
            if let whenRecord = variant.whenRecord, let whenField = variant.whenField {
                guard let current = context[whenRecord]?[whenField], variant.whenValues.contains(current) else { continue }
            }
            do {
                let bytes = try FixedWidthFields(latin1: layout.latin1).format(value, record: variant, length: layout.recordLength, path: path)
                guard bytes.withUnsafeBytes({ variant.matchesTags($0) }) else { continue }
                for other in layout.records where other.whenRecord == name {
                    if let field = other.whenField, let member = value[field] { context[name, default: [:]][field] = member.text }
                }
                return bytes
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? FixedWidthError(line: 0, record: name, message: "\(path): no variant of record '\(name)' fits this value")
    }
}
