import Foundation
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
        let inbox = folder + "/inbox"
        let outbox = folder + "/outbox"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try """
        routes:
          - id: drops
            from: "file:\(inbox)?delay=10ms&minAge=20ms&maxMessagesPerPoll=20"
            steps:
              - set-body: "copy of ${file:name}: ${body}"
              - to: "file:\(outbox)?fileName=${file:name.noext}.json"
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
        // Kill it once part of the batch is through.
        for _ in 0..<1000 where Self.files(outbox).count < 30 {
            try await Task.sleep(for: .milliseconds(5))
        }
        try await first.kill9()
        let before = Self.files(outbox).count
        #expect(before >= 30 && before < count, "the kill should land mid-batch, found \(before) of \(count) written")

        let second = try await NodeProcess(config: folder + "/switchboard.yaml")
        defer { _ = second }
        for _ in 0..<3000 where Self.files(inbox).count > 0 || Self.files(inbox + "/.inprogress").count > 0 || Self.files(outbox).count < count {
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
}
