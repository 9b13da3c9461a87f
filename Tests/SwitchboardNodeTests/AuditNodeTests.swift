// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchboardAudit
import SwitchboardCore
import SwitchboardTestServers
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `switchboard run` process, its log, and the ports it bound.
final class NodeProcess: Sendable {
    final class LogBuffer: Sendable {
        let text = Mutex("")
    }

    let process: Process
    let log: LogBuffer
    let httpPort: Int
    let adminPort: Int

    /// Starts the node on `config` and waits until both listeners are up.
    init(config: String, directory: String? = nil) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = ["run", "--config", config]
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let log = LogBuffer()
        err.fileHandleForReading.readabilityHandler = { handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            log.text.withLock { $0 += chunk }
        }
        try process.run()
        self.process = process
        self.log = log
        var http: Int?
        var admin: Int?
        for _ in 0..<1000 where http == nil || admin == nil {
            let text = log.text.withLock { $0 }
            http = text.firstMatch(of: /HTTP listener ready address=127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
            admin = text.firstMatch(of: /admin API ready address=127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
            if http == nil || admin == nil {
                if !process.isRunning { break }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        guard let http, let admin else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw NodeStartError(log: log.text.withLock { $0 })
        }
        httpPort = http
        adminPort = admin
    }

    struct NodeStartError: Error, CustomStringConvertible {
        let log: String
        var description: String { "the node did not start:\n\(log)" }
    }

    func kill9() async throws {
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    }

    func stop() async throws {
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

func post(_ url: String, _ body: String, headers: [(String, String)] = []) async throws -> (status: Int, body: String, headers: [(String, String)]) {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), String(buffer: bytes), response.headers.map { ($0.name, $0.value) })
}

/// The audit trail as operators use it: through the CLI, against a real node process.
@Suite(.serialized)
struct AuditNodeTests {
    /// A node whose `/front` calls its own `/back` over HTTP, so one request makes two
    /// messages in one W3C trace.
    static func nodeFolder(token: String? = nil) throws -> (folder: String, config: String) {
        let folder = try CLITests.temporaryFolder()
        let port = freePort()
        try """
        routes:
          - id: front
            from: http:/front?method=POST
            steps:
              - set-header: { name: X-Stage, value: front }
              - to: http://127.0.0.1:\(port)/back
          - id: back
            from: http:/back?method=POST
            steps:
              - set-body: "back saw ${body}"
        """.write(toFile: folder + "/routes/main.yaml", atomically: true, encoding: .utf8)
        var config = """
        http: { listen: "127.0.0.1:\(port)" }
        admin: { listen: "127.0.0.1:\(freePort())"\(token.map { ", token: \($0)" } ?? "") }
        routes: routes
        """
        config += "\n"
        try config.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        return (folder, folder + "/switchboard.yaml")
    }

    static func traces(_ output: CLITests.Output) throws -> [Trace] {
        try output.stdout.split(separator: "\n").map { try JSONDecoder().decode(Trace.self, from: Data($0.utf8)) }
    }

    @Test func aNodeKilledRightAfterAnsweringStillHasTheTrace() async throws {
        let (folder, config) = try Self.nodeFolder()
        let node = try await NodeProcess(config: config)
        let inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let answer = try await post("http://127.0.0.1:\(node.httpPort)/front", "ping", headers: [("traceparent", inbound)])
        // SIGKILL the moment the answer is in: no shutdown, no flush.
        try await node.kill9()
        #expect(answer.status == 200)
        #expect(answer.body == "back saw ping")
        let id = try #require(answer.headers.first { $0.0.lowercased() == "x-message-id" }?.1)

        // Offline: nothing answers on the admin port, so trace reads the store on disk.
        let output = try CLITests.run(["trace", id, "--config", config, "--json"], in: folder)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stderr.contains("reading the audit store \(folder)/var/audit.db"), "\(output.stderr)")
        let trace = try #require(try Self.traces(output).first)
        #expect(trace.messageID == id)
        #expect(trace.status == "ok")
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736", "the inbound traceparent's trace id is stored")
        #expect(trace.events.contains { $0.stepKind == "to" && $0.detail == "HTTP 200" })

        // The back route's message came over HTTP with the same trace id: the outbound call
        // carried traceparent on.
        let related = try CLITests.run(["trace", "--route", "back", "--config", config, "--json"], in: folder)
        let back = try #require(try Self.traces(related).first)
        #expect(back.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(back.correlationID == id)

        // The tree, as a person reads it.
        let text = try CLITests.run(["trace", id, "--config", config], in: folder)
        #expect(text.stdout.contains("route front  ok"), "\(text.stdout)")
        #expect(text.stdout.contains("1 to http://127.0.0.1:"), "\(text.stdout)")
        #expect(!text.stdout.contains("\u{1B}["), "no colour when not on a terminal")
    }

    @Test func offlineAndOnlineTracesAgree() async throws {
        let (folder, config) = try Self.nodeFolder(token: "t0ken")
        let node = try await NodeProcess(config: config)
        var ids: [String] = []
        for n in 0..<3 {
            let answer = try await post("http://127.0.0.1:\(node.httpPort)/front", "n\(n)", headers: [("X-Batch", "b\(n % 2)")])
            ids.append(try #require(answer.headers.first { $0.0.lowercased() == "x-message-id" }?.1))
        }
        // Online: the CLI asks the running node (the config carries the token); it says on
        // standard error when it falls back to the store file, and here it says nothing.
        let online = try CLITests.run(["trace", ids[1], "--config", config, "--json"], in: folder)
        #expect(online.stderr.isEmpty, "\(online.stderr)")
        let onlineQuery = try CLITests.run(["trace", "--route", "front", "--header", "x-batch=b0", "--config", config, "--json"], in: folder)
        #expect(online.status == 0, "\(online.stderr)")
        // Without the token the admin API refuses.
        let (status, _) = try await NodeTests.get("http://127.0.0.1:\(node.adminPort)/admin/traces?id=\(ids[1])")
        #expect(status == 401)
        let (authorized, body) = try await NodeTests.get("http://127.0.0.1:\(node.adminPort)/admin/traces?id=\(ids[1])", headers: [("Authorization", "Bearer t0ken")])
        #expect(authorized == 200)
        #expect(body.contains(ids[1]))

        // The other commands that ask the node.
        try "from a file".write(toFile: folder + "/message.txt", atomically: true, encoding: .utf8)
        let sent = try CLITests.run(["send", "front", "--file", folder + "/message.txt", "--header", "X-Batch=cli", "--config", config], in: folder)
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(sent.stdout == "back saw from a file")
        let sentID = try #require(sent.stderr.firstMatch(of: /message ([0-9a-f-]{36})/)?.1)
        let sentTrace = try CLITests.run(["trace", String(sentID), "--config", config], in: folder)
        #expect(sentTrace.stdout.contains("route front  ok"), "\(sentTrace.stdout)")
        let routes = try CLITests.run(["routes", "--config", config], in: folder)
        #expect(routes.status == 0, "\(routes.stderr)")
        #expect(routes.stdout.contains("ROUTE"), "\(routes.stdout)")
        #expect(routes.stdout.split(separator: "\n").contains { $0.hasPrefix("front ") && $0.contains("http:/front?method=POST") && $0.contains(" 4 ") }, "\(routes.stdout)")
        let sla = try CLITests.run(["sla", "--config", config], in: folder)
        #expect(sla.stdout.contains("no route has an SLA"), "\(sla.stdout)")
        let failedSend = try CLITests.run(["send", "nope", "--file", folder + "/message.txt", "--config", config], in: folder)
        #expect(failedSend.status == 1)
        #expect(failedSend.stderr.contains("no route with id 'nope'"), "\(failedSend.stderr)")
        try await node.stop()
        let down = try CLITests.run(["routes", "--config", config], in: folder)
        #expect(down.status == 1)
        #expect(down.stderr.contains("no node answers on http://127.0.0.1:"), "\(down.stderr)")

        let store = folder + "/var/audit.db"
        let offline = try CLITests.run(["trace", ids[1], "--store", store, "--json"], in: folder)
        let offlineQuery = try CLITests.run(["trace", "--route", "front", "--header", "x-batch=b0", "--store", store, "--json"], in: folder)
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(!online.stdout.isEmpty)
        #expect(online.stdout == offline.stdout)
        #expect(onlineQuery.stdout == offlineQuery.stdout)
        #expect(try Self.traces(offlineQuery).map(\.messageID) == [ids[2], ids[0]])

        let missing = try CLITests.run(["trace", "01a1fe11-0000-7000-8000-000000000000", "--store", store], in: folder)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no trace for message 01a1fe11-0000-7000-8000-000000000000"))
        let noStore = try CLITests.run(["trace", "--store", folder + "/nothing.db"], in: folder)
        #expect(noStore.status == 1)
        #expect(noStore.stderr.contains("no audit store at \(folder)/nothing.db"))
    }

    @Test func followPrintsMessagesAsTheyFinish() async throws {
        let (folder, config) = try Self.nodeFolder()
        let node = try await NodeProcess(config: config)
        // One message before: --follow must not print it.
        _ = try await post("http://127.0.0.1:\(node.httpPort)/front", "old")
        let follow = Process()
        follow.executableURL = URL(fileURLWithPath: CLITests.binary)
        follow.arguments = ["trace", "--follow", "--route", "front", "--json", "--config", config]
        follow.currentDirectoryURL = URL(fileURLWithPath: folder)
        let out = Pipe()
        follow.standardOutput = out
        follow.standardError = FileHandle.nullDevice
        let printed = NodeProcess.LogBuffer()
        out.fileHandleForReading.readabilityHandler = { handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            printed.text.withLock { $0 += chunk }
        }
        try follow.run()
        defer { if follow.isRunning { kill(follow.processIdentifier, SIGKILL) } }
        try await Task.sleep(for: .milliseconds(800))
        var ids: [String] = []
        for body in ["new-1", "new-2"] {
            let answer = try await post("http://127.0.0.1:\(node.httpPort)/front", body)
            ids.append(try #require(answer.headers.first { $0.0.lowercased() == "x-message-id" }?.1))
        }
        // Only whole lines: the pipe may hand over a line in pieces.
        var lines: [Substring] = []
        for _ in 0..<100 {
            let text = printed.text.withLock { $0 }
            lines = text[..<(text.lastIndex(of: "\n") ?? text.startIndex)].split(separator: "\n")
            if lines.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(follow.processIdentifier, SIGKILL)
        out.fileHandleForReading.readabilityHandler = nil
        let traces = try lines.map { try JSONDecoder().decode(Trace.self, from: Data($0.utf8)) }
        #expect(traces.map(\.messageID) == ids)
        try await node.stop()
    }
}
