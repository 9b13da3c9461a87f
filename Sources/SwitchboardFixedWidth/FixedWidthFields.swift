// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform

/// Field values in and out of their columns, in the layout's encoding (UTF-8, of which
/// ASCII is a part, or ISO-8859-1, one byte per character).
struct FixedWidthFields {
    static let space = UInt8(ascii: " ")
    var space: UInt8 { FixedWidthFields.space }
    let latin1: Bool

    func encode(_ text: String) -> [UInt8] {
        guard latin1 else { return Array(text.utf8) }
        return text.unicodeScalars.map { $0.value <= 0xFF ? UInt8($0.value) : UInt8(ascii: "?") }
    }

    /// The fields of one record as a JSON object (constants are checked and left out; filler
    /// appears only when it is not blank).
    func parse(_ bytes: [UInt8], record: RecordLayout, line: Int) throws -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(record.fields.count)
        for field in record.fields {
            if let value = try value(of: field, in: bytes, record: record, line: line) { members.append((field.name, value)) }
        }
        return .object(members)
    }

    /// One field's value as the record's JSON object holds it; nil for a constant (checked)
    /// and for blank filler, which the object leaves out.
    func value(of field: FieldLayout, in bytes: [UInt8], record: RecordLayout, line: Int) throws -> JSONValue? {
        let raw = bytes[(field.start - 1)..<(field.start - 1 + field.length)]
        func failure(_ message: String) -> FixedWidthError {
            FixedWidthError(line: line, record: record.name, field: field.name, columns: field.columns, message: message)
        }
        switch field.kind {
        case .constant(let expected):
            guard raw.elementsEqual(expected) else {
                throw failure("expected '\(String(decoding: expected, as: UTF8.self))', found '\(text(raw))'")
            }
            return nil
        case .filler:
            return raw.allSatisfy({ $0 == field.padding }) ? nil : .string(text(raw))
        case .string:
            let value = field.trim ? trimmed(raw, field) : text(raw)
            if field.required, value.allSatisfy({ $0 == " " }) { throw failure("is required but blank") }
            return .string(value)
        case .integer, .decimal:
            return try number(raw, field, failure)
        case .date(let format):
            let value = text(raw)
            if value.allSatisfy({ $0 == " " }) {
                if field.required { throw failure("is required but blank") }
                return .null
            } else if value.allSatisfy({ $0 == "0" }) {
                // "No date" as some files write it: kept as written.
                return .string(value)
            } else if let iso = format.iso(from: value) {
                return .string(iso)
            } else {
                throw failure("'\(value)' is not a date in the format \(format.pattern)")
            }
        }
    }

    func text(_ raw: ArraySlice<UInt8>) -> String {
        guard latin1 else { return String(decoding: raw, as: UTF8.self) }
        var text = ""
        text.unicodeScalars.append(contentsOf: raw.map { Unicode.Scalar($0) })
        return text
    }

    func trimmed(_ raw: ArraySlice<UInt8>, _ field: FieldLayout) -> String {
        var slice = raw
        switch field.alignment {
        case .left: while let last = slice.last, last == field.padding { slice = slice.dropLast() }
        case .right: while let first = slice.first, first == field.padding { slice = slice.dropFirst() }
        }
        return text(slice)
    }

    func number(_ raw: ArraySlice<UInt8>, _ field: FieldLayout, _ failure: (String) -> FixedWidthError) throws -> JSONValue {
        var digits = raw.drop { $0 == space }
        while digits.last == space { digits = digits.dropLast() }
        if digits.isEmpty {
            if field.required { throw failure("is required but blank") }
            return .null
        }
        var negative = false
        if field.signed, let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw failure("expected digits, found '\(text(raw))'")
        }
        let significant = digits.drop { $0 == 0x30 }
        var decimals = 0
        if case .decimal(let places) = field.kind { decimals = places }
        guard significant.count <= 15 else {
            // Beyond what a JSON number holds exactly: the digits as a string.
            return .string((negative ? "-" : "") + text(digits))
        }
        var value = 0.0
        for digit in significant { value = value * 10 + Double(digit - 0x30) }
        if decimals > 0 { value /= pow(10, Double(decimals)) }
        // Up to 15 significant digits a Double holds the decimal exactly: its shortest text is it.
        return JSONNumber(negative ? -value : value).map(JSONValue.number) ?? .null
    }

    // MARK: Formatting

    /// Writes one record's fields from a JSON object into `record-length` bytes.
    func format(_ value: JSONValue, record: RecordLayout, length: Int, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: space, count: length)
        for field in record.fields {
            func failure(_ message: String) -> FixedWidthError {
                FixedWidthError(line: 0, record: record.name, field: field.name, columns: field.columns, message: "\(path): \(message)")
            }
            let range = (field.start - 1)..<(field.start - 1 + field.length)
            let member = value[field.name] ?? .null
            let written: [UInt8]
            switch field.kind {
            case .constant(let constant):
                written = constant
            case .filler:
                if case .string(let text) = member { written = try padded(encode(text), field, failure) } else { written = Array(repeating: field.padding, count: field.length) }
            case .string:
                let text: String
                switch member {
                case .null: text = ""
                case .string(let string): text = string
                default: text = member.text
                }
                written = try padded(encode(text), field, failure)
            case .integer, .decimal:
                written = try formatNumber(member, field, failure)
            case .date(let format):
                switch member {
                case .null: written = Array(repeating: space, count: field.length)
                case .string(let zeros) where zeros.utf8.count == field.length && zeros.allSatisfy({ $0 == "0" }):
                    written = Array(zeros.utf8)
                case .string(let iso):
                    guard let text = format.text(fromISO: iso), text.utf8.count == field.length else {
                        throw failure("'\(iso)' cannot be written as a date in the format \(format.pattern)")
                    }
                    written = Array(text.utf8)
                default: throw failure("expected a date string, found \(member.serialized())")
                }
            }
            bytes.replaceSubrange(range, with: written)
        }
        return bytes
    }

    func padded(_ text: [UInt8], _ field: FieldLayout, _ failure: (String) -> FixedWidthError) throws -> [UInt8] {
        guard text.count <= field.length else {
            throw failure("'\(String(decoding: text, as: UTF8.self))' is longer than \(field.length) characters")
        }
        let padding = [UInt8](repeating: field.padding, count: field.length - text.count)
        return field.alignment == .left ? text + padding : padding + text
    }

    func formatNumber(_ member: JSONValue, _ field: FieldLayout, _ failure: (String) -> FixedWidthError) throws -> [UInt8] {
        var decimals = 0
        if case .decimal(let places) = field.kind { decimals = places }
        var digits: String
        var negative = false
        switch member {
        case .null:
            return Array(repeating: space, count: field.length)
        case .string(let text) where text.allSatisfy(\.isNumber) || (text.first == "-" && text.dropFirst().allSatisfy(\.isNumber)):
            negative = text.hasPrefix("-")
            digits = String(text.drop { $0 == "-" })
        case .number(let number):
            // Exactly: a value with more decimals than the field has is refused, not rounded.
            guard let scaled = number.scaledDigits(places: decimals) else {
                throw failure("\(number) cannot be written exactly with \(decimals) decimal\(decimals == 1 ? "" : "s")")
            }
            negative = scaled.negative
            digits = scaled.digits
        default:
            throw failure("expected a number, found \(member.serialized())")
        }
        if negative {
            guard field.signed else { throw failure("-\(digits) is negative, and the field is not signed") }
        }
        let room = field.length - (negative ? 1 : 0)
        guard digits.utf8.count <= room else { throw failure("\(negative ? "-" : "")\(digits) does not fit in \(field.length) characters") }
        let padding = [UInt8](repeating: field.padding, count: room - digits.utf8.count)
        let sign: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        return field.alignment == .right ? sign + padding + Array(digits.utf8) : sign + Array(digits.utf8) + padding
    }
}

/// A date pattern such as `yyMMdd`, `yyyyMMdd`, `HHmm`: read into ISO 8601 text
/// (`2019-08-16`, `10:55`, `2019-08-16T10:55`) and written back. Two-digit years are
/// 2000-2069 for 00-69 and 1970-1999 otherwise.
struct DateLayout: Sendable, Equatable {
    enum Part: String, CaseIterable, Sendable {
        case yyyy, yy, MM, dd, HH, mm, ss
    }

    /// The format as written in the layout.
    let pattern: String
    let parts: [Part]

    init?(_ format: String) {
        pattern = format
        var parts: [Part] = []
        var rest = Substring(format)
        while !rest.isEmpty {
            guard let part = Part.allCases.first(where: { rest.hasPrefix($0.rawValue) }) else { return nil }
            parts.append(part)
            rest = rest.dropFirst(part.rawValue.count)
        }
        guard !parts.isEmpty, Set(parts).count == parts.count else { return nil }
        self.parts = parts
    }

    func iso(from text: String) -> String? {
        var values: [Part: Int] = [:]
        var rest = Substring(text)
        for part in parts {
            let width = part == .yyyy ? 4 : 2
            guard rest.count >= width, let value = Int(rest.prefix(width)), rest.prefix(width).allSatisfy(\.isASCII) else { return nil }
            values[part] = value
            rest = rest.dropFirst(width)
        }
        if let month = values[.MM], !(1...12).contains(month) { return nil }
        if let day = values[.dd], !(1...31).contains(day) { return nil }
        if let hour = values[.HH], !(0...23).contains(hour) { return nil }
        if let minute = values[.mm], !(0...59).contains(minute) { return nil }
        if let second = values[.ss], !(0...59).contains(second) { return nil }
        let year = values[.yyyy] ?? values[.yy].map { $0 < 70 ? 2000 + $0 : 1900 + $0 }
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        var date: [String] = []
        if let year { date.append(String(year)) }
        if let month = values[.MM] { date.append(two(month)) }
        if let day = values[.dd] { date.append(two(day)) }
        var time: [String] = []
        for part in [Part.HH, .mm, .ss] { if let value = values[part] { time.append(two(value)) } }
        return [date.joined(separator: "-"), time.joined(separator: ":")].filter { !$0.isEmpty }.joined(separator: "T")
    }

    func text(fromISO iso: String) -> String? {
        let halves = iso.split(separator: "T", omittingEmptySubsequences: false)
        let hasDate = parts.contains { [.yyyy, .yy, .MM, .dd].contains($0) }
        let datePart = hasDate ? halves.first.map(String.init) ?? "" : ""
        let timePart = hasDate ? (halves.count > 1 ? String(halves[1]) : "") : String(halves.first ?? "")
        let dateValues = datePart.split(separator: "-").compactMap { Int($0) }
        let timeValues = timePart.split(separator: ":").compactMap { Int($0) }
        var values: [Part: Int] = [:]
        var index = 0
        for part in [Part.yyyy, .MM, .dd] where parts.contains(part) || (part == .yyyy && parts.contains(.yy)) {
            guard index < dateValues.count else { return nil }
            values[part] = dateValues[index]
            index += 1
        }
        index = 0
        for part in [Part.HH, .mm, .ss] where parts.contains(part) {
            guard index < timeValues.count else { return nil }
            values[part] = timeValues[index]
            index += 1
        }
        func padded(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return parts.map { part in
            switch part {
            case .yyyy: padded(values[.yyyy] ?? 0, 4)
            case .yy: padded((values[.yyyy] ?? 0) % 100, 2)
            default: padded(values[part] ?? 0, 2)
            }
        }.joined()
    }
}
