// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTestServers
import SwitchboardTransform
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// File drops through a real node process that is killed mid-batch.
@Suite(.serialized)
struct FileDropNodeTests {
    static func files(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func aNodeKilledMidBatchLeavesNoFileUnprocessedAndWritesEachOnce() async throws {
        let folder = try CLITests.temporaryFolder()
        try await Self.killMidBatch(folder: folder, inbox: folder + "/inbox", outbox: folder + "/outbox") { inbox, outbox in
            ("file:\(inbox)?", "file:\(outbox)?")
        }
    }

    @Test func aNodeKilledMidBatchOverSFTPLeavesNoFileUnprocessedAndWritesEachOnce() async throws {
        let folder = try CLITests.temporaryFolder()
        let server = try SSHServer()
        let port = server.port
        let user = server.user
        let options = "privateKey=\(server.key)&hostKey=\(server.fingerprint)&"
        try await Self.killMidBatch(folder: folder, inbox: folder + "/inbox", outbox: folder + "/outbox") { inbox, outbox in
            ("sftp://\(user)@127.0.0.1:\(port)\(inbox)?\(options)", "sftp://\(user)@127.0.0.1:\(port)\(outbox)?\(options)")
        }
    }

    /// Drops 400 files, kills the node once part of the batch is through, starts it again,
    /// and checks that every file was written once and archived, and none is left.
    static func killMidBatch(folder: String, inbox: String, outbox: String, endpoints: (String, String) -> (from: String, to: String)) async throws {
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        let (from, to) = endpoints(inbox, outbox)
        try """
        routes:
          - id: drops
            from: "\(from)delay=100ms&minAge=20ms&maxMessagesPerPoll=5"
            steps:
              - set-body: "copy of ${file:name}: ${body}"
              - to: "\(to)fileName=${file:name.noext}.json"
        """.write(toFile: folder + "/routes/drops.yaml", atomically: true, encoding: .utf8)
        try """
        http: { listen: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        routes: routes
        """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)

        let count = 400
        let names = (0..<count).map { String(format: "batch-%04d", $0) }
        for name in names {
            try Data("record \(name)".utf8).write(to: URL(fileURLWithPath: "\(inbox)/\(name).txt"))
        }
        let first = try await NodeProcess(config: folder + "/switchboard.yaml")
        // Kill it once part of the batch is through. At most 5 files per 100 ms poll, the
        // batch takes seconds, so the kill lands mid-batch even on a loaded machine.
        for _ in 0..<3000 where Self.files(outbox).count < 30 {
            try await Task.sleep(for: .milliseconds(5))
        }
        try await first.kill9()
        let before = Self.files(outbox).count
        #expect(before >= 30 && before < count, "the kill should land mid-batch, found \(before) of \(count) written")

        let second = try await NodeProcess(config: folder + "/switchboard.yaml")
        for _ in 0..<6000 where Self.files(inbox).count > 0 || Self.files(inbox + "/.inprogress").count > 0 || Self.files(outbox).count < count {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await second.stop()
        #expect(Self.files(inbox).isEmpty, "left unprocessed: \(Self.files(inbox))")
        #expect(Self.files(inbox + "/.inprogress").isEmpty)
        #expect(Self.files(inbox + "/.error").isEmpty, "\(Self.files(inbox + "/.error"))")
        #expect(Self.files(inbox + "/.done") == names.map { "\($0).txt" })
        #expect(Self.files(outbox) == names.map { "\($0).json" })
        for name in names {
            let written = try String(contentsOfFile: "\(outbox)/\(name).json", encoding: .utf8)
            #expect(written == "copy of \(name).txt: record \(name)", "\(name): \(written)")
        }
    }

    @Test func theShippedACHRouteStoresOneRowPerEntryAndArchivesTheFile() async throws {
        let folder = try CLITests.temporaryFolder()
        let inbox = folder + "/var/inbox/ach"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try """
        http: { listen: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        routes: \(CLITests.repository)/Routes
        mappings: \(CLITests.repository)/Mappings
        """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        // Every valid file of the fixtures (each SEC code, IAT and ADV among them), and one
        // that breaks a rule.
        let valid = CLITests.repository + "/Tests/Fixtures/ach/valid"
        let dropped = try FileManager.default.contentsOfDirectory(atPath: valid).filter { $0.hasSuffix(".ach") }.sorted()
        #expect(dropped.count == 16)
        for name in dropped {
            try FileManager.default.copyItem(atPath: "\(valid)/\(name)", toPath: "\(inbox)/\(name)")
        }
        try FileManager.default.copyItem(atPath: CLITests.repository + "/Tests/Fixtures/ach/invalid/file-control-count-wrong.ach", toPath: "\(inbox)/wrong.ach")
        let node = try await NodeProcess(config: folder + "/switchboard.yaml", directory: folder)
        for _ in 0..<1500 where !Self.files(inbox).isEmpty || Self.files(inbox + "/.error").count < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        // One row per entry in the embedded database, read back through the lookup route.
        for name in dropped {
            let (status, text) = try await NodeTests.get("http://127.0.0.1:\(node.httpPort)/ach/entries?file=\(name)")
            #expect(status == 200, "\(text)")
            let source = try String(contentsOfFile: "\(valid)/\(name)", encoding: .utf8)
            let entries = source.split(separator: "\n").filter { $0.hasPrefix("6") }
            guard case .array(let rows) = try JSONValue(parsing: text) else {
                Issue.record("not an array: \(text)")
                continue
            }
            #expect(rows.count == entries.count, "\(name): \(rows.count) rows for \(entries.count) entries")
            // ADV entries have no trace number of their own (the route composes one).
            if !name.hasPrefix("adv") {
                #expect(rows.compactMap { $0["trace_number"]?.text } == entries.map { String($0.suffix(15)) }.sorted(), "\(name)")
            }
            #expect(rows.allSatisfy { $0["routing_number"]?.text.count == 9 && !($0["account"]?.text.isEmpty ?? true) }, "\(name)")
        }
        let (_, iat) = try await NodeTests.get("http://127.0.0.1:\(node.httpPort)/ach/entries?file=iat-debit.ach")
        #expect(iat.contains(#""account":"123456789""#) && iat.contains(#""name":"BEK Enterprises""#), "\(iat)")
        try await node.stop()
        let archived = Self.files(inbox + "/.done").flatMap { day in Self.files(inbox + "/.done/" + day) }
        #expect(archived.sorted() == dropped.sorted())
        #expect(Self.files(inbox + "/.error") == ["wrong.ach", "wrong.ach.error.txt"])
        let note = try String(contentsOfFile: inbox + "/.error/wrong.ach.error.txt", encoding: .utf8)
        #expect(note.contains("record fileControl, field entryAddendaCount: rule 'file entry/addenda count'"), "\(note)")
    }

    /// Peak resident memory of a process so far, in KiB (Linux).
    static func peakKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func aLargeFixedWidthDropIsRoutedInConstantMemory() async throws {
        let folder = try CLITests.temporaryFolder()
        let inbox = folder + "/inbox"
        let outbox = folder + "/outbox"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/mappings", withIntermediateDirectories: true)
        try """
        name: readings
        record-length: 60
        line-ending: lf
        records:
          - name: reading
            tag: { start: 1, value: "R" }
            fields:
              - { name: kind, start: 1, length: 1, const: "R" }
              - { name: meter, start: 2, length: 9, type: integer }
              - { name: value, start: 11, length: 12, type: decimal, decimals: 3 }
              - { name: note, start: 23, length: 38 }
        structure:
          - { record: reading, repeat: true }
        """.write(toFile: folder + "/mappings/readings.yaml", atomically: true, encoding: .utf8)
        try """
        routes:
          - id: readings
            from: "file:\(inbox)?include=*.txt&streamBody=true&delay=50ms&minAge=20ms"
            steps:
              - split:
                  fixed-width: readings.yaml
                  path: reading
                  steps:
                    - filter:
                        header: split.index
                        matches: "[0-9]*0000"
                        steps:
                          - set-body: "${body}\\n"
                          - to: "file:\(outbox)?fileName=sample.jsonl&fileExist=append"
        """.write(toFile: folder + "/routes/readings.yaml", atomically: true, encoding: .utf8)
        try """
        http: { listen: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        routes: routes
        mappings: mappings
        audit: { enabled: false }
        """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        // 400,000 readings of 61 bytes: a 24 MB file.
        let count = 400_000
        #expect(FileManager.default.createFile(atPath: folder + "/big.txt", contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/big.txt"))
        var chunk = ""
        for index in 0..<count {
            chunk += "R" + String(format: "%09d", index) + String(format: "%012d", index * 7) + "reading number \(index)".padding(toLength: 38, withPad: " ", startingAt: 0) + "\n"
            if index % 10_000 == 9_999 {
                try handle.write(contentsOf: Data(chunk.utf8))
                chunk = ""
            }
        }
        try handle.close()
        let node = try await NodeProcess(config: folder + "/switchboard.yaml")
        // A small file first, so the baseline includes everything the route loads.
        try Data("R000000001000000000001first\(String(repeating: " ", count: 33))\n".utf8).write(to: URL(fileURLWithPath: inbox + "/small.txt"))
        for _ in 0..<1500 where Self.files(inbox + "/.done").isEmpty {
            try await Task.sleep(for: .milliseconds(20))
        }
        let baseline = Self.peakKiB(node.process.processIdentifier)
        try FileManager.default.moveItem(atPath: folder + "/big.txt", toPath: inbox + "/big.txt")
        for _ in 0..<30_000 where Self.files(inbox + "/.done").count < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let peak = Self.peakKiB(node.process.processIdentifier)
        try await node.stop()
        #expect(Self.files(inbox + "/.done") == ["big.txt", "small.txt"])
        let sample = try String(contentsOfFile: outbox + "/sample.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(sample.count == count / 10_000 - 1, "every 10,000th reading from the 10,000th")
        #expect(sample.first == #"{"meter":10000,"value":70,"note":"reading number 10000"}"#)
        #expect(sample.last == #"{"meter":390000,"value":2730,"note":"reading number 390000"}"#)
        // The file is 24 MB; the node grows by far less while routing it.
        #expect(baseline > 0 && peak - baseline < 10 * 1024, "peak \(baseline) KiB before, \(peak) KiB after the 24 MB file")
    }
}
