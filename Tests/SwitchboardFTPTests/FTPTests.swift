// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDropFolder
import SwitchboardFTP
import SwitchboardRouting
import SwitchboardTestServers
import Testing

@Suite(.serialized)
struct FTPTests {
    static func files(_ folder: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return [] }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue { found.append(relative) }
        }
        return found.sorted()
    }

    static func client(_ server: FTPServer, password: String = "drop-secret") throws -> FTPClient {
        try FTPClient(.init(host: "127.0.0.1", port: server.port, user: "switchboard", password: password, tls: server.cert != nil, caFile: server.cert, timeout: .seconds(5)))
    }

    @Test(arguments: [false, true])
    func filesGoBackAndForth(tls: Bool) throws {
        let server = try FTPServer(tls: tls)
        let client = try Self.client(server)
        try client.makeDirectory("/in")
        let content = Array((0..<100_000).map { UInt8($0 % 251) })
        try client.write(content, to: "/in/a.bin")
        #expect(try client.read("/in/a.bin") == content)
        let listed = try client.list("/in")
        #expect(listed.map(\.name) == ["a.bin"])
        #expect(listed.first?.size == 100_000 && listed.first?.isFile == true)
        #expect(listed.first.map { abs($0.modifiedNanos / 1_000_000_000 - Int64(Date().timeIntervalSince1970)) < 120 } == true)
        try client.rename("/in/a.bin", to: "/in/b.bin")
        #expect(try client.exists("/in/b.bin"))
        #expect(try !client.exists("/in/a.bin"))
        try client.remove("/in/b.bin")
        #expect(try client.list("/in").isEmpty)
        #expect(throws: FTPError.self) { try client.read("/in/missing") }
        #expect {
            try Self.client(server, password: "wrong").list("/")
        } throws: { error in
            "\(error)".contains("cannot list /")
        }
    }

    @Test func ftpsRefusesAnUntrustedCertificate() throws {
        let server = try FTPServer(tls: true)
        let untrusted = try FTPClient(.init(host: "127.0.0.1", port: server.port, user: "switchboard", password: "drop-secret", tls: true, caFile: nil, timeout: .seconds(5)))
        #expect(throws: FTPError.self) { try untrusted.list("/") }
    }

    @Test(arguments: [false, true])
    func remoteDropsThroughRoutes(tls: Bool) async throws {
        let server = try FTPServer(tls: tls)
        let inbox = server.root + "/in"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        let scheme = tls ? "ftps" : "ftp"
        let options = "password=drop-secret" + (server.cert.map { "&caFile=\($0)" } ?? "")
        let base = "\(scheme)://switchboard@127.0.0.1:\(server.port)"
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let data = server.folder + "/data"
        let engine = try RouteLoader(
            catalog: AdapterCatalog([FTPAdapter(dataDirectory: data, logger: quiet)]), logger: quiet, environment: [:]
        ).load(sources: [("""
        routes:
          - id: remote
            from: "\(base)/in?\(options)&delay=50ms&minAge=100ms"
            steps:
              - set-body: "seen ${file:name}: ${body}"
              - to: "\(base)/out?\(options)&fileName=${file:name.noext}.out"
          - id: write
            from: direct:write
            steps: [ { to: "\(base)/out?\(options)&fileName=${header.name}" } ]
        """, "routes.yaml")])
        let task = Task { try await engine.run() }
        defer { task.cancel() }
        try Data("one".utf8).write(to: URL(fileURLWithPath: inbox + "/a.txt"))
        for _ in 0..<1500 where Self.files(server.root + "/out") != ["a.out"] || Self.files(inbox) != [".done/a.txt"] {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(Self.files(server.root + "/out") == ["a.out"])
        #expect(try String(contentsOfFile: server.root + "/out/a.out", encoding: .utf8) == "seen a.txt: one")
        #expect(Self.files(inbox) == [".done/a.txt"])
        var message = Message(body: ByteBuffer(string: "x"))
        message.headers["name"] = "../escape.txt"
        await #expect {
            try await engine.process(routeID: "write", Exchange(message: message, pattern: .inOnly))
        } throws: { error in
            (error as? StepFailure)?.status == 400
        }
        task.cancel()
        _ = await task.result
    }
}
