// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

/// House rules every source file keeps: a long file says why at its top.
struct SourceFileTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func swiftFiles(under folders: [String]) -> [String] {
        folders.flatMap { folder in
            (FileManager.default.enumerator(atPath: repository + "/" + folder)?.compactMap { $0 as? String } ?? [])
                .filter { $0.hasSuffix(".swift") && !$0.hasPrefix(".build") }
                .map { folder + "/" + $0 }
        }
    }

    @Test func filesOverFiveHundredLinesSayWhy() throws {
        let files = Self.swiftFiles(under: ["Sources", "Adapters"])
        #expect(files.count > 100)
        var unexplained: [String] = []
        for file in files {
            let text = try String(contentsOfFile: Self.repository + "/" + file, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            guard lines.count > 500 else { continue }
            if !lines.prefix(20).contains(where: { $0.hasPrefix("// Over 500 lines: ") }) {
                unexplained.append("\(file) (\(lines.count) lines)")
            }
        }
        #expect(unexplained == [], "files over 500 lines need '// Over 500 lines: why' near their top")
    }
}
