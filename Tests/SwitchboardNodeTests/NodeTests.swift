// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardNode
import Testing

@Suite(.serialized)
struct NodeTests {
    static func routesFolder(_ yaml: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-node-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("routes"), withIntermediateDirectories: true)
        try yaml.write(to: folder.appendingPathComponent("routes/main.yaml"), atomically: true, encoding: .utf8)
        return folder.path
    }

    static func get(_ url: String, headers: [(String, String)] = []) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    func configuration(_ folder: String, token: String? = nil) -> NodeConfiguration {
        var configuration = NodeConfiguration(environment: [:])
        configuration.httpListen = .init(host: "127.0.0.1", port: 0)
        configuration.adminListen = .init(host: "127.0.0.1", port: 0)
        configuration.routesDirectory = folder + "/routes"
        configuration.dataDirectory = folder + "/var"
        configuration.adminToken = token
        return configuration
    }

    @Test func nodeServesRoutesAndHealthUntilCancelled() async throws {
        let folder = try Self.routesFolder("""
        routes:
          - id: hello
            from: http:/hello?method=GET
            steps:
              - set-body: "hello ${header.http.query.name}"
        """)
        var logger = Logger(label: "node-test")
        logger.logLevel = .critical
        let node = try await SwitchboardNode(configuration: configuration(folder), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let http = try #require(await node.httpPort)
            let admin = try #require(await node.adminPort)
            #expect(try await Self.get("http://127.0.0.1:\(http)/hello?name=node") == (200, "hello node"))
            let (status, health) = try await Self.get("http://127.0.0.1:\(admin)/health")
            #expect(status == 200)
            #expect(health.hasPrefix(#"{"status":"ok","routes":1,"#))
            #expect(FileManager.default.fileExists(atPath: folder + "/var"), "the data folder is made at start")
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    @Test func theNodeRaisesItsOpenFileLimitAndAppliesTheListenerLimits() async throws {
        // The soft limit one below the hard one: the node raises it back.
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur == limit.rlim_max, limit.rlim_max > 1024 {
            var lowered = limit
            lowered.rlim_cur = limit.rlim_max - 1
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered)
        }
        let folder = try Self.routesFolder("""
        routes:
          - id: hello
            from: http:/hello?method=GET
            steps:
              - set-body: "hello"
        """)
        var logger = Logger(label: "node-test")
        logger.logLevel = .critical
        var settings = configuration(folder)
        settings.httpLimits.maxHeaderCount = 5
        let node = try await SwitchboardNode(configuration: settings, logger: logger)
        var raised = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised)
        #expect(raised.rlim_cur == raised.rlim_max)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let http = try #require(await node.httpPort)
            let admin = try #require(await node.adminPort)
            let fields = (0..<4).map { ("X-H\($0)", "v") }
            #expect(try await Self.get("http://127.0.0.1:\(http)/hello", headers: Array(fields.prefix(3))).0 == 200)
            #expect(try await Self.get("http://127.0.0.1:\(http)/hello", headers: fields + [("X-H5", "v")]).0 == 431)
            let (_, metrics) = try await Self.get("http://127.0.0.1:\(admin)/metrics")
            #expect(metrics.contains(#"switchboard_http_rejected_total{reason="header-too-large"} 1"#))
            #expect(metrics.contains("switchboard_http_open_connections"))
            #expect(FileManager.default.fileExists(atPath: folder + "/var/tmp"), "the folder for body files is made at start")
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    @Test func adminTokenGuardsEverythingButHealth() async throws {
        let folder = try Self.routesFolder("routes: []")
        var logger = Logger(label: "node-test")
        logger.logLevel = .critical
        let node = try await SwitchboardNode(configuration: configuration(folder, token: "s3cret"), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let admin = try #require(await node.adminPort)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/health").0 == 200)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/admin/routes").0 == 401)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/admin/routes", headers: [("Authorization", "Bearer wrong")]).0 == 401)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/admin/routes", headers: [("Authorization", "Bearer s3cret")]).0 == 200)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/admin/traces").0 == 401)
            #expect(try await Self.get("http://127.0.0.1:\(admin)/metrics").0 == 401)
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    @Test func anAdminAPIOpenToTheNetworkNeedsAToken() async throws {
        let folder = try Self.routesFolder("routes: []")
        var configuration = configuration(folder)
        configuration.adminListen = .init(host: "0.0.0.0", port: 0)
        let node = try await SwitchboardNode(configuration: configuration, logger: Logger(label: "node-test") { _ in SwiftLogNoOpLogHandler() })
        await #expect {
            try await node.run(gracefulShutdownSignals: [])
        } throws: { error in
            "\(error)".contains("admin.listen is 0.0.0.0:0, which is not loopback, and no admin token is set")
        }
    }

    @Test func routeErrorsStopTheNodeFromLoading() async throws {
        let folder = try Self.routesFolder("""
        routes:
          - id: a
            from: http:/a
            steps:
              - sett-body: x
        """)
        await #expect {
            try await SwitchboardNode(configuration: configuration(folder), logger: Logger(label: "node-test") { _ in SwiftLogNoOpLogHandler() })
        } throws: { error in
            "\(error)" == "\(folder)/routes/main.yaml:5:9: error: unknown step 'sett-body'; did you mean 'set-body'?"
        }
    }
}
