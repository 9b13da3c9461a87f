// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

/// `switchboard convert` on the shared ACH files, as a process.
@Suite(.serialized)
struct ConvertCommandTests {
    static let layout = CLITests.repository + "/Mappings/layouts/nacha-ach.yaml"
    static let ach = Fixtures.path("ach")

    /// Runs the binary under /usr/bin/time; returns the exit status and the peak memory in KiB.
    /// Waits for the process without holding one of the few cooperative threads (other
    /// suites' tasks need them while this runs for seconds).
    static func run(_ process: Process) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
    }

    static func measured(_ arguments: [String]) async throws -> (status: Int32, peakKiB: Int) {
        let report = try CLITests.temporaryFolder() + "/time.txt"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-f", "%M", "-o", report, CLITests.binary] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try await run(process)
        let text = try String(contentsOfFile: report, encoding: .utf8)
        let peak = text.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.last ?? -1
        return (process.terminationStatus, peak)
    }

    static func lines(in path: String) throws -> Int {
        guard let handle = FileHandle(forReadingAtPath: path) else { return -1 }
        var count = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            count += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        }
        return count
    }

    @Test func aLargeFileStreamsInFlatMemory() async throws {
        let folder = try CLITests.temporaryFolder()
        let large = folder + "/large.ach"
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-dc", "\(Self.ach)/large/CCD+addenda05-200-batches-100000-entries.ach.gz"]
        #expect(FileManager.default.createFile(atPath: large, contents: nil))
        gunzip.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: large))
        try await Self.run(gunzip)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: large)[.size] as? Int)
        #expect(size > 15_000_000)

        let small = try await Self.measured(["convert", "--layout", Self.layout, "--to", "json", "--split", "batches.entries", "--out", folder + "/small.jsonl", "\(Self.ach)/valid/ppd-debit.ach"])
        let big = try await Self.measured(["convert", "--layout", Self.layout, "--to", "json", "--split", "batches.entries", "--out", folder + "/large.jsonl", large])
        #expect(small.status == 0 && big.status == 0)
        #expect(try Self.lines(in: folder + "/large.jsonl") == 100_000)
        // The file is over 15 MB; the process grows by far less than that.
        #expect(big.peakKiB - small.peakKiB < 8 * 1024, "peak \(small.peakKiB) KiB for one entry, \(big.peakKiB) KiB for 100,000")

        // The nested form too is written as it is read.
        let smallNested = try await Self.measured(["convert", "--layout", Self.layout, "--to", "json", "--out", folder + "/small.json", "\(Self.ach)/valid/ppd-debit.ach"])
        let bigNested = try await Self.measured(["convert", "--layout", Self.layout, "--to", "json", "--out", folder + "/large.json", large])
        #expect(smallNested.status == 0 && bigNested.status == 0)
        let nestedSize = try #require(try FileManager.default.attributesOfItem(atPath: folder + "/large.json")[.size] as? Int)
        // The document is several times the input, far more than the memory allowed.
        #expect(nestedSize > 3 * size, "\(nestedSize) bytes of JSON")
        #expect(bigNested.peakKiB - smallNested.peakKiB < 8 * 1024, "peak \(smallNested.peakKiB) KiB for one entry, \(bigNested.peakKiB) KiB for 100,000")
        let handle = try #require(FileHandle(forReadingAtPath: folder + "/large.json"))
        try handle.seek(toOffset: UInt64(nestedSize - 200))
        let tail = String(decoding: try #require(try handle.readToEnd()), as: UTF8.self)
        #expect(tail.hasSuffix("\"$text\": {\n    \"lineEnding\": \"lf\",\n    \"finalLineEnding\": true,\n    \"fillerRecords\": 8\n  }\n}\n"), "\(tail)")
    }

    @Test func convertRoundTripsAndNamesTheFaultyLine() throws {
        let folder = try CLITests.temporaryFolder()
        let original = "\(Self.ach)/valid/web-ppd-multibatch.ach"
        let json = try CLITests.run(["convert", "--layout", Self.layout, "--to", "json", "--out", folder + "/file.json", original])
        #expect(json.status == 0, "\(json.stderr)")
        let document = try JSONValue(parsing: try String(contentsOfFile: folder + "/file.json", encoding: .utf8))
        guard case .array(let batches)? = document["batches"] else {
            Issue.record("no batches in \(document.serialized().prefix(200))")
            return
        }
        #expect(batches.count == 3)
        let back = try CLITests.run(["convert", "--layout", Self.layout, "--from", "json", "--to", "fixed-width", "--out", folder + "/file.ach", folder + "/file.json"])
        #expect(back.status == 0, "\(back.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: folder + "/file.ach"))
        let expected = try Data(contentsOf: URL(fileURLWithPath: original))
        // The document carries how the text was laid out ($text): the same bytes come back.
        #expect(written == expected)
        // Every valid file, with or without a final newline, comes back byte for byte.
        let valid = CLITests.repository + "/Tests/Fixtures/ach/valid"
        for name in try FileManager.default.contentsOfDirectory(atPath: valid).filter({ $0.hasSuffix(".ach") }) {
            let there = try CLITests.run(["convert", "--layout", Self.layout, "--to", "json", "--out", folder + "/\(name).json", valid + "/" + name])
            let back = try CLITests.run(["convert", "--layout", Self.layout, "--from", "json", "--to", "fixed-width", "--out", folder + "/\(name).back", folder + "/\(name).json"])
            #expect(there.status == 0 && back.status == 0, "\(name): \(there.stderr)\(back.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/\(name).back")) == Data(contentsOf: URL(fileURLWithPath: valid + "/" + name)), "\(name)")
        }
        // CRLF line ends, kept.
        let crlf = folder + "/crlf.ach"
        let lines = try String(contentsOfFile: valid + "/ppd-debit.ach", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        try lines.joined(separator: "\r\n").write(toFile: crlf, atomically: true, encoding: .utf8)
        #expect(try CLITests.run(["convert", "--layout", Self.layout, "--to", "json", "--out", folder + "/crlf.json", crlf]).status == 0)
        #expect(try CLITests.run(["convert", "--layout", Self.layout, "--from", "json", "--to", "fixed-width", "--out", folder + "/crlf.back", folder + "/crlf.json"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/crlf.back")) == Data(contentsOf: URL(fileURLWithPath: crlf)))

        let bad = try CLITests.run(["convert", "--layout", Self.layout, "--to", "json", "\(Self.ach)/invalid/noc-bad-change-code.ach"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("noc-bad-change-code.ach: line 4, record addenda, field changeCode: rule 'change code'"), "\(bad.stderr)")
        try "record-length: 0\nrecords: 3\n".write(toFile: folder + "/bad.yaml", atomically: true, encoding: .utf8)
        let badLayout = try CLITests.run(["convert", "--layout", folder + "/bad.yaml", "--to", "json", original])
        #expect(badLayout.status == 2)
        #expect(badLayout.stderr.contains("bad.yaml:1:"), "\(badLayout.stderr)")
        let badPath = try CLITests.run(["convert", "--layout", Self.layout, "--to", "json", "--split", "entries", original])
        #expect(badPath.status == 2)
        #expect(badPath.stderr.contains("paths: fileHeader, batches, batches.batchHeader, batches.entries"), "\(badPath.stderr)")
    }
}
