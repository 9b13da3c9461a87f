// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardFixedWidth
import SwitchboardTransform
import Testing

/// The layout language on small layouts of its own: field types, tags by pattern, records
/// without a structure, EBCDIC, and mistakes in layouts.
struct LayoutTests {
    static let ledger = """
    name: ledger
    record-length: 30
    line-ending: lf
    records:
      - name: header
        tag: { pattern: "^H[0-9]{2}" }
        fields:
          - { name: kind, start: 1, length: 1, const: "H" }
          - { name: version, start: 2, length: 2, type: integer }
          - { name: day, start: 4, length: 8, type: date, format: yyyyMMdd }
          - { name: owner, start: 12, length: 19 }
      - name: line
        tag: { start: 1, value: "L" }
        fields:
          - { name: kind, start: 1, length: 1, const: "L" }
          - { name: account, start: 2, length: 8, align: right, pad: "*" }
          - { name: amount, start: 10, length: 9, type: decimal, decimals: 2, signed: true }
          - { name: memo, start: 19, length: 10, required: true }
          - { name: spare, start: 29, length: 2, type: filler }
    """

    static func lines(_ rows: [String]) -> [UInt8] {
        Array(rows.map { $0.padding(toLength: 30, withPad: " ", startingAt: 0) + "\n" }.joined().utf8)
    }

    static let rows = [
        "H0220261121Ledger owner",
        "L****1234-00012345Rent",
        "L***98765000000050Coffee",
    ]

    @Test func fieldTypesReadAndWriteBack() throws {
        let layout = try FixedWidthLayout(yaml: Self.ledger)
        let bytes = Self.lines(Self.rows)
        let (document, format) = try FixedWidthParser.parse(bytes, layout: layout)
        let expected = try JSONValue(parsing: """
        {"records":[
          {"$record":"header","version":2,"day":"2026-11-21","owner":"Ledger owner"},
          {"$record":"line","account":"1234","amount":-123.45,"memo":"Rent"},
          {"$record":"line","account":"98765","amount":0.5,"memo":"Coffee"}
        ]}
        """)
        #expect(document == expected, "\(document.serialized())")
        #expect(try FixedWidthFormatter.format(document, layout: layout, format: format) == bytes)
    }

    @Test func badRecordsCanBeSetAsideWhileTheRestParses() throws {
        let layout = try FixedWidthLayout(yaml: Self.ledger)
        let bytes = Self.lines(Self.rows + ["L****1234-000123x5Broken", "Z unknown", "L*******7000000100Tea"])
        var bad: [(FixedWidthError, String)] = []
        var tolerant = FixedWidthParser(layout: layout, bytes: bytes, badRecord: { error, record in bad.append((error, String(decoding: record, as: UTF8.self))) })
        let (document, _) = try tolerant.parse()
        guard case .array(let records)? = document["records"] else { Issue.record("no records"); return }
        #expect(records.compactMap { $0["memo"]?.text } == ["Rent", "Coffee", "Tea"])
        #expect(bad.map(\.0.description) == [
            "line 4, record line, field amount (columns 10-18): expected digits, found '-000123x5'",
            "line 5: no record type of the layout matches this record (it starts with 'Z u')",
        ])
        #expect(bad.first?.1.hasPrefix("L****1234-000123x5Broken") == true)
        // Without the handler the first bad record stops the parse.
        #expect(throws: FixedWidthError.self) { try FixedWidthParser.parse(bytes, layout: layout) }
    }

    @Test func recordErrorsNameLineRecordFieldAndColumns() throws {
        let layout = try FixedWidthLayout(yaml: Self.ledger)
        let cases: [([String], String)] = [
            (["H0220261321Ledger owner"], "line 1, record header, field day (columns 4-11): '20261321' is not a date in the format yyyyMMdd"),
            (["H0220261121x", "L****1234-000123x5Rent"], "line 2, record line, field amount (columns 10-18): expected digits, found '-000123x5'"),
            (["H0220261121x", "L****1234000012345"], "line 2, record line, field memo (columns 19-28): is required but blank"),
            (["X0220261121x"], "line 1: no record type of the layout matches this record (it starts with 'X02')"),
        ]
        for (rows, message) in cases {
            #expect {
                try FixedWidthParser.parse(Self.lines(rows), layout: layout)
            } throws: { error in
                "\(error)" == message
            }
        }
        // Writing: a value that does not fit is refused with its place.
        let tooLong = try JSONValue(parsing: #"{"records":[{"$record":"line","account":"123456789","amount":1,"memo":"x"}]}"#)
        #expect {
            try FixedWidthFormatter.format(tooLong, layout: layout)
        } throws: { error in
            "\(error)".contains("field account (columns 2-9): /records/0: '123456789' is longer than 8 characters")
        }
        let unsigned = try JSONValue(parsing: #"{"records":[{"$record":"header","version":-2,"day":"2026-01-01","owner":"x"}]}"#)
        #expect(throws: FixedWidthError.self) { try FixedWidthFormatter.format(unsigned, layout: layout) }
    }

    @Test func aLayoutWhoseAliasesExpandPastTheBudgetIsRefused() {
        var yaml = "x-0: &l0 { name: f, length: 1 }\n"
        for level in 1..<7 {
            yaml += "x-\(level): &l\(level) [\(Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", "))]\n"
        }
        yaml += "record-length: 1\nrecords: { r: { fields: *l6 } }\n"
        #expect {
            try FixedWidthLayout(yaml: yaml)
        } throws: { error in
            "\(error)".contains("layout.yaml:5:6:") && "\(error)".contains("YAML aliases expand to more than 10000 nodes")
        }
    }

    @Test func aSumThatOutgrowsItsIntegerIsAnErrorNotACrash() throws {
        let layout = try FixedWidthLayout(yaml: """
        record-length: 20
        records:
          - name: item
            tag: { start: 1, value: "I" }
            fields: [ { name: amount, start: 2, length: 18, type: integer } ]
          - name: total
            tag: { start: 1, value: "T" }
            fields: [ { name: amount, start: 2, length: 19, type: integer } ]
        structure:
          - { record: item, repeat: true }
          - record: total
        rules:
          - { name: total amount, sum: item.amount, equals: total.amount }
        """)
        let big = "I" + String(repeating: "9", count: 17) + "0"
        let rows = Array(repeating: big, count: 12) + ["T" + String(repeating: "0", count: 19)]
        let bytes = Array(rows.map { $0.padding(toLength: 20, withPad: " ", startingAt: 0) + "\n" }.joined().utf8)
        #expect {
            try FixedWidthParser.parse(bytes, layout: layout)
        } throws: { error in
            "\(error)" == "line 10, record item, field amount: rule 'total amount': the sum grows past 19 digits"
        }
    }

    @Test func layoutMistakesAreReportedWithTheirPlace() {
        let yaml = """
        record-length: 10
        colour: blue
        records:
          - name: a
            tag: { start: 1, value: "A" }
            fields:
              - { name: x, start: 1, length: 4 }
              - { name: y, start: 3, length: 4 }
              - { name: z, start: 9, length: 5 }
              - { name: d, start: 1, length: 2, type: date, format: qq }
              - { name: t, start: 1, length: 1, type: money }
        structure:
          - record: b
        """
        #expect {
            try FixedWidthLayout(yaml: yaml, file: "bad.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.contains("bad.yaml:2:1: error: unknown layout key 'colour'")
                && text.contains("field 'z' (columns 9-13) ends past the record length 10")
                && text.contains("date field 'd' needs a format")
                && text.contains("type 'money' is not one of string, integer, decimal, date, const, filler")
                && text.contains("fields 'x' (columns 1-4) and 'y' (columns 3-6) overlap")
                && text.contains("bad.yaml:13:13: error: no record named 'b' in 'records'")
        }
    }

    @Test func ebcdicFilesReadAsTheirText() throws {
        var layout = try FixedWidthLayout(yaml: Self.ledger.replacingOccurrences(of: "line-ending: lf", with: "line-ending: none\nencoding: ebcdic-037"))
        #expect(layout.ebcdic)
        // The EBCDIC bytes come from Python's cp037 codec, not from the table under test.
        let ascii = Self.rows.map { $0.padding(toLength: 30, withPad: " ", startingAt: 0) }.joined()
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", "import sys; sys.stdout.buffer.write(sys.argv[1].encode('cp037'))", ascii]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let ebcdic = Array(pipe.fileHandleForReading.readDataToEndOfFile())
        python.waitUntilExit()
        #expect(ebcdic.count == 90)
        #expect(ebcdic.first == 0xC8)   // 'H' in code page 037
        let (document, format) = try FixedWidthParser.parse(ebcdic, layout: layout)
        #expect(document["records"].map { if case .array(let items) = $0 { items.count } else { 0 } } == 3)
        #expect(document.serialized().contains(#""owner":"Ledger owner""#))
        #expect(format.lineEnding == FixedWidthLayout.LineEnding.none)
        layout.ebcdic = true
        #expect(try FixedWidthFormatter.format(document, layout: layout, format: format) == ebcdic)
    }
}
