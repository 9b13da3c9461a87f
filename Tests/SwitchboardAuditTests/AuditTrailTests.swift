// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardAudit
import SwitchboardCore
import SwitchboardDigest
import SwitchboardRouting
import Synchronization
import SwitchboardTestServers
import Testing

/// `to: fail:NAME` fails every message; `to: echo:NAME` answers with a header and a new body.
struct AuditTestAdapter: Adapter {
    static let spec = EndpointSpec(
        schemes: ["fail", "echo"],
        summary: "test endpoints for the audit trail",
        consumerSyntax: "echo:NAME",
        producerSyntax: "fail:NAME | echo:NAME",
        options: [OptionSpec("password", .string, secret: true, doc: "a secret")]
    )

    struct Failing: Producer {
        let name: String
        func send(_ exchange: Exchange) async throws -> Exchange {
            throw ProcessingError("backend '\(name)' is down")
        }
    }

    struct Echo: Producer {
        let name: String
        func send(_ exchange: Exchange) async throws -> Exchange {
            var reply = exchange
            reply.message.headers["X-Echoed-By"] = name
            reply.message.body = ByteBuffer(string: "echo:" + exchange.message.bodyString)
            return reply
        }
        func describeReply(_ reply: Exchange) -> String? { "echoed by \(name)" }
    }

    func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        endpoint.scheme == "fail" ? Failing(name: endpoint.path) : Echo(name: endpoint.path)
    }
}

func temporarySQLitePath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("sb-audit-\(UUID().uuidString)/audit.db").path
}

extension PostgresTestServer {
    static let note: Comment = "needs SWITCHBOARD_TEST_POSTGRES; make test starts a PostgreSQL server and sets it"

    /// A store on a fresh database of that server.
    static func freshStore() async throws -> PostgresAuditStore {
        try await PostgresAuditStore(url: try freshDatabase(prefix: "audit"), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }
}

/// An audit trail on a SQLite file in a fresh folder, its writer running, and an engine
/// loaded from `yaml` that reports to it.
struct AuditHarness {
    let store: any AuditStore
    let trail: AuditTrail
    let engine: RouteEngine

    init(_ yaml: String, policy: AuditPolicy = AuditPolicy(), capacity: Int = 10_000, store: (any AuditStore)? = nil) throws {
        self.store = try store ?? SQLiteAuditStore(path: temporarySQLitePath())
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        trail = AuditTrail(store: self.store, policy: policy, capacity: capacity, retention: .init(age: nil, maxBytes: nil), logger: logger)
        engine = try RouteLoader(catalog: AdapterCatalog([AuditTestAdapter()]), observers: [trail], logger: logger, environment: [:])
            .load(sources: [(yaml, "routes.yaml")])
    }

    /// Runs `body` with the writer running, then stops it.
    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        let writer = Task { try await trail.run() }
        defer {
            trail.stop()
            writer.cancel()
        }
        return try await body()
    }

    func send(_ route: String, _ body: String, headers: [(String, String)] = []) async throws -> (MessageID, Result<Message, any Error>) {
        let message = Message(headers: Headers(headers), body: ByteBuffer(string: body))
        do {
            let reply = try await engine.process(routeID: route, Exchange(message: message, pattern: .inOut))
            return (message.id, .success(reply.message))
        } catch {
            return (message.id, .failure(error))
        }
    }

    func trace(_ id: MessageID) async throws -> Trace {
        try #require(try await store.traces(TraceQuery(messageID: id.description)).first)
    }
}

@Suite struct AuditTrailTests {
    static let routes = """
    routes:
      - id: orders
        from: direct:orders
        steps:
          - set-header: { name: X-Stage, value: received }
          - choice:
              - when: { header: X-Region, equals: EU }
                steps:
                  - to: echo:eu
              - when: { header: X-Region, equals: US }
                steps:
                  - to: echo:us
              - otherwise:
                  - to: fail:nowhere
          - route: audit-log
      - id: audit-log
        from: direct:audit-log
        steps:
          - set-header: { name: X-Logged, value: "yes" }
      - id: batch
        from: direct:batch
        steps:
          - split:
              lines: true
              steps:
                - to: echo:line
    """

    @Test func aRoutedMessagesTraceShowsEveryStepInOrderWithTheChosenBranch() async throws {
        let harness = try AuditHarness(Self.routes)
        try await harness.run {
            let (id, result) = try await harness.send("orders", "{\"id\":7}", headers: [("X-Region", "US")])
            #expect((try? result.get())?.bodyString == "echo:{\"id\":7}")
            // The engine returned, so the events are already committed: no waiting here.
            let trace = try await harness.trace(id)
            #expect(trace.status == "ok")
            #expect(trace.routeID == "orders")
            let steps = trace.events.filter { !$0.isRoute }.map { "\($0.routeID) \($0.stepPath ?? "") \($0.stepKind ?? "")" }
            #expect(steps == [
                "orders 0 set-header",
                "orders 1 choice",
                "orders 1.when[1].0 to",
                "orders 2 route",
                "audit-log 0 set-header",
            ])
            let choice = try #require(trace.events.first { $0.stepKind == "choice" })
            #expect(choice.detail == "when[1] matched: header X-Region equals 'US'")
            let to = try #require(trace.events.first { $0.stepKind == "to" })
            #expect(to.endpoint == "echo:us")
            #expect(to.detail == "echoed by us")
            #expect(to.bodySizeIn == 8)
            #expect(to.bodySize == 13)
            #expect(to.bodyChanged)
            #expect(to.bodyHash == Array("echo:{\"id\":7}".utf8).withUnsafeBytes { SHA256.hex($0) })
            // The called route's rows belong to the same message but are not its entry.
            #expect(trace.events.contains { $0.isRoute && $0.routeID == "audit-log" && !$0.entry })

            let text = TraceRenderer().render(trace)
            let lines = text.split(separator: "\n").map(String.init)
            func position(_ fragment: String) -> Int? { lines.firstIndex { $0.contains(fragment) } }
            let order = ["route orders", "0 set-header", "1 choice", "1.when[1].0 to echo:us", "2 route", "route audit-log", "0 set-header"]
            var last = -1
            for fragment in order {
                let index = try #require(lines.indices.first { $0 > last && lines[$0].contains(fragment) }, "\(fragment) missing or out of order in:\n\(text)")
                last = index
            }
            #expect(position("when[1] matched: header X-Region equals 'US'") != nil, "\(text)")
            #expect(text.contains("headers +X-Echoed-By=us"), "\(text)")
            #expect(text.contains("body changed: 13 B"), "\(text)")
        }
    }

    @Test func aFailedStepsErrorAppearsInTheTrace() async throws {
        let harness = try AuditHarness(Self.routes)
        try await harness.run {
            let (id, result) = try await harness.send("orders", "x", headers: [("X-Region", "MARS")])
            guard case .failure = result else {
                Issue.record("the route should fail")
                return
            }
            let trace = try await harness.trace(id)
            #expect(trace.status == "failed")
            let failed = try #require(trace.events.first { $0.stepKind == "to" })
            #expect(failed.phase == "failed")
            #expect(failed.error == "backend 'nowhere' is down")
            let text = TraceRenderer().render(trace)
            #expect(text.contains("1.otherwise.0 to fail:nowhere  FAILED"), "\(text)")
            #expect(!text.contains("\u{1B}["))
            // On a terminal: the same tree, failures in red.
            let colored = TraceRenderer(color: true).render(trace)
            #expect(colored.contains("\u{1B}[31mFAILED\u{1B}[0m"), "\(colored)")
            #expect(text.contains("error: backend 'nowhere' is down"), "\(text)")
            // Queries by status find it, and not among the ok ones.
            let failedIDs = try await harness.store.traces(TraceQuery(status: .failed)).map(\.messageID)
            #expect(failedIDs == [id.description])
            #expect(try await harness.store.traces(TraceQuery(status: .ok)).isEmpty)
        }
    }

    @Test func secretsAndMaskedHeadersAreStoredAsStars() async throws {
        let policy = AuditPolicy(mask: AuditPolicy.defaultMask + ["X-Api-Key", "password"])
        let harness = try AuditHarness(Self.routes, policy: policy)
        try await harness.run {
            let (id, _) = try await harness.send("orders", "{}", headers: [
                ("X-Region", "EU"),
                ("authorization", "Bearer abc123"),
                ("Cookie", "session=s3cr3t"),
                ("X-API-KEY", "k-999"),
                ("http.query.password", "hunter2"),
                ("X-Plain", "visible"),
            ])
            let trace = try await harness.trace(id)
            let start = try #require(trace.events.first { $0.isRoute && $0.phase == "started" })
            let pairs = try #require(start.headerPairs)
            let values = Dictionary(pairs.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
            #expect(values["authorization"] == "***")
            #expect(values["Cookie"] == "***")
            #expect(values["X-API-KEY"] == "***")
            #expect(values["http.query.password"] == "***")
            #expect(values["X-Plain"] == "visible")
            // No stored row anywhere holds a secret value.
            let json = trace.jsonLine()
            for secret in ["abc123", "s3cr3t", "k-999", "hunter2"] {
                #expect(!json.contains(secret), "\(secret) leaked into \(json)")
            }
        }
    }

    @Test func splitChildrenAreCollapsedWithCountsAndExpandable() async throws {
        let harness = try AuditHarness(Self.routes)
        try await harness.run {
            let (id, _) = try await harness.send("batch", "a\nb\nc")
            let trace = try await harness.trace(id)
            #expect(trace.children.count == 3)
            #expect(trace.children.allSatisfy { $0.parentID == id.description && $0.status == "ok" })
            let collapsed = TraceRenderer().render(trace)
            #expect(collapsed.contains("3 child messages (all ok)  --expand to show"), "\(collapsed)")
            #expect(!collapsed.contains("child \(trace.children[0].messageID)"))
            let expanded = TraceRenderer(expand: true).render(trace)
            for child in trace.children {
                #expect(expanded.contains("child \(child.messageID)"), "\(expanded)")
            }
            #expect(expanded.components(separatedBy: "to echo:line").count - 1 == 3, "\(expanded)")
        }
    }

    static func checkQueries(_ store: any AuditStore) async throws {
        let harness = try AuditHarness(Self.routes, store: store)
        try await harness.run {
            let before = wallClockMicroseconds()
            let (eu, _) = try await harness.send("orders", "1", headers: [("X-Region", "EU"), ("X-Correlation-ID", "order-1")])
            let (us, _) = try await harness.send("orders", "2", headers: [("X-Region", "US")])
            let (batch, _) = try await harness.send("batch", "x")
            let store = harness.store
            #expect(try await store.traces(TraceQuery()).map(\.messageID) == [batch, us, eu].map(\.description))
            #expect(try await store.traces(TraceQuery(routeID: "orders")).map(\.messageID) == [us, eu].map(\.description))
            #expect(try await store.traces(TraceQuery(correlationID: "order-1")).map(\.messageID) == [eu.description])
            // Without X-Correlation-ID the message's own id is its correlation id.
            #expect(try await store.traces(TraceQuery(correlationID: us.description)).map(\.messageID) == [us.description])
            #expect(try await store.traces(TraceQuery(correlationID: eu.description)).isEmpty)
            #expect(try await store.traces(TraceQuery(header: ("x-region", "US"))).map(\.messageID) == [us.description])
            #expect(try await store.traces(TraceQuery(header: ("X-Region", "us"))).isEmpty)
            #expect(try await store.traces(TraceQuery(limit: 1)).map(\.messageID) == [batch.description])
            #expect(try await store.traces(TraceQuery(until: before)).isEmpty)
            #expect(try await store.traces(TraceQuery(since: before)).count == 3)
            // Paging forward, as --follow does.
            let first = try #require(try await store.traces(TraceQuery(messageID: eu.description)).first?.entrySequence)
            #expect(try await store.traces(TraceQuery(afterSequence: first)).map(\.messageID) == [us, batch].map(\.description))
            // The admin API's parameters mean the same.
            let fromParameters = try TraceQuery(parameters: ["route": "orders", "header": "X-Region=EU", "limit": "5"])
            #expect(try await store.traces(fromParameters).map(\.messageID) == [eu.description])
            #expect(throws: TraceQueryError.self) { try TraceQuery(parameters: ["status": "maybe"]) }
            #expect(throws: TraceQueryError.self) { try TraceQuery(parameters: ["since": "yesterday"]) }
        }
    }

    @Test func queriesFilterByRouteCorrelationHeaderAndTime() async throws {
        try await Self.checkQueries(SQLiteAuditStore(path: temporarySQLitePath()))
    }

    @Test(.enabled(if: PostgresTestServer.url != nil, PostgresTestServer.note))
    func postgresQueriesFilterTheSameWay() async throws {
        let store = try await PostgresTestServer.freshStore()
        try await Self.checkQueries(store)
        try await store.close()
    }

    @Test(.enabled(if: PostgresTestServer.url != nil, PostgresTestServer.note))
    func postgresStoresTheWholeTrace() async throws {
        let store = try await PostgresTestServer.freshStore()
        let policy = AuditPolicy(mask: AuditPolicy.defaultMask + ["X-Api-Key"])
        let harness = try AuditHarness(Self.routes, policy: policy, store: store)
        try await harness.run {
            let (ok, _) = try await harness.send("orders", "{\"id\":7}", headers: [("X-Region", "US"), ("X-Api-Key", "k-1")])
            let (failed, _) = try await harness.send("orders", "x", headers: [("X-Region", "MARS")])
            let (batch, _) = try await harness.send("batch", "a\nb")
            let trace = try await harness.trace(ok)
            #expect(trace.events.filter { !$0.isRoute }.map { $0.stepPath ?? "" } == ["0", "1", "1.when[1].0", "2", "0"])
            #expect(trace.events.first { $0.stepKind == "choice" }?.detail == "when[1] matched: header X-Region equals 'US'")
            #expect(trace.events.first { $0.phase == "started" }?.headerPairs?.first { $0[0] == "X-Api-Key" }?[1] == "***")
            let to = try #require(trace.events.first { $0.stepKind == "to" })
            #expect(to.bodyPrefix == Array("echo:{\"id\":7}".utf8))
            #expect(try await harness.trace(failed).events.first { $0.phase == "failed" && !$0.isRoute }?.error == "backend 'nowhere' is down")
            #expect(try await harness.trace(batch).children.count == 2)
            // What SQLite would have stored, row for row.
            let sqlite = try AuditHarness(Self.routes, policy: policy, store: SQLiteAuditStore(path: temporarySQLitePath()))
            try await sqlite.run {
                let (id, _) = try await sqlite.send("orders", "{\"id\":7}", headers: [("X-Region", "US"), ("X-Api-Key", "k-1")])
                let local = try await sqlite.trace(id)
                #expect(local.events.map(\.stepPath) == trace.events.map(\.stepPath))
                #expect(local.events.map(\.headerPairs) == trace.events.map(\.headerPairs))
                #expect(local.events.map(\.bodyHash) == trace.events.map(\.bodyHash))
            }
            let aged = try await store.prune(before: wallClockMicroseconds() + 1_000_000, maxBytes: nil)
            #expect(aged > 0)
            #expect(try await store.traces(TraceQuery()).isEmpty)
        }
        try await store.close()
    }

    @Test func bodyPolicyDecidesWhatIsKept() async throws {
        let body = String(repeating: "z", count: 10_000)
        for (policy, hash, prefix) in [
            (AuditPolicy.BodySnapshot.default, true, 4096),
            (.none, false, 0),
            (.hashOnly, true, 0),
            (AuditPolicy.BodySnapshot(parsing: "1KiB")!, false, 1024),
        ] {
            let harness = try AuditHarness(Self.routes, policy: AuditPolicy(body: policy))
            try await harness.run {
                let (id, _) = try await harness.send("orders", body, headers: [("X-Region", "EU")])
                let start = try #require(try await harness.trace(id).events.first { $0.phase == "started" })
                #expect(start.bodySize == 10_000)
                #expect((start.bodyHash != nil) == hash, "\(policy)")
                #expect((start.bodyPrefix?.count ?? 0) == prefix, "\(policy)")
                if hash {
                    let expected = Array(body.utf8).withUnsafeBytes { SHA256.hex($0) }
                    #expect(start.bodyHash == expected)
                }
            }
        }
        #expect(AuditPolicy.BodySnapshot(parsing: "hash+8KiB") == AuditPolicy.BodySnapshot(hash: true, prefixBytes: 8192))
        #expect(AuditPolicy.BodySnapshot(parsing: "everything") == nil)
    }

    /// A body no larger than the stored prefix is stored whole, and its hash is worked out
    /// from the stored bytes when it is read: the events files hold no hash for it, the
    /// trace shows the body's hash as before. Without `hash` in the policy, no hash.
    @Test func aBodyStoredWholeIsHashedWhenReadBack() async throws {
        let bodies: [[UInt8]] = [Array("héllo".utf8), [0xFF, 0x00, 0x01], []]
        for hash in [true, false] {
            let path = temporarySQLitePath()
            let harness = try AuditHarness(
                Self.routes, policy: AuditPolicy(body: AuditPolicy.BodySnapshot(hash: hash, prefixBytes: 4096)),
                store: SQLiteAuditStore(path: path)
            )
            try await harness.run {
                for body in bodies {
                    let message = Message(headers: Headers([("X-Region", "EU")]), body: ByteBuffer(bytes: body))
                    _ = try await harness.engine.process(routeID: "orders", Exchange(message: message, pattern: .inOut))
                    let trace = try await harness.trace(message.id)
                    let start = try #require(trace.events.first { $0.phase == "started" })
                    #expect(start.bodyPrefix == body)
                    #expect(start.bodyHash == (hash ? body.withUnsafeBytes { SHA256.hex($0) } : nil), "\(body)")
                    // The echo step changed the body: its end has the new body and its hash.
                    let echo = try #require(trace.events.first { $0.stepKind == "to" })
                    let echoed = Array(("echo:" + String(decoding: body, as: UTF8.self)).utf8)
                    #expect(echo.bodyPrefix == echoed)
                    #expect(echo.bodyHash == (hash ? echoed.withUnsafeBytes { SHA256.hex($0) } : nil))
                }
            }
            var stored: [UInt8] = []
            for file in try FileManager.default.contentsOfDirectory(atPath: path + "-events") {
                stored += try Array(Data(contentsOf: URL(fileURLWithPath: path + "-events/" + file)))
            }
            let text = String(decoding: stored, as: UTF8.self)
            #expect(!text.contains("\"bodyHash\""))
            #expect(text.contains("\"bodyHashed\":true") == hash)
        }
    }
}
