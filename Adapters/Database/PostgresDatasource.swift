// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SwitchboardCore
import SwitchboardStorage
import SwitchboardTransform
import Synchronization
import _ConnectionPoolModule

/// A PostgreSQL database through a PostgresNIO client pool.
///
/// The pool retries a failing connect on its own, with a back-off, and meanwhile keeps its
/// callers waiting (then fails them with its circuit breaker's error, which it keeps giving
/// for a while after the database is back). So a call that gets no connection within
/// `connect-timeout` connects once by itself to learn why (connection refused, password
/// refused), and fails with that reason; until a connect succeeds, calls go straight to that
/// probe, and the first that succeeds starts a fresh pool, so the database is used again as
/// soon as it answers.
final class PostgresDatasource: SQLDatasource {
    let spec: DatasourceSpec
    private let url: PostgresURL
    /// The pool in use, replaced when the database comes back after failing.
    private let pool: Mutex<PostgresPool>
    /// A connect failed and none has succeeded since.
    private let failing = Mutex(false)
    private let logger: Logger
    /// The init file's one run, shared by the calls that wait for it.
    private let initialization = Mutex<Task<Void, any Error>?>(nil)

    init(_ spec: DatasourceSpec, logger: Logger) throws {
        self.spec = spec
        do {
            url = try PostgresURL(spec.url, what: "datasource '\(spec.name)'")
        } catch let error as ProcessingError {
            throw EndpointError(error.message)
        }
        let pool = Self.makePool(url, spec, logger: logger)
        self.pool = Mutex(pool)
        self.logger = pool.logger
    }

    /// The statement timeout is a session setting every connection starts with, not a
    /// statement sent before each query.
    private static func makePool(_ url: PostgresURL, _ spec: DatasourceSpec, logger: Logger) -> PostgresPool {
        PostgresPool(
            url, maximumConnections: spec.maxConnections, connectTimeout: spec.connectTimeout,
            startupParameters: [("statement_timeout", String(spec.queryTimeout.milliseconds))], logger: logger
        )
    }

    func placeholder(_ n: Int) -> String { "$\(n)" }

    /// Runs `body` on one connection, in a transaction when `transaction` (one statement is
    /// atomic on its own); gives up when the connect and query timeouts have passed.
    private func connection<T: Sendable>(transaction: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        if spec.initFile != nil {
            let run = initialization.withLock { task -> Task<Void, any Error> in
                if let task { return task }
                let started = Task {
                    let statements = try initStatements(self.spec)
                    _ = try await self.plainConnection(transaction: true) { connection in
                        for statement in statements {
                            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger).get()
                        }
                        return true
                    }
                }
                task = started
                return started
            }
            try await run.value
        }
        return try await plainConnection(transaction: transaction, body)
    }

    private func plainConnection<T: Sendable>(transaction: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        if failing.withLock({ $0 }) { try await recover() }
        do {
            return try await pooled(transaction: transaction, body)
        } catch is NoConnectionInTime {
            // Why: connect once, apart from the pool. A database that answers now was only
            // slow (or the pool busy): the call fails as not answering in time.
            try await recover()
            throw ProcessingError(
                "datasource '\(spec.name)' (\(spec.displayURL)) gave no connection within \(formatDuration(spec.connectTimeout)) (connect-timeout)",
                status: 504, kind: ErrorKind.timeout
            )
        } catch let error as ConnectionPoolError {
            // The pool's circuit breaker: it has failed to connect for a while.
            try await recover()
            throw ProcessingError("datasource '\(spec.name)' (\(spec.displayURL)): \(error)", status: 503, kind: ErrorKind.connection)
        } catch let error as PSQLError {
            throw ProcessingError("datasource '\(spec.name)': \(Self.describe(error))", status: 502, kind: Self.kind(error))
        }
    }

    /// A connection from the pool within `connect-timeout`, then `body` within `query-timeout`.
    ///
    /// The call runs in a task of its own that is cancelled, not waited for, when a deadline
    /// passes: a lease waiting in the pool does not end when cancelled (the pool fails it
    /// only when its circuit breaker trips), and a task group would wait for it.
    private func pooled<T: Sendable>(transaction: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        let client = pool.withLock { $0.client }
        let race = LeaseRace<T>()
        let result: T? = try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let call = Task {
                do {
                    let value = try await client.withConnection { connection in
                        race.leased()
                        guard transaction else { return try await body(connection) }
                        _ = try await connection.query("BEGIN", logger: logger).get()
                        do {
                            let result = try await body(connection)
                            _ = try await connection.query("COMMIT", logger: logger).get()
                            return result
                        } catch {
                            _ = try? await connection.query("ROLLBACK", logger: logger).get()
                            throw error
                        }
                    }
                    race.finish(.success(value))
                } catch {
                    race.finish(.failure(error))
                }
            }
            race.watch(Task { [spec] in
                do {
                    try await Task.sleep(for: spec.connectTimeout)
                    guard race.hasLeased else {
                        race.finish(.failure(NoConnectionInTime()))
                        call.cancel()
                        return
                    }
                    try await Task.sleep(for: spec.queryTimeout)
                    if race.finish(.success(nil)) { call.cancel() }
                } catch {
                    // Cancelled: the call ended in time.
                }
            })
        }
        guard let result else {
            throw ProcessingError(
                "datasource '\(spec.name)' (\(spec.displayURL)) did not answer within \(formatDuration(spec.queryTimeout)) (query-timeout)",
                status: 504, kind: ErrorKind.timeout
            )
        }
        return result
    }

    /// Connects once, apart from the pool: throws PostgreSQL's own reason when it cannot;
    /// when it can after failures, puts a fresh pool in place of the one backing off.
    private func recover() async throws {
        do {
            var configuration = try PostgresConnection.Configuration(url)
            configuration.options.connectTimeout = .nanoseconds(spec.connectTimeout.nanoseconds)
            let connection = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 0, logger: logger
            )
            try? await connection.close()
        } catch {
            failing.withLock { $0 = true }
            let reason = (error as? PSQLError).map(Self.describe) ?? Self.describeConnectFailure(error)
            throw ProcessingError("datasource '\(spec.name)' (\(spec.displayURL)): cannot connect: \(reason)", status: 503, kind: ErrorKind.connection)
        }
        let wasFailing = failing.withLock { failing in
            defer { failing = false }
            return failing
        }
        guard wasFailing else { return }
        let fresh = Self.makePool(url, spec, logger: logger)
        let old = pool.withLock { pool in
            defer { pool = fresh }
            return pool
        }
        old.close()
        logger.notice("datasource answers again; its connection pool is started anew", metadata: ["datasource": "\(spec.name)"])
    }

    func execute(_ sql: String, bindings: [[SQLValue]]) async throws -> SQLResult {
        let logger = self.logger
        return try await connection(transaction: bindings.count > 1) { connection in
            var result = SQLResult()
            for values in bindings {
                let answer = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: Self.binds(values)), logger: logger).get()
                result.affectedRows += answer.metadata.rows ?? 0
                // A query, or a statement whose RETURNING gave rows.
                if answer.metadata.command == "SELECT" || !answer.rows.isEmpty { result.returnsRows = true }
                for row in answer.rows {
                    result.rows.append(Self.json(row))
                }
            }
            return result
        }
    }

    func poll(_ query: String, handle: @escaping @Sendable ([JSONValue], SQLRunner) async throws -> Void) async throws -> Int {
        let logger = self.logger
        return try await connection(transaction: true) { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: query), logger: logger).get().rows.map(Self.json)
            let runner = SQLRunner { sql, values in
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: Self.binds(values)), logger: logger).get().metadata.rows ?? 0
            }
            if !rows.isEmpty { try await handle(rows, runner) }
            return rows.count
        }
    }

    func close() async {
        pool.withLock { $0 }.close()
    }

    static func binds(_ values: [SQLValue]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            if let text = value.text {
                binds.append(UntypedText(text))
            } else {
                binds.appendNull()
            }
        }
        return binds
    }

    /// A row as a JSON object by column name.
    static func json(_ row: PostgresRow) -> JSONValue {
        .object(row.makeRandomAccess().map { cell in (cell.columnName, value(cell)) })
    }

    static func value(_ cell: PostgresCell) -> JSONValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8:
            return (try? cell.decode(Int.self)).map { .number(JSONNumber($0)) } ?? .null
        case .float4, .float8:
            return (try? cell.decode(Double.self)).flatMap(JSONNumber.init).map(JSONValue.number) ?? .null
        case .numeric:
            // The decimal's own digits (Foundation's Decimal holds 38), never through a Double.
            if let decimal = try? cell.decode(Decimal.self), let number = JSONNumber(loose: "\(decimal)") { return .number(number) }
            return .null
        case .bool:
            return (try? cell.decode(Bool.self)).map { .bool($0) } ?? .null
        case .json, .jsonb:
            guard var bytes = cell.bytes else { return .null }
            if cell.dataType == .jsonb, cell.format == .binary { bytes.moveReaderIndex(forwardBy: 1) }
            return (try? JSONValue(parsing: String(buffer: bytes))) ?? .null
        case .timestamp, .timestamptz, .date:
            guard let date = try? cell.decode(Date.self) else { return .null }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = cell.dataType == .date ? [.withFullDate] : [.withInternetDateTime, .withFractionalSeconds]
            return .string(formatter.string(from: date))
        case .uuid:
            return (try? cell.decode(UUID.self)).map { .string($0.uuidString.lowercased()) } ?? .null
        case .bytea:
            return cell.bytes.map { .string(Data($0.readableBytesView).base64EncodedString()) } ?? .null
        default:
            return (try? cell.decode(String.self)).map { .string($0) } ?? .null
        }
    }

    static func describe(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] {
            var text = message
            if let detail = error.serverInfo?[.detail] { text += " (\(detail))" }
            return text
        }
        if let underlying = error.underlying { return describeConnectFailure(underlying) }
        return "\(error.code)"
    }

    /// What a failed connect says, in a few words where the cause is a known one.
    static func describeConnectFailure(_ error: any Error) -> String {
        var cause = error
        if let attempts = error as? NIOConnectionError, let first = attempts.connectionErrors.first {
            cause = first.error
        }
        if let io = cause as? IOError, io.errnoCode == ECONNREFUSED { return "connection refused" }
        if case ChannelError.connectTimeout = cause { return "no answer within connect-timeout" }
        return "\(cause)"
    }

    static func kind(_ error: PSQLError) -> String {
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection: return ErrorKind.connection
        case .server:
            // 57014: statement timeout. Class 08: connection exceptions.
            let state = error.serverInfo?[.sqlState] ?? ""
            if state == "57014" { return ErrorKind.timeout }
            if state.hasPrefix("08") { return ErrorKind.connection }
            return ErrorKind.step
        default: return ErrorKind.step
        }
    }
}


/// The pool gave no connection within the connect timeout.
private struct NoConnectionInTime: Error {}

/// A pooled call against its deadlines: whichever ends first resumes the caller, once.
private final class LeaseRace<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T?, any Error>?, leased: Bool, timer: Task<Void, Never>?)>((nil, false, nil))

    func start(_ continuation: CheckedContinuation<T?, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// The deadlines' task, cancelled when the call ends first.
    func watch(_ timer: Task<Void, Never>) {
        let ended = state.withLock { state in
            state.timer = timer
            return state.continuation == nil
        }
        if ended { timer.cancel() }
    }

    /// The pool gave the call its connection.
    func leased() {
        state.withLock { $0.leased = true }
    }

    var hasLeased: Bool { state.withLock { $0.leased } }

    /// Resumes the caller unless something did already; whether this did.
    @discardableResult
    func finish(_ result: Result<T?, any Error>) -> Bool {
        let (continuation, timer) = state.withLock { state in
            defer { state.continuation = nil }
            return (state.continuation, state.timer)
        }
        continuation?.resume(with: result)
        timer?.cancel()
        return continuation != nil
    }
}
