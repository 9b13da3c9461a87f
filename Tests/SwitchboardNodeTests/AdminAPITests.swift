// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SwitchboardAudit
import SwitchboardCore
import SwitchboardNode
import SwitchboardTestServers
import Testing
import Yams

#if canImport(Glibc)
import Glibc
#endif

// A time limit makes a hang fail with the test's name (one PostgreSQL test hung once in a full run).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct AdminAPITests {
    static let routes = """
    routes:
      - id: echo
        from: http:/echo?method=POST
        sla: { p95: 0.001ms, errors: 10%, window: 1m, alert: "route:alerts" }
        steps:
          - choice:
              - when: { header: X-Fail, exists: true }
                steps:
                  - to: http://127.0.0.1:1/nowhere
              - otherwise:
                  - set-body: "echo ${body}"
      - id: alerts
        from: direct:alerts
        steps:
          - log: "SLA alert ${body}"
    """

    /// Runs a node on `routes` with an admin token, hands its ports to `body`, then stops it.
    static func withNode(
        auditStore: String? = nil,
        adjust: (inout NodeConfiguration) -> Void = { _ in },
        _ body: @Sendable (_ http: Int, _ admin: Int, _ node: SwitchboardNode) async throws -> Void
    ) async throws {
        let folder = try NodeTests.routesFolder(routes)
        var configuration = NodeConfiguration(environment: [:])
        configuration.httpListen = .init(host: "127.0.0.1", port: 0)
        configuration.adminListen = .init(host: "127.0.0.1", port: 0)
        configuration.routesDirectory = folder + "/routes"
        configuration.dataDirectory = folder + "/var"
        configuration.adminToken = "t"
        configuration.audit.store = auditStore
        adjust(&configuration)
        let node = try await SwitchboardNode(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let http = try #require(await node.httpPort)
            let admin = try #require(await node.adminPort)
            try await body(http, admin, node)
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    static let auth = [("Authorization", "Bearer t")]

    /// The admin listener serves a bounded number of connections at once: with every slot
    /// held, the next caller waits in the accept queue and is served once a slot frees.
    @Test func theAdminListenerServesABoundedNumberOfConnections() async throws {
        try await Self.withNode(adjust: { $0.adminMaxConnections = 4 }) { _, admin, _ in
            let holders = try (0..<4).map { _ in try RawConnection(port: admin) }
            for holder in holders {
                holder.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                let reply = await holder.read(until: Self.wholeHealthReply)
                #expect(reply.text.hasPrefix("HTTP/1.1 200"), "\(reply.text)")
            }
            let next = try RawConnection(port: admin)
            next.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            // While every slot is held the request is not read (the window proves nothing
            // when it passes; it cannot fail while the limit holds).
            var wait = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(next.descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let early = await next.read(until: Self.wholeHealthReply)
            #expect(early.text.isEmpty && !early.closed, "served past the limit: \(early.text)")
            wait.tv_sec = 10
            setsockopt(next.descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            shutdown(holders[0].descriptor, Int32(SHUT_RDWR))
            let served = await next.read(until: Self.wholeHealthReply)
            #expect(served.text.hasPrefix("HTTP/1.1 200"), "\(served.text)")
        }
    }

    /// An admin connection left idle is closed after `admin.idle-timeout`.
    @Test func idleAdminConnectionsAreClosed() async throws {
        try await Self.withNode(adjust: { $0.adminIdleTimeout = .seconds(1) }) { _, admin, _ in
            let idle = try RawConnection(port: admin)
            idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            let reply = await idle.read(until: Self.wholeHealthReply)
            #expect(reply.text.hasPrefix("HTTP/1.1 200"), "\(reply.text)")
            let end = await idle.read()
            #expect(end.closed && end.text.isEmpty, "an idle admin connection stays open: \(end.text)")
        }
    }

    static let wholeHealthReply: @Sendable (String) -> Bool = { $0.contains("\r\n\r\n") && $0.hasSuffix("}") }

    @Test func metricsParseAsPrometheusText() async throws {
        try await Self.withNode { http, admin, _ in
            _ = try await post("http://127.0.0.1:\(http)/echo", "a")
            _ = try await post("http://127.0.0.1:\(http)/echo", "b", headers: [("X-Fail", "1")])
            #expect(try await NodeTests.get("http://127.0.0.1:\(admin)/metrics").0 == 401)
            let (status, text) = try await NodeTests.get("http://127.0.0.1:\(admin)/metrics", headers: Self.auth)
            #expect(status == 200)
            // Every line is a comment (# HELP / # TYPE) or `name{labels} value`.
            let sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+|[+-]Inf|NaN$/
            var samples: [String: Double] = [:]
            for line in text.split(separator: "\n") where !line.isEmpty {
                if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") { continue }
                #expect(line.wholeMatch(of: sample) != nil, "not Prometheus text: \(line)")
                let parts = line.split(separator: " ")
                samples[String(parts[0])] = Double(parts[parts.count - 1])
            }
            #expect(samples[#"switchboard_route_messages_total{route="echo",outcome="ok"}"#] == 1)
            #expect(samples[#"switchboard_route_messages_total{route="echo",outcome="failed"}"#] == 1)
            #expect(samples[#"switchboard_step_total{route="echo",step="0",kind="choice",outcome="ok"}"#] == 1)
            #expect(samples[#"switchboard_step_total{route="echo",step="0.when[0].0",kind="to",outcome="failed"}"#] == 1)
            #expect(samples[#"switchboard_inflight_exchanges{route="echo"}"#] == 0)
            #expect(samples[#"switchboard_audit_buffer_depth"#] != nil)
            #expect(samples.keys.contains { $0.hasPrefix(#"switchboard_route_duration_seconds_bucket{route="echo""#) })
            #expect(samples.keys.contains { $0.hasPrefix(#"switchboard_sla_breached{route="echo",objective="p95"}"#) })
        }
    }

    @Test func routesSLAAndSendAnswerThroughTheAdminAPI() async throws {
        try await Self.withNode { http, admin, _ in
            let base = "http://127.0.0.1:\(admin)"
            // Send a message into a route the way `switchboard send` does.
            var request = HTTPClientRequest(url: base + "/admin/routes/echo/messages")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer t")
            request.body = .bytes(ByteBuffer(string: "via admin"))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 200)
            #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)) == "echo via admin")
            let id = try #require(response.headers.first(name: "X-Message-ID"))
            let (traceStatus, trace) = try await NodeTests.get(base + "/admin/traces/\(id)", headers: Self.auth)
            #expect(traceStatus == 200)
            #expect(try JSONDecoder().decode(Trace.self, from: Data(trace.utf8)).status == "ok")

            let unknown = try await post(base + "/admin/routes/nope/messages", "x", headers: Self.auth)
            #expect(unknown.status == 404)
            #expect(unknown.body.contains("no route with id 'nope'"))

            _ = try await post("http://127.0.0.1:\(http)/echo", "b", headers: [("X-Fail", "1")])
            let (routesStatus, routes) = try await NodeTests.get(base + "/admin/routes", headers: Self.auth)
            #expect(routesStatus == 200)
            let listed = try #require((try JSONSerialization.jsonObject(with: Data(routes.utf8)) as? [String: Any])?["routes"] as? [[String: Any]])
            #expect(listed.first?["id"] as? String == "echo")
            #expect(listed.first?["messages"] as? Int == 2)
            #expect(listed.first?["failures"] as? Int == 1)

            // A 1µs p95 and a 10% error rate: both breached once the monitor looks (every second).
            var object: [String: Any] = [:]
            for _ in 0..<50 {
                let (_, sla) = try await NodeTests.get(base + "/admin/sla", headers: Self.auth)
                object = try #require(try JSONSerialization.jsonObject(with: Data(sla.utf8)) as? [String: Any])
                if (object["events"] as? [Any])?.count == 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let objectives = try #require(object["objectives"] as? [[String: Any]])
            #expect(objectives.map { $0["objective"] as? String } == ["p95", "errors"])
            #expect(objectives.allSatisfy { $0["state"] as? String == "breached" }, "\(objectives)")
            // The breaches are in the audit trail too.
            let events = try #require(object["events"] as? [[String: Any]])
            #expect(Set(events.compactMap { $0["objective"] as? String }) == ["p95", "errors"])
            // And each went to the alert route as a JSON message (its traces show the bodies).
            var alerts: [Trace] = []
            for _ in 0..<50 {
                let (_, page) = try await NodeTests.get(base + "/admin/traces?route=alerts", headers: Self.auth)
                struct Page: Decodable { let traces: [Trace] }
                alerts = try JSONDecoder().decode(Page.self, from: Data(page.utf8)).traces
                if alerts.count == 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let bodies = alerts.compactMap { $0.events.first { $0.phase == "started" }?.bodyPrefix }.map { String(decoding: $0, as: UTF8.self) }
            #expect(bodies.count == 2)
            #expect(bodies.allSatisfy { $0.contains("\"route\":\"echo\"") && $0.contains("\"state\":\"breached\"") }, "\(bodies)")
        }
    }

    @Test func theOpenAPIDocumentListsExactlyTheServedPaths() async throws {
        try await Self.withNode { _, admin, _ in
            let base = "http://127.0.0.1:\(admin)"
            let (status, text) = try await NodeTests.get(base + "/admin/openapi.yaml", headers: Self.auth)
            #expect(status == 200)
            let document = try #require(try Yams.load(yaml: text) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: Any])
            #expect(Set(paths.keys) == [
                "/health", "/metrics", "/admin/routes", "/admin/routes/{id}/messages", "/admin/traces",
                "/admin/traces/{id}", "/admin/sla", "/admin/openapi.yaml",
                "/admin/dead-letters", "/admin/dead-letters/{id}", "/admin/dead-letters/{id}/replay", "/admin/dead-letters/replay",
                "/admin/services", "/admin/services/{name}/instances/{id}",
            ])
            // Each documented GET answers 200 with the token (path parameters filled in).
            for (path, item) in paths {
                guard let operations = item as? [String: Any], operations["get"] != nil else { continue }
                let concrete = path.replacingOccurrences(of: "{id}", with: "01000000-0000-7000-8000-000000000000")
                let (code, _) = try await NodeTests.get(base + concrete, headers: Self.auth)
                #expect(code == (path.contains("{id}") ? 404 : 200), "GET \(path) answered \(code)")
            }
            // Every $ref points at something defined.
            let components = try #require(document["components"] as? [String: Any])
            for reference in text.matches(of: /\$ref: '#\/components\/(\w+)\/(\w+)'/) {
                let section = components[String(reference.1)] as? [String: Any]
                #expect(section?[String(reference.2)] != nil, "dangling \(reference.0)")
            }
        }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES"] != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func aNodeKeepsItsAuditTrailInPostgreSQL() async throws {
        let url = try PostgresTestServer.freshDatabase(prefix: "node")
        try await Self.withNode(auditStore: url) { http, admin, _ in
            let answer = try await post("http://127.0.0.1:\(http)/echo", "to postgres", headers: [("X-Region", "EU")])
            #expect(answer.body == "echo to postgres")
            let id = try #require(answer.headers.first { $0.0.lowercased() == "x-message-id" }?.1)
            let (status, text) = try await NodeTests.get("http://127.0.0.1:\(admin)/admin/traces/\(id)", headers: Self.auth)
            #expect(status == 200)
            let trace = try JSONDecoder().decode(Trace.self, from: Data(text.utf8))
            #expect(trace.status == "ok")
            #expect(trace.events.contains { $0.stepKind == "choice" && $0.detail == "otherwise (no when matched)" })
        }
        // The rows are in PostgreSQL, where every node of a cluster can read them.
        let count = Process()
        count.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        count.arguments = [url, "-t", "-A", "-c", "SELECT count(*) FROM audit_events WHERE route_id = 'echo'"]
        let out = Pipe()
        count.standardOutput = out
        try count.run()
        count.waitUntilExit()
        let rows = Int(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect((rows ?? 0) >= 4, "rows: \(String(describing: rows))")
    }
}
