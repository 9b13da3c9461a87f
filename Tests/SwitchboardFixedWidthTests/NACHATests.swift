// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardFixedWidth
import SwitchboardTransform
import SwitchboardTestServers
import Testing

/// The shipped NACHA layout against the shared ACH files.
struct NACHATests {
    static let data = Fixtures.path("ach")
    static let layoutPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        + "/Mappings/layouts/nacha-ach.yaml"

    static func layout() throws -> FixedWidthLayout {
        try FixedWidthLayout(path: layoutPath)
    }

    static func files(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(data)/\(folder)")) ?? []).filter { $0.hasSuffix(".ach") }.sorted()
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(arguments: NACHATests.files("valid"))
    func validFilesParseAndRoundTripByteForByte(_ name: String) throws {
        let layout = try Self.layout()
        let original = try Self.bytes("\(Self.data)/valid/\(name)")
        let (document, format) = try FixedWidthParser.parse(original, layout: layout)
        #expect(document["fileHeader"] != nil)
        #expect(document["fileControl"] != nil)
        let written = try FixedWidthFormatter.format(document, layout: layout, format: format)
        let same = written == original
        #expect(same, "\(name): the round trip differs")
        if !same {
            let a = String(decoding: original, as: UTF8.self).split(separator: "\n")
            let b = String(decoding: written, as: UTF8.self).split(separator: "\n")
            for (index, pair) in zip(a, b).enumerated() where pair.0 != pair.1 {
                Issue.record("line \(index + 1):\n\(pair.0)\n\(pair.1)")
                break
            }
        }
    }

    @Test(arguments: NACHATests.files("valid"))
    func theStreamedNestedFormIsThePrettyDocumentAndCarriesTheTextFormat(_ name: String) throws {
        let layout = try Self.layout()
        let original = try Self.bytes("\(Self.data)/valid/\(name)")
        let (document, format) = try FixedWidthParser.parse(original, layout: layout)
        var streamed: [UInt8] = []
        var parser = FixedWidthParser(layout: layout, bytes: original)
        let streamedFormat = try parser.stream(into: StreamedJSON { streamed += $0 })
        #expect(streamedFormat == format)
        // The document as parse() gives it, pretty-printed, then the text format as its last member.
        var expected = document.prettySerialized()
        expected.removeLast(2)
        expected += ",\n  \"$text\": " + format.json.prettySerialized(indent: 1) + "\n}"
        #expect(String(decoding: streamed, as: UTF8.self) == expected, "\(name)")
        // Written back with the format it carries: the same bytes.
        let again = try JSONValue(parsing: String(decoding: streamed, as: UTF8.self))
        #expect(try FixedWidthFormatter.format(again, layout: layout) == original, "\(name)")
    }

    @Test func validFilesCountTheirRecords() throws {
        #expect(Self.files("valid").count >= 16)
    }
}

extension NACHATests {
    /// Why each invalid file is refused: words the error must contain (its line among them).
    /// Files whose lines lost their trailing spaces are read with `short-lines: pad`, so that
    /// the fault they were made for is the one found.
    static let invalidReasons: [String: (pad: Bool, words: [String])] = [
        "batch-control-mismatch.ach": (false, ["line 11, record batchControl, field ODFIIdentification", "rule 'batch ODFI'"]),
        "control-totals-inconsistent-ppd-iat.ach": (false, ["record fileControl, field batchCount", "rule 'file batch count'"]),
        "fed-edit-1e-header-not-first.ach": (false, ["line 1, record batchHeader", "expected fileHeader"]),
        "fed-edit-1k-record-after-file-control.ach": (true, ["line 10, record fileControl", "expected batchControl, found a fileControl record"]),
        "fed-edit-1q-format-code.ach": (false, ["line 1, record fileHeader, field formatCode (columns 40-40)", "expected '1', found '9'"]),
        "fed-edit-2m-entry-description-zeros.ach": (false, ["line 2, record batchHeader, field companyEntryDescription", "rule 'company entry description'"]),
        "file-control-count-wrong.ach": (false, ["record fileControl, field entryAddendaCount", "rule 'file entry/addenda count'"]),
        "fuzz-crasher-0.ach": (false, ["line 1, record batchHeader", "expected fileHeader"]),
        "header-93-chars.ach": (false, ["line 1", "93 characters; records are 94"]),
        "immediate-origin-not-numeric.ach": (false, ["line 1, record fileHeader, field immediateOrigin", "'000TESTER'"]),
        "missing-file-control.ach": (false, ["line 5", "expected fileControl, found the end of the file"]),
        "no-file-header-no-file-control.ach": (false, ["line 1", "expected fileHeader"]),
        "no-line-breaks-bad-length.ach": (false, ["line 1, record fileHeader, field fileCreationDate (columns 24-29)", "'108072' is not a date"]),
        "noc-bad-change-code.ach": (false, ["line 4, record addenda, field changeCode", "'C92'"]),
        "rdfi-check-digit-wrong.ach": (true, ["line 3, record entryDetail, field checkDigit", "check digit '5' is wrong for 23138010"]),
        "return-bad-return-code.ach": (false, ["line 4, record addenda, field returnCode", "'R96'"]),
    ]

    @Test func everyInvalidFileHasAnExpectedReason() {
        #expect(Set(Self.files("invalid")) == Set(Self.invalidReasons.keys))
    }

    @Test(arguments: NACHATests.files("invalid"))
    func invalidFilesAreRefusedWithTheLineAndFieldOrRule(_ name: String) throws {
        var layout = try Self.layout()
        let expected = try #require(Self.invalidReasons[name])
        layout.padShortLines = expected.pad
        let original = try Self.bytes("\(Self.data)/invalid/\(name)")
        #expect {
            _ = try FixedWidthParser.parse(original, layout: layout)
        } throws: { error in
            let text = "\(error)"
            return error is FixedWidthError && expected.words.allSatisfy { text.contains($0) }
        }
    }

    /// The lines of a file without their line endings and trailing spaces.
    static func trimmedLines(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.split(separator: 0x0A).map { Array($0.reversed().drop { $0 == 0x20 || $0 == 0x0D }.reversed()) }
    }

    @Test func edgeFilesBehaveAsTheirOptionsSay() throws {
        let layout = try Self.layout()
        var padding = layout
        padding.padShortLines = true

        // Records back to back without line breaks: read by record length, written back the same.
        let unbroken = try Self.bytes("\(Self.data)/edge/ppd-debit-no-line-breaks.ach")
        let (document, format) = try FixedWidthParser.parse(unbroken, layout: layout)
        #expect(format.lineEnding == FixedWidthLayout.LineEnding.none)
        #expect(try FixedWidthFormatter.format(document, layout: layout, format: format) == unbroken)

        // Lines that lost their trailing spaces (one of them with CRLF): refused, unless
        // short-lines: pad, which gives the records back whole, with the same line endings.
        for name in ["ppd-debit-trailing-spaces-trimmed.ach", "fiserv-zero-file-crlf.ach"] {
            let trimmed = try Self.bytes("\(Self.data)/edge/\(name)")
            #expect(throws: FixedWidthError.self, "\(name)") { try FixedWidthParser.parse(trimmed, layout: layout) }
            let (padded, format) = try FixedWidthParser.parse(trimmed, layout: padding)
            #expect(format.lineEnding == (name.contains("crlf") ? .crlf : .lf), "\(name)")
            let whole = try FixedWidthFormatter.format(padded, layout: padding, format: format)
            let lines = whole.split(separator: 0x0A)
            #expect(lines.allSatisfy { $0.count == (name.contains("crlf") ? 95 : 94) }, "\(name)")
            #expect(Self.trimmedLines(whole) == Self.trimmedLines(trimmed), "\(name)")
        }
        #expect {
            try FixedWidthParser.parse(try Self.bytes("\(Self.data)/edge/short-line.ach"), layout: layout)
        } throws: { error in
            "\(error)".contains("characters; records are 94 (short-lines: pad")
        }
        // A line longer than a record is refused with its line.
        #expect {
            try FixedWidthParser.parse(try Self.bytes("\(Self.data)/edge/long-line.ach"), layout: padding)
        } throws: { error in
            "\(error)".hasPrefix("line 3: the line has 98 characters; records are 94")
        }
        // Windows-1252 names: read as ISO-8859-1 (one byte, one character), written back the
        // same. The file's control record counts 1 entry where the batch has 13 records: the
        // rules refuse it, so it is read with them off.
        let names = try Self.bytes("\(Self.data)/edge/nonascii-windows-1252.ach")
        var latin1 = padding
        latin1.latin1 = true
        #expect {
            try FixedWidthParser.parse(names, layout: latin1)
        } throws: { error in
            "\(error)".hasPrefix("line 17, record fileControl, field entryAddendaCount: rule 'file entry/addenda count'")
        }
        latin1.checkRules = false
        let (named, nameFormat) = try FixedWidthParser.parse(names, layout: latin1)
        let written = try FixedWidthFormatter.format(named, layout: latin1, format: nameFormat)
        #expect(Self.trimmedLines(written) == Self.trimmedLines(names))
        #expect(named.serialized().unicodeScalars.contains { $0.value > 0x7F && $0.value <= 0xFF })
    }
}
