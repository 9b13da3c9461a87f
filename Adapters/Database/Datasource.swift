// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

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
            // An INTEGER or a REAL only when it holds the value exactly; else the digits as
            // written (a column of numeric affinity may still turn them into a REAL).
            guard let number = JSONNumber(text: text) else { return text.databaseValue }
            if let integer = number.int64 { return integer.databaseValue }
            if number.isExactDouble { return number.double.databaseValue }
            return text.databaseValue
        }
    }

    static func json(_ value: DatabaseValue) -> JSONValue {
        switch value.storage {
        case .null: .null
        case .int64(let number): .number(JSONNumber(Int(number)))
        case .double(let number): JSONNumber(number).map(JSONValue.number) ?? .null
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

