import Foundation
import SwitchboardFixedWidth
import SwitchboardTransform
import Testing

/// The shipped NACHA layout against the shared ACH files.
struct NACHATests {
    static let data = "/work/shared/data/ach"
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

    @Test func validFilesCountTheirRecords() throws {
        #expect(Self.files("valid").count >= 16)
    }
}
