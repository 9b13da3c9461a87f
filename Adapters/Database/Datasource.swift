import Foundation
import GRDB
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SwitchboardCore
import SwitchboardStorage
import SwitchboardTransform
import Synchronization

/// A named datasource from the node config: `datasources: { NAME: URL }` or
/// `NAME: { url, max-connections, connect-timeout, query-timeout }`.
public struct DatasourceSpec: Sendable {
    public var name: String
    /// `sqlite:PATH` or `postgres://user:password@host:port/db`.
    public var url: String
    public var maxConnections = 8
    public var connectTimeout: Duration = .seconds(5)
    public var queryTimeout: Duration = .seconds(30)
    /// A file of SQL statements (separated by `;` at the end of a line) run once, when the
    /// datasource is first used: `CREATE TABLE IF NOT EXISTS …`.
    public var initFile: String?

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }

    /// The URL as it may be shown: the password replaced by `***`.
    public var displayURL: String { PostgresURL.redact(url) }
}

/// What one statement (or a batch of them) came to.
struct SQLResult: Sendable {
    /// Rows of a query (or of `RETURNING`), as JSON objects by column name.
    var rows: [JSONValue] = []
    var returnsRows = false
    var affectedRows = 0
}

/// A value bound to a parameter. PostgreSQL gets text of no declared type, which it reads
/// as the type the parameter's place needs; SQLite gets numbers as numbers and text as
/// text (its column affinity converts text where a column is numeric).
enum SQLValue: Sendable, Equatable {
    case null
    case text(String)
    /// A JSON number, written as JSON writes it.
    case number(String)
    case bool(Bool)

    /// The value as PostgreSQL reads it; nil for NULL.
    var text: String? {
        switch self {
        case .null: nil
        case .text(let text), .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        }
    }
}

/// A connection pool to one database.
protocol SQLDatasource: Sendable {
    var spec: DatasourceSpec { get }
    /// The placeholder for parameter `n` (from 1).
    func placeholder(_ n: Int) -> String
    /// Runs `sql` once per binding set, all in one transaction.
    func execute(_ sql: String, bindings: [[SQLValue]]) async throws -> SQLResult
    /// Polls: runs `query` and hands its rows to `handle` inside one transaction, which
    /// commits after it returns; `handle` may run further statements through `run`.
    func poll(_ query: String, handle: @escaping @Sendable ([JSONValue], _ run: SQLRunner) async throws -> Void) async throws -> Int
    func close() async
}

/// Runs statements inside a poll's transaction.
struct SQLRunner: Sendable {
    let run: @Sendable (_ sql: String, _ values: [SQLValue]) async throws -> Int
}

/// The statements of a datasource's init file.
func initStatements(_ spec: DatasourceSpec) throws -> [String] {
    guard let file = spec.initFile else { return [] }
    let text: String
    do {
        text = try String(contentsOfFile: file, encoding: .utf8)
    } catch {
        throw ProcessingError("datasource '\(spec.name)': cannot read its init file \(file): \(error.localizedDescription)", status: 500)
    }
    var statements: [String] = []
    var current = ""
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("--") { continue }
        current += line + "\n"
        if trimmed.hasSuffix(";") {
            statements.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
            current = ""
        }
    }
    if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        statements.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return statements
}

/// Opens the datasource a spec names.
func openDatasource(_ spec: DatasourceSpec, logger: Logger) throws -> any SQLDatasource {
    if PostgresURL.isPostgres(spec.url) {
        return try PostgresDatasource(spec, logger: logger)
    }
    guard spec.url.hasPrefix("sqlite:") else {
        throw EndpointError("datasource '\(spec.name)': expected sqlite:PATH or postgres://user:password@host:port/database, found '\(spec.displayURL)'")
    }
    return try SQLiteDatasource(spec)
}

// MARK: SQLite

/// An embedded SQLite database (GRDB pool, WAL mode).
final class SQLiteDatasource: SQLDatasource {
    let spec: DatasourceSpec
    let path: String
    /// Opened on first use.
    private let opened = Mutex<DatabasePool?>(nil)

    init(_ spec: DatasourceSpec) throws {
        self.spec = spec
        path = String(spec.url.dropFirst("sqlite:".count))
        guard !path.isEmpty else {
            throw EndpointError("datasource '\(spec.name)': sqlite: needs a file path, as in sqlite:var/orders.db")
        }
    }

    private func pool() throws -> DatabasePool {
        try opened.withLock { pool in
            if let pool { return pool }
            do {
                let made = try SQLiteFile.open(path: path, create: true, what: "datasource '\(spec.name)'", migrator: DatabaseMigrator())
                let statements = try initStatements(spec)
                if !statements.isEmpty {
                    try made.write { db in
                        for statement in statements { try db.execute(sql: statement) }
                    }
                }
                pool = made
                return made
            } catch let error as ProcessingError {
                throw error
            } catch {
                throw ProcessingError("\(error)", status: 502, kind: ErrorKind.connection)
            }
        }
    }

    func placeholder(_ n: Int) -> String { "?" }

    func execute(_ sql: String, bindings: [[SQLValue]]) async throws -> SQLResult {
        let pool = try pool()
        let name = spec.name
        do {
            return try await pool.writeOffLoop { db in try Self.run(db, sql, bindings) }
        } catch let error as DatabaseError {
            throw ProcessingError("datasource '\(name)': \(error.message ?? "\(error)")", status: 502, kind: error.resultCode == .SQLITE_BUSY ? ErrorKind.timeout : ErrorKind.step)
        }
    }

    private static func run(_ db: Database, _ sql: String, _ bindings: [[SQLValue]]) throws -> SQLResult {
        var result = SQLResult()
        let statement = try db.cachedStatement(sql: sql)
        for values in bindings {
            statement.setUncheckedArguments(StatementArguments(values.map(SQLiteDatasource.value)))
            if statement.columnCount > 0 {
                result.returnsRows = true
                let columns = statement.columnNames
                for row in try Row.fetchAll(statement) {
                    result.rows.append(.object(columns.indices.map { (columns[$0], json(row[$0] as DatabaseValue)) }))
                }
            } else {
                try statement.execute()
            }
            result.affectedRows += db.changesCount
        }
        return result
    }

    static func value(_ value: SQLValue) -> DatabaseValue {
        switch value {
        case .null: return .null
        case .text(let text): return text.databaseValue
        case .bool(let flag): return (flag ? 1 : 0).databaseValue
        case .number(let text):
            if let integer = Int64(text) { return integer.databaseValue }
            if let double = Double(text) { return double.databaseValue }
            return text.databaseValue
        }
    }

    static func json(_ value: DatabaseValue) -> JSONValue {
        switch value.storage {
        case .null: .null
        case .int64(let number): .number(Double(number))
        case .double(let number): .number(number)
        case .string(let text): .string(text)
        case .blob(let data): .string(data.base64EncodedString())
        }
    }

    func poll(_ query: String, handle: @escaping @Sendable ([JSONValue], SQLRunner) async throws -> Void) async throws -> Int {
        // SQLite serves one node: rows are read, then each row's follow-up statements run
        // in their own transaction once its route succeeded.
        let rows = try await execute(query, bindings: [[]]).rows
        let runner = SQLRunner { sql, values in try await self.execute(sql, bindings: [values]).affectedRows }
        if !rows.isEmpty { try await handle(rows, runner) }
        return rows.count
    }

    func close() async {}
}

// MARK: PostgreSQL

/// A PostgreSQL database through a PostgresNIO client pool.
final class PostgresDatasource: SQLDatasource {
    let spec: DatasourceSpec
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// The init file's one run, shared by the calls that wait for it.
    private let initialization = Mutex<Task<Void, any Error>?>(nil)

    init(_ spec: DatasourceSpec, logger: Logger) throws {
        self.spec = spec
        let url: PostgresURL
        do {
            url = try PostgresURL(spec.url, what: "datasource '\(spec.name)'")
        } catch let error as ProcessingError {
            throw EndpointError(error.message)
        }
        // The statement timeout is a session setting every connection starts with, not a
        // statement sent before each query.
        let pool = PostgresPool(
            url, maximumConnections: spec.maxConnections, connectTimeout: spec.connectTimeout,
            startupParameters: [("statement_timeout", String(spec.queryTimeout.milliseconds))], logger: logger
        )
        client = pool.client
        runner = pool.runner
        self.logger = pool.logger
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
        let logger = self.logger
        let client = self.client
        let limit = spec.connectTimeout + spec.queryTimeout
        do {
            // The pool waits for a connection without end; a database that is down fails
            // the step once the connect and query timeouts have passed.
            let result = try await firstWithin(limit) {
                try await client.withConnection { connection in
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
            }
            guard let result else {
                throw ProcessingError(
                    "datasource '\(spec.name)' (\(spec.displayURL)) did not answer within \(formatDuration(limit))", status: 504, kind: ErrorKind.timeout
                )
            }
            return result
        } catch let error as PSQLError {
            throw ProcessingError("datasource '\(spec.name)': \(Self.describe(error))", status: 502, kind: Self.kind(error))
        }
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
        runner.cancel()
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
            return (try? cell.decode(Int.self)).map { .number(Double($0)) } ?? .null
        case .float4, .float8:
            return (try? cell.decode(Double.self)).map { .number($0) } ?? .null
        case .numeric:
            if let decimal = try? cell.decode(Decimal.self), let number = Double("\(decimal)") { return .number(number) }
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
        return "\(error.code)"
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

/// Text bound with no type: the server reads it as the type the statement needs there,
/// as libpq does for untyped parameters.
struct UntypedText: PostgresDynamicTypeEncodable {
    let text: String

    init(_ text: String) {
        self.text = text
    }

    var psqlType: PostgresDataType { PostgresDataType(0) }
    var psqlFormat: PostgresFormat { .text }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeString(text)
    }
}

