// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardFixedWidth
import SwitchboardTransform
import Testing

/// Parts split off a file are written as JSON straight from the records' bytes; that text
/// must be what the parts' JSON values serialize to, for every kind of field and value.
struct DirectJSONTests {
    /// Every part at `path`, as written directly and as its JSON value serializes.
    static func parts(_ bytes: [UInt8], _ layout: FixedWidthLayout, at path: [String]) throws -> [(direct: String, json: String)] {
        var parts: [(direct: String, json: String)] = []
        var parser = FixedWidthParser(layout: layout, bytes: bytes, splitAt: path, onPart: { part in
            var direct: [UInt8] = []
            part.write(into: &direct)
            parts.append((String(decoding: direct, as: UTF8.self), part.json.serialized()))
        })
        _ = try parser.parse()
        return parts
    }

    /// The valid files, and the edge files that parse (with short lines padded).
    static var achFiles: [String] {
        ["valid", "edge"].flatMap { folder in NACHATests.files(folder).map { "\(folder)/\($0)" } }.filter { $0 != "edge/long-line.ach" }
    }

    @Test(arguments: DirectJSONTests.achFiles)
    func everyPartOfEveryACHFileIsWrittenAsItsJSONValue(_ name: String) throws {
        var layout = try NACHATests.layout()
        layout.padShortLines = true
        if name.contains("windows-1252") {
            // Windows-1252 names, and a control record the rules refuse (see NACHATests).
            layout.latin1 = true
            layout.checkRules = false
        }
        let bytes = try NACHATests.bytes("\(NACHATests.data)/\(name)")
        var total = 0
        for path in layout.structurePaths {
            let parts = try Self.parts(bytes, layout, at: path.split(separator: ".").map(String.init))
            for part in parts where part.direct != part.json {
                Issue.record("\(name) at \(path):\n\(part.direct)\n\(part.json)")
                break
            }
            total += parts.count
        }
        #expect(total > 0, "\(name): no parts")
    }

    static let oddities = """
    name: oddities
    record-length: 40
    line-ending: lf
    records:
      - name: numbers
        tag: { start: 1, value: "N" }
        fields:
          - { name: tag, start: 1, length: 1, const: "N" }
          - { name: signed, start: 2, length: 5, type: integer, signed: true }
          - { name: blank, start: 7, length: 3, type: integer }
          - { name: long, start: 10, length: 18, type: integer }
          - { name: money, start: 28, length: 6, type: decimal, decimals: 2, signed: true }
          - { name: code, start: 34, length: 3, align: right, pad: "0" }
          - { name: spare, start: 37, length: 4, type: filler }
      - name: text
        tag: { start: 1, value: "T" }
        fields:
          - { name: tag, start: 1, length: 1, const: "T" }
          - { name: words, start: 2, length: 20 }
          - { name: raw, start: 22, length: 10, trim: false }
          - { name: day, start: 32, length: 6, type: date, format: yyMMdd }
          - { name: zeros, start: 38, length: 3, type: integer, signed: true }
    """

    /// A record from its fields' texts, each padded with spaces to its width.
    static func record(_ fields: [(String, Int)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (text, width) in fields {
            let utf8 = Array(text.utf8)
            precondition(utf8.count <= width, "'\(text)' is wider than \(width)")
            bytes += utf8 + Array(repeating: 0x20, count: width - utf8.count)
        }
        precondition(bytes.count <= 40)
        return bytes + Array(repeating: 0x20, count: 40 - bytes.count) + [0x0A]
    }

    static func numbers(_ signed: String, _ blank: String, _ long: String, _ money: String, _ code: String, _ spare: String) -> [UInt8] {
        record([("N", 1), (signed, 5), (blank, 3), (long, 18), (money, 6), (code, 3), (spare, 4)])
    }

    static func text(_ words: String, _ raw: String, _ day: String, _ zeros: String) -> [UInt8] {
        record([("T", 1), (words, 20), (raw, 10), (day, 6), (zeros, 3)])
    }

    @Test func oddValuesAreWrittenAsTheirJSONValues() throws {
        let layout = try FixedWidthLayout(yaml: Self.oddities)
        let lines: [[UInt8]] = [
            Self.numbers("-0042", "", "123456789012345678", "+00150", "007", "ABCD"),
            Self.numbers("+0000", "", "000000000000000001", "-00001", "000", ""),
            Self.numbers("  -7", "", " 23456789012345678", "  1234", "", "X"),
            Self.text(#"say "hi" \ back"#, "  spaced", "261121", "-00"),
            Self.text("café ünïcode", "\u{7}bell", "000000", "+12"),
        ]
        let bytes = lines.flatMap { $0 }
        let parts = try Self.parts(bytes, layout, at: ["records"])
        #expect(parts.count == 5)
        for part in parts { #expect(part.direct == part.json) }
        #expect(parts.first?.direct == #"{"$record":"numbers","signed":-42,"blank":null,"long":"123456789012345678","money":1.5,"code":"7","spare":"ABCD"}"#)
        #expect(parts.dropFirst(3).first?.direct == #"{"$record":"text","words":"say \"hi\" \\ back","raw":"  spaced  ","day":"2026-11-21","zeros":0}"#)

        // ISO-8859-1: bytes past 0x7F are characters of their own; invalid UTF-8 is replaced.
        var latin1 = layout
        latin1.latin1 = true
        let accented = Self.text("café", "", "", "")
        var raw = Array("Tna".utf8) + [0xE9, 0xFF] + Array("ve".utf8)
        raw += Array(repeating: 0x20, count: 40 - raw.count)
        raw.append(0x0A)
        for layout in [layout, latin1] {
            let parts = try Self.parts(accented + raw, layout, at: ["records"])
            #expect(parts.count == 2)
            for part in parts { #expect(part.direct == part.json) }
        }
    }
}
