// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDropFolder
import SwitchboardFile
import SwitchboardRouting
import SwitchboardSFTP
import SwitchboardTestServers
import Synchronization
import Testing

/// SFTP drops through routes, against a real sshd: the remote folder is a local folder the
/// test also sees directly.
@Suite(.serialized)
struct SFTPAdapterTests {
    static func engine(_ yaml: String, data: String) throws -> RouteEngine {
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let loader = RouteLoader(
            catalog: AdapterCatalog([SFTPAdapter(dataDirectory: data, logger: quiet), FileAdapter(dataDirectory: data, logger: quiet)]),
            logger: quiet,
            environment: [:]
        )
        return try loader.load(sources: [(yaml, "routes.yaml")])
    }

    static func files(_ folder: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return [] }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue { found.append(relative) }
        }
        return found.sorted()
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<3000 where !condition() { try? await Task.sleep(for: .milliseconds(20)) }
        return condition()
    }

    static func uri(_ server: SSHServer, _ path: String, _ options: String = "") -> String {
        "sftp://\(server.user)@127.0.0.1:\(server.port)\(path)?privateKey=\(server.key)&hostKey=\(server.fingerprint)\(options)"
    }

    @Test func remoteDropsAreTakenArchivedAndWrittenBack() async throws {
        let server = try SSHServer()
        let inbox = server.folder + "/in"
        let outbox = server.folder + "/out"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        let engine = try Self.engine("""
        routes:
          - id: remote
            from: "\(Self.uri(server, inbox, "&delay=50ms&minAge=100ms"))"
            steps:
              - set-body: "seen ${file:name}: ${body}"
              - to: "\(Self.uri(server, outbox, "&fileName=${file:name.noext}.out"))"
        """, data: server.folder + "/data")
        let task = Task { try await engine.run() }
        defer { task.cancel() }
        try Data("one".utf8).write(to: URL(fileURLWithPath: inbox + "/a.txt"))
        // A file still being written (growing every 50 ms) is not taken.
        let growing = try #require(FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: inbox + "/b.txt", contents: nil); return inbox + "/b.txt" }()))
        for index in 0..<20 {
            growing.write(Data("part \(index)\n".utf8))
            try await Task.sleep(for: .milliseconds(50))
            #expect(!FileManager.default.fileExists(atPath: outbox + "/b.out"), "taken while written")
        }
        try growing.close()
        #expect(await Self.eventually { Self.files(outbox) == ["a.out", "b.out"] }, "\(Self.files(outbox))")
        #expect(try String(contentsOfFile: outbox + "/a.out", encoding: .utf8) == "seen a.txt: one")
        #expect(try String(contentsOfFile: outbox + "/b.out", encoding: .utf8).hasSuffix("part 19\n"))
        #expect(await Self.eventually { Self.files(inbox) == [".done/a.txt", ".done/b.txt"] }, "\(Self.files(inbox))")
        #expect(!Self.files(outbox).contains { $0.hasSuffix(".tmp") })
        task.cancel()
        _ = await task.result
    }

    @Test func aRouteLogsInWithAPasswordThatNeverShows() async throws {
        let server = try SSHServer()
        let user = try #require(server.passwordUser, "the test sshd makes a password user only when the tests run as root")
        let inbox = server.passwordHome + "/in"
        let outbox = server.passwordHome + "/out"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.ownerAccountName: user], ofItemAtPath: inbox)
        func uri(_ path: String, _ options: String) -> String {
            "sftp://\(user)@127.0.0.1:\(server.port)\(path)?password=\(server.password)&hostKey=\(server.fingerprint)\(options)"
        }
        let engine = try Self.engine("""
        routes:
          - id: password
            from: "\(uri(inbox, "&delay=50ms&minAge=50ms"))"
            steps:
              - to: "\(uri(outbox, "&fileName=${file:name}&mkdirs=true"))"
        """, data: server.folder + "/data")
        let source = try #require(engine.routes.first?.source.description)
        #expect(source.contains("password=***") && !source.contains(server.password), "\(source)")
        let task = Task { try await engine.run() }
        defer { task.cancel() }
        try Data("by password".utf8).write(to: URL(fileURLWithPath: inbox + "/p.txt"))
        #expect(await Self.eventually { Self.files(outbox) == ["p.txt"] }, "\(Self.files(outbox))")
        #expect(try String(contentsOfFile: outbox + "/p.txt", encoding: .utf8) == "by password")
        #expect(await Self.eventually { Self.files(inbox) == [".done/p.txt"] }, "\(Self.files(inbox))")
        task.cancel()
        _ = await task.result
    }

    @Test func aServerThatNeverAnswersHoldsNoThreadOtherRoutesNeed() async throws {
        let server = try SSHServer()
        let silent = try SilentListener()
        // More stuck consumers than the machine has cores: were their calls made on the
        // threads async code runs on, nothing else could run until they time out.
        let stuck = ProcessInfo.processInfo.activeProcessorCount + 2
        var yaml = """
        routes:
          - id: ping
            from: direct:ping
            steps:
              - set-body: pong

        """
        for index in 0..<stuck {
            yaml += """
              - id: stuck\(index)
                from: "sftp://\(server.user)@127.0.0.1:\(silent.port)/in\(index)?privateKey=\(server.key)&hostKey=\(server.fingerprint)&connectTimeout=30s&delay=50ms"
                steps:
                  - log: never

            """
        }
        let engine = try Self.engine(yaml, data: server.folder + "/data")
        let started = ContinuousClock.now
        let task = Task { try await engine.run() }
        defer { task.cancel() }
        // Let every consumer start connecting (and wait there for the greeting).
        try await Task.sleep(for: .milliseconds(500))
        let reply = try await engine.process(routeID: "ping", Exchange(message: Message(body: ByteBuffer(string: "ping")), pattern: .inOut))
        #expect(reply.message.bodyString == "pong")
        // Answered while the connection attempts (30 s timeout) are still waiting.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aChangedHostKeyIsRefusedAndNothingIsTaken() async throws {
        let server = try SSHServer()
        let inbox = server.folder + "/in"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: inbox + "/a.txt"))
        let wrong = "sftp://\(server.user)@127.0.0.1:\(server.port)\(inbox)?privateKey=\(server.key)&hostKey=\(server.otherFingerprint)&delay=50ms"
        let engine = try Self.engine("""
        routes:
          - id: remote
            from: "\(wrong)"
            steps: [ { log: taken } ]
        """, data: server.folder + "/data")
        let ended = Mutex(false)
        let task = Task {
            defer { ended.withLock { $0 = true } }
            try await engine.run()
        }
        try await Task.sleep(for: .milliseconds(800))
        // The consumer keeps trying (and refusing) instead of ending the engine.
        #expect(!ended.withLock { $0 }, "the engine stopped on its own")
        task.cancel()
        let result = await task.result
        #expect((try? result.get()) != nil, "the engine ended with \(result)")
        #expect(Self.files(inbox) == ["a.txt"])
    }

    @Test func endpointsWithoutAHostKeyCheckOrWithEscapingNamesAreRefused() async throws {
        let server = try SSHServer()
        #expect {
            try Self.engine("""
            routes:
              - id: a
                from: "sftp://\(server.user)@127.0.0.1:\(server.port)/tmp/in?privateKey=\(server.key)"
                steps: [ { log: x } ]
            """, data: server.folder + "/data")
        } throws: { error in
            "\(error)".contains("needs 'hostKey=SHA256:…' or 'knownHosts=FILE'")
        }
        let outbox = server.folder + "/out"
        let engine = try Self.engine("""
        routes:
          - id: write
            from: direct:write
            steps: [ { to: "\(Self.uri(server, outbox, "&fileName=${header.name}"))" } ]
        """, data: server.folder + "/data")
        for bad in ["../escape.txt", "/etc/x", "a/../../b"] {
            var message = Message(body: ByteBuffer(string: "x"))
            message.headers["name"] = bad
            await #expect {
                try await engine.process(routeID: "write", Exchange(message: message, pattern: .inOnly))
            } throws: { error in
                (error as? StepFailure)?.status == 400 && "\(error)".contains("refused to write")
            }
        }
        var good = Message(body: ByteBuffer(string: "fine"))
        good.headers["name"] = "sub/ok.txt"
        _ = try await engine.process(routeID: "write", Exchange(message: good, pattern: .inOnly))
        #expect(Self.files(outbox) == ["sub/ok.txt"])
        #expect(!FileManager.default.fileExists(atPath: server.folder + "/escape.txt"))
    }
}
