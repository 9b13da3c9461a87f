// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDatabase
import SwitchboardRouting
import SwitchboardTestServers
import Synchronization
import Testing

/// `sql:` against a real PostgreSQL server (started by `make test`) and SQLite files.
@Suite(.serialized)
struct DatabaseAdapterTests {
    static let logger = Logger(label: "db-tests") { _ in SwiftLogNoOpLogHandler() }
    static let postgres = PostgresTestServer.url

    /// The datasources to run each test on: SQLite always, PostgreSQL when available.
    static func datasources() throws -> [(kind: String, url: String)] {
        var list = [("sqlite", "sqlite:" + NSTemporaryDirectory() + "sb-db-\(UUID().uuidString)/db.sqlite")]
        if postgres != nil { list.append(("postgres", try PostgresTestServer.freshDatabase(prefix: "sqltest"))) }
        return list
    }

    static func engine(_ url: String, _ yaml: String, observer: (any ExchangeObserver)? = nil) throws -> (RouteEngine, DatabaseAdapter) {
        // A generous connect timeout: a full test run keeps both cores and PostgreSQL busy,
        // and these tests are about what is stored, not how fast a connection comes.
        var spec = DatasourceSpec(name: "db", url: url)
        spec.connectTimeout = .seconds(30)
        let adapter = DatabaseAdapter(datasources: [spec], logger: logger)
        let engine = try RouteLoader(
            catalog: AdapterCatalog([adapter]), observers: observer.map { [$0] } ?? [], logger: logger, environment: [:]
        ).load(sources: [(yaml, "routes.yaml")])
        return (engine, adapter)
    }

    /// One route `q` running `statement` on a datasource `db` made from `spec`.
    static func singleStatement(_ spec: DatasourceSpec, _ statement: String) throws -> (RouteEngine, DatabaseAdapter) {
        let adapter = DatabaseAdapter(datasources: [spec], logger: logger)
        let engine = try RouteLoader(catalog: AdapterCatalog([adapter]), logger: logger, environment: [:]).load(sources: [("""
        routes:
          - id: q
            from: direct:q
            steps: [ { to: { uri: "sql:db", statement: "\(statement)" } } ]
        """, "routes.yaml")])
        return (engine, adapter)
    }

    static func send(_ engine: RouteEngine, _ route: String, _ body: String, headers: Headers = Headers()) async throws -> Message {
        try await engine.process(routeID: route, Exchange(message: Message(headers: headers, body: ByteBuffer(string: body)), pattern: .inOut)).message
    }

    static let schema = """
    routes:
      - id: setup
        from: direct:setup
        steps:
          - to: { uri: "sql:db", statement: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount NUMERIC(10,2), note TEXT, processed BOOLEAN NOT NULL DEFAULT false, taken_by TEXT)" }
      - id: insert
        from: direct:insert
        steps:
          - to: { uri: "sql:db", statement: "INSERT INTO orders (id, customer, amount, note) VALUES (:id, :customer, :${json:$.amount}, :${header.X-Note})" }
      - id: upsert
        from: direct:upsert
        steps:
          - to: { uri: "sql:db", statement: "INSERT INTO orders (id, customer, amount) VALUES (:id, :customer, :amount) ON CONFLICT (id) DO UPDATE SET customer = excluded.customer, amount = excluded.amount" }
      - id: lookup
        from: direct:lookup
        steps:
          - to: { uri: "sql:db", statement: "SELECT id, customer, amount, note FROM orders WHERE customer = :${header.X-Customer} ORDER BY id" }
      - id: enrich
        from: direct:enrich
        steps:
          - to: { uri: "sql:db", statement: "SELECT id, amount FROM orders WHERE customer = :customer ORDER BY id", resultField: orders }
    """

    @Test func parametersAreBoundNeverSplicedEvenAnInjectionAttempt() async throws {
        for (kind, url) in try Self.datasources() {
            let (engine, adapter) = try Self.engine(url, Self.schema)
            _ = try await Self.send(engine, "setup", "")
            var headers = Headers()
            headers["X-Note"] = "it's fine"
            let reply = try await Self.send(engine, "insert", #"{"id": 1, "customer": "Robert'); DROP TABLE orders;--", "amount": 12.5}"#, headers: headers)
            #expect(reply.bodyString == #"{"affectedRows":1}"#, "\(kind)")
            #expect(reply.headers["sql.affectedRows"] == "1")
            headers["X-Customer"] = "Robert'); DROP TABLE orders;--"
            let rows = try await Self.send(engine, "lookup", "", headers: headers)
            #expect(rows.bodyString == #"[{"id":1,"customer":"Robert'); DROP TABLE orders;--","amount":12.5,"note":"it's fine"}]"#, "\(kind): \(rows.bodyString)")
            // A value in a quoted string of the statement is text, not a parameter.
            headers["X-Customer"] = "' OR '1'='1"
            #expect(try await Self.send(engine, "lookup", "", headers: headers).bodyString == "[]", "\(kind)")
            await adapter.shutdown()
        }
    }

    @Test func aJSONArrayIsInsertedInOneTransactionAllOrNothing() async throws {
        for (kind, url) in try Self.datasources() {
            let (engine, adapter) = try Self.engine(url, Self.schema)
            _ = try await Self.send(engine, "setup", "")
            let batch = (1...200).map { #"{"id": \#($0), "customer": "c\#($0 % 3)", "amount": \#($0).25}"# }.joined(separator: ",")
            var headers = Headers()
            headers["X-Note"] = "batch"
            let reply = try await Self.send(engine, "insert", "[\(batch)]", headers: headers)
            #expect(reply.bodyString == #"{"affectedRows":200}"#, "\(kind): \(reply.bodyString)")
            // The 3rd element repeats a key: the whole batch is rolled back.
            await #expect(throws: StepFailure.self) {
                _ = try await Self.send(engine, "insert", #"[{"id": 500, "customer": "x", "amount": 1}, {"id": 501, "customer": "x", "amount": 1}, {"id": 1, "customer": "x", "amount": 1}]"#, headers: headers)
            }
            headers["X-Customer"] = "x"
            #expect(try await Self.send(engine, "lookup", "", headers: headers).bodyString == "[]", "\(kind): nothing of the failed batch is kept")
            await adapter.shutdown()
        }
    }

    @Test func upsertAndEnrichment() async throws {
        for (kind, url) in try Self.datasources() {
            let (engine, adapter) = try Self.engine(url, Self.schema)
            _ = try await Self.send(engine, "setup", "")
            _ = try await Self.send(engine, "upsert", #"{"id": 7, "customer": "acme", "amount": 10}"#)
            _ = try await Self.send(engine, "upsert", #"{"id": 7, "customer": "acme", "amount": 11}"#)
            _ = try await Self.send(engine, "upsert", #"{"id": 8, "customer": "acme", "amount": 3}"#)
            let enriched = try await Self.send(engine, "enrich", #"{"customer": "acme", "ref": "r1"}"#)
            #expect(enriched.bodyString == #"{"customer":"acme","ref":"r1","orders":[{"id":7,"amount":11},{"id":8,"amount":3}]}"#, "\(kind): \(enriched.bodyString)")
            #expect(enriched.headers["sql.rows"] == "2")
            await adapter.shutdown()
        }
    }

    @Test func numbersBeyondADoubleAreBoundAndReadExactly() async throws {
        for (kind, url) in try Self.datasources() {
            // PostgreSQL keeps NUMERIC exactly; SQLite has no such type, and stores what an
            // INTEGER or REAL cannot hold exactly as the digits (in a TEXT column here).
            let columns = kind == "postgres" ? "big NUMERIC(30,0), amount NUMERIC(30,2)" : "big TEXT, amount TEXT"
            let (engine, adapter) = try Self.engine(url, """
            routes:
              - id: setup
                from: direct:setup
                steps: [ { to: { uri: "sql:db", statement: "CREATE TABLE exact (\(columns))" } } ]
              - id: insert
                from: direct:insert
                steps: [ { to: { uri: "sql:db", statement: "INSERT INTO exact (big, amount) VALUES (:big, :amount)" } } ]
              - id: read
                from: direct:read
                steps: [ { to: { uri: "sql:db", statement: "SELECT big, amount FROM exact" } } ]
            """)
            _ = try await Self.send(engine, "setup", "")
            _ = try await Self.send(engine, "insert", #"{"big":12345678901234567890,"amount":12345678901234567890.12}"#)
            let rows = try await Self.send(engine, "read", "").bodyString
            if kind == "postgres" {
                #expect(rows == #"[{"big":12345678901234567890,"amount":12345678901234567890.12}]"#, "\(kind): \(rows)")
            } else {
                #expect(rows == #"[{"big":"12345678901234567890","amount":"12345678901234567890.12"}]"#, "\(kind): \(rows)")
            }
            await adapter.shutdown()
        }
    }

    @Test func aMissingParameterNamesItself() async throws {
        for (_, url) in try Self.datasources() {
            let (engine, adapter) = try Self.engine(url, Self.schema)
            _ = try await Self.send(engine, "setup", "")
            await #expect {
                _ = try await Self.send(engine, "upsert", #"{"id": 7}"#)
            } throws: { error in
                "\(error)".contains("the SQL parameter :customer has no value: no field 'customer' in the body and no header 'customer'")
            }
            await adapter.shutdown()
        }
    }

    @Test func aDatabaseThatIsDownFailsTheStepInTimeWithoutShowingThePassword() async throws {
        var spec = DatasourceSpec(name: "db", url: "postgres://app:hunter2@127.0.0.1:\(freePort())/db?sslmode=disable")
        spec.connectTimeout = .milliseconds(500)
        spec.queryTimeout = .milliseconds(500)
        let (engine, adapter) = try Self.singleStatement(spec, "SELECT 1")
        await #expect {
            _ = try await Self.send(engine, "q", "")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.kind == "connection" && failure.reason.contains("postgres://app:***@127.0.0.1") && !failure.reason.contains("hunter2")
                && failure.reason.contains("cannot connect") && failure.reason.lowercased().contains("connection refused")
        }
        await adapter.shutdown()
    }

    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func aRefusedPasswordFailsWithPostgreSQLsOwnReason() async throws {
        // make test's server asks this role, and only this one, for its password.
        try PostgresTestServer.psql("DO $$ BEGIN CREATE ROLE sb_password LOGIN PASSWORD 'right'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        let base = try #require(Self.postgres)
        var components = try #require(URLComponents(string: base))
        components.user = "sb_password"
        components.password = "wrong-secret"
        var spec = DatasourceSpec(name: "db", url: try #require(components.string))
        spec.connectTimeout = .seconds(2)
        let (engine, adapter) = try Self.singleStatement(spec, "SELECT 1")
        for _ in 0..<2 {
            await #expect {
                _ = try await Self.send(engine, "q", "")
            } throws: { error in
                guard let failure = error as? StepFailure else { return false }
                return failure.kind == "connection" && failure.reason.contains(#"password authentication failed for user "sb_password""#)
                    && !failure.reason.contains("wrong-secret")
            }
        }
        await adapter.shutdown()
    }

    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func aDatabaseIsUsedAgainAsSoonAsItAnswers() async throws {
        // The datasource reaches PostgreSQL through a forwarder that is down, long enough for
        // the pool's circuit breaker (15 s of failed connects), then comes up.
        let base = try #require(Self.postgres)
        let target = try #require(URLComponents(string: base))
        let port = freePort()
        var components = target
        components.port = port
        var spec = DatasourceSpec(name: "db", url: try #require(components.string))
        spec.connectTimeout = .seconds(1)
        let (engine, adapter) = try Self.singleStatement(spec, "SELECT 1 AS one")
        let down = ContinuousClock.now
        var failures = 0
        while ContinuousClock.now - down < .seconds(17) {
            do {
                _ = try await Self.send(engine, "q", "")
            } catch {
                failures += 1
                #expect("\(error)".contains("cannot connect: connection refused"), "\(error)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(failures > 0)
        let targetPort = try #require(target.port)
        let forwarder = try TCPForwarder(from: port, to: targetPort)
        // The first call after it is back is served.
        let reply = try await Self.send(engine, "q", "")
        #expect(reply.bodyString == #"[{"one":1}]"#)
        await adapter.shutdown()
        forwarder.stop()
    }

    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func aStatementPastTheQueryTimeoutIsCancelledByTheServer() async throws {
        var spec = DatasourceSpec(name: "db", url: try PostgresTestServer.freshDatabase(prefix: "sqltimeout"))
        spec.queryTimeout = .milliseconds(300)
        let (engine, adapter) = try Self.singleStatement(spec, "SELECT pg_sleep(:${header.X-Seconds})")
        var quick = Headers()
        quick["X-Seconds"] = "0"
        #expect(try await engine.process(routeID: "q", Exchange(message: Message(headers: quick), pattern: .inOut)).message.headers["sql.rows"] == "1")
        var slow = Headers()
        slow["X-Seconds"] = "5"
        await #expect {
            _ = try await engine.process(routeID: "q", Exchange(message: Message(headers: slow), pattern: .inOut))
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.kind == "timeout" && failure.reason.contains("statement timeout")
        }
        await adapter.shutdown()
    }

    @Test func routeMistakesAreReportedAtLoad() {
        let adapter = DatabaseAdapter(datasources: [DatasourceSpec(name: "db", url: "sqlite:/tmp/x.db")], logger: Self.logger)
        let loader = RouteLoader(catalog: AdapterCatalog([adapter]), logger: Self.logger, environment: [:])
        #expect {
            _ = try loader.load(sources: [("""
            routes:
              - id: a
                from: direct:a
                steps:
                  - to: "sql:nope?statement=SELECT 1"
                  - to: "sql:db"
                  - to: { uri: "sql:db", statement: "SELECT :${header.X" }
              - id: b
                from: "sql:db?query=SELECT id FROM t&onConsume=UPDATE t SET by = :${header.X} WHERE id = :id"
            """, "routes.yaml")])
        } throws: { error in
            let text = "\(error)"
            return text.contains("routes.yaml:5:14: error: no datasource 'nope'; the node config has 'db'")
                && text.contains("routes.yaml:6:14: error: 'to: sql:db' needs a statement")
                && text.contains("routes.yaml:7:30: error: option 'statement': the parameter ':${' has no closing '}'")
                && text.contains("'onConsume' runs for a polled row, so its parameters are the row's columns (:id); ${header.X} has no message to read")
        }
    }

    /// A table of 300 rows polled by two consumers at once on PostgreSQL: each row is
    /// delivered once, by one of them, and marked by its onConsume.
    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func twoPollersOnPostgreSQLTakeDisjointRows() async throws {
        let url = try PostgresTestServer.freshDatabase(prefix: "sqlpoll")
        let (setup, setupAdapter) = try Self.engine(url, Self.schema)
        _ = try await Self.send(setup, "setup", "")
        let batch = (1...300).map { #"{"id": \#($0), "customer": "c", "amount": 1}"# }.joined(separator: ",")
        var headers = Headers()
        headers["X-Note"] = "n"
        _ = try await Self.send(setup, "insert", "[\(batch)]", headers: headers)
        await setupAdapter.shutdown()

        let seen = Seen()
        func poller(_ name: String) throws -> (RouteEngine, DatabaseAdapter) {
            try Self.engine(url, """
            routes:
              - id: poll-\(name)
                from: "sql:db?query=SELECT id FROM orders WHERE NOT processed ORDER BY id&onConsume=UPDATE orders SET processed = true, taken_by = '\(name)' WHERE id = :id&delay=20ms&maxRows=7"
                steps:
                  - set-header: { name: X-ID, value: "${json:$.id}" }
                  - to: "direct:record-\(name)"
              - id: record-\(name)
                from: direct:record-\(name)
                steps: [ { log: "took ${header.X-ID}" } ]
            """, observer: RecordingIDs(name: name, seen: seen))
        }
        let (a, adapterA) = try poller("a")
        let (b, adapterB) = try poller("b")
        let taskA = Task { try await a.run() }
        let taskB = Task { try await b.run() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, seen.ids.withLock({ $0.values.reduce(0) { $0 + $1.count } }) < 300 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        taskA.cancel()
        taskB.cancel()
        _ = await taskA.result
        _ = await taskB.result
        await adapterA.shutdown()
        await adapterB.shutdown()
        let byPoller = seen.ids.withLock { $0 }
        let all = byPoller.values.flatMap { $0 }
        #expect(all.count == 300, "each row delivered once: \(all.count)")
        #expect(Set(all) == Set(1...300))
        #expect((byPoller["a"]?.count ?? 0) > 0 && (byPoller["b"]?.count ?? 0) > 0, "both pollers took rows: \(byPoller.mapValues(\.count))")
        // Every row is marked, by the poller that took it.
        let (check, checkAdapter) = try Self.engine(url, """
        routes:
          - id: count
            from: direct:count
            steps: [ { to: { uri: "sql:db", statement: "SELECT taken_by, count(*) AS n FROM orders WHERE processed GROUP BY taken_by ORDER BY taken_by" } } ]
        """)
        let counts = try await Self.send(check, "count", "").bodyString
        #expect(counts == #"[{"taken_by":"a","n":\#(byPoller["a"]?.count ?? 0)},{"taken_by":"b","n":\#(byPoller["b"]?.count ?? 0)}]"#, "\(counts)")
        await checkAdapter.shutdown()
    }

    @Test func aBatchPollerEmitsOneMessagePerPollAndMarksEveryRow() async throws {
        for (kind, url) in try Self.datasources() {
            let (setup, setupAdapter) = try Self.engine(url, Self.schema)
            _ = try await Self.send(setup, "setup", "")
            var headers = Headers()
            headers["X-Note"] = "n"
            let rows = (1...5).map { #"{"id": \#($0), "customer": "c", "amount": 1}"# }.joined(separator: ",")
            _ = try await Self.send(setup, "insert", "[\(rows)]", headers: headers)
            await setupAdapter.shutdown()
            let seen = Seen()
            let (engine, adapter) = try Self.engine(url, """
            routes:
              - id: poll
                from: "sql:db?query=SELECT id FROM orders WHERE NOT processed ORDER BY id&onConsume=UPDATE orders SET processed = true WHERE id = :id&delay=20ms&batch=true"
                steps:
                  - set-header: { name: X-ID, value: "${header.sql.rows}" }
                  - to: direct:record
              - id: record
                from: direct:record
                steps: [ { log: "batch of ${header.X-ID}" } ]
              - id: left
                from: direct:left
                steps: [ { to: { uri: "sql:db", statement: "SELECT count(*) AS n FROM orders WHERE NOT processed" } } ]
            """, observer: RecordingIDs(name: "batch", seen: seen))
            let task = Task { try await engine.run() }
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, seen.ids.withLock({ $0["batch"]?.count ?? 0 }) < 1 {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            _ = await task.result
            #expect(seen.ids.withLock { $0["batch"] } == [5], "\(kind): one message of five rows")
            #expect(try await Self.send(engine, "left", "").bodyString == #"[{"n":0}]"#, "\(kind)")
            await adapter.shutdown()
        }
    }

    @Test func aSQLitePollerMarksRowsOnlyAfterTheirRouteSucceeded() async throws {
        let url = "sqlite:" + NSTemporaryDirectory() + "sb-db-\(UUID().uuidString)/db.sqlite"
        let (setup, setupAdapter) = try Self.engine(url, Self.schema)
        _ = try await Self.send(setup, "setup", "")
        var headers = Headers()
        headers["X-Note"] = "n"
        _ = try await Self.send(setup, "insert", #"[{"id": 1, "customer": "ok", "amount": 1}, {"id": 2, "customer": "bad", "amount": 1}]"#, headers: headers)
        await setupAdapter.shutdown()
        let seen = Seen()
        let (engine, adapter) = try Self.engine(url, """
        routes:
          - id: poll
            from: "sql:db?query=SELECT id, customer FROM orders WHERE NOT processed&onConsume=UPDATE orders SET processed = true WHERE id = :id&onConsumeFailed=UPDATE orders SET note = 'failed' WHERE id = :id&delay=20ms"
            steps:
              - set-header: { name: X-ID, value: "${json:$.id}" }
              - choice:
                  - when: { jsonpath: "$.customer", equals: bad }
                    steps: [ { to: "direct:nowhere" } ]
                  - otherwise: [ { to: "direct:record" } ]
          - id: record
            from: direct:record
            steps: [ { log: "took ${header.X-ID}" } ]
          - id: nowhere
            from: direct:nowhere
            steps: [ { set-body: "${xpath:/not/xml}" } ]
          - id: state
            from: direct:state
            steps: [ { to: { uri: "sql:db", statement: "SELECT id, processed, note FROM orders ORDER BY id" } } ]
        """, observer: RecordingIDs(name: "a", seen: seen))
        let task = Task { try await engine.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, seen.ids.withLock({ $0["a"]?.count ?? 0 }) < 1 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        _ = await task.result
        let state = try await Self.send(engine, "state", "").bodyString
        #expect(state == #"[{"id":1,"processed":1,"note":"n"},{"id":2,"processed":0,"note":"failed"}]"#, "\(state)")
        await adapter.shutdown()
    }
}

/// Keeps the X-ID of each message the `record-*` route completed, by poller.
final class Seen: Sendable {
    let ids = Mutex<[String: [Int]]>([:])
}

final class RecordingIDs: ExchangeObserver {
    let name: String
    let seen: Seen

    init(name: String, seen: Seen) {
        self.name = name
        self.seen = seen
    }

    func record(_ event: ExchangeEvent) async {
        guard event.step == nil, event.phase == .completed, event.routeID.hasPrefix("record"),
              let id = event.message.headers["X-ID"].flatMap({ Int($0) }) else { return }
        seen.ids.withLock { $0[name, default: []].append(id) }
    }
}
