import Foundation
import GRDB

/// The embedded audit store: one SQLite file in WAL mode (readers never block the writer).
///
/// `synchronous = NORMAL`: a commit is durable once it returns as far as the process is
/// concerned (a node killed with SIGKILL keeps it); only a power cut can lose the last few
/// commits. `audit.sync: full` makes every commit wait for the disk.
public final class SQLiteAuditStore: AuditStore {
    public let path: String
    private let pool: DatabasePool

    /// Opens (creating when `create`) the store at `path`.
    ///
    /// - Throws: ``AuditStoreError`` when the file cannot be opened or is not an audit store.
    public init(path: String, create: Bool = true, fullSync: Bool = false) throws {
        self.path = path
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw AuditStoreError("no audit store at \(path) (the node creates it on its first start; --store names another)")
        }
        if create {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: fullSync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw AuditStoreError("cannot open the audit store at \(path): \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("audit-v1") { db in
            try db.execute(sql: """
                CREATE TABLE audit_events (
                    seq INTEGER PRIMARY KEY,
                    message_id TEXT NOT NULL,
                    correlation_id TEXT NOT NULL,
                    parent_id TEXT,
                    trace_id TEXT,
                    route_id TEXT NOT NULL,
                    entry INTEGER NOT NULL,
                    step_kind TEXT,
                    step_index INTEGER,
                    step_path TEXT,
                    endpoint TEXT,
                    phase TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    duration_us INTEGER,
                    error TEXT,
                    detail TEXT,
                    headers TEXT,
                    body_hash TEXT,
                    body_prefix BLOB,
                    body_changed INTEGER NOT NULL,
                    body_size_in INTEGER,
                    body_size INTEGER NOT NULL
                );
                CREATE INDEX audit_by_message ON audit_events(message_id);
                CREATE INDEX audit_by_parent ON audit_events(parent_id) WHERE parent_id IS NOT NULL;
                CREATE INDEX audit_entry_ends ON audit_events(seq) WHERE entry = 1 AND phase <> 'started';
                CREATE INDEX audit_by_correlation ON audit_events(correlation_id) WHERE entry = 1 AND phase <> 'started';
                CREATE TABLE sla_events (
                    seq INTEGER PRIMARY KEY,
                    route_id TEXT NOT NULL,
                    objective TEXT NOT NULL,
                    state TEXT NOT NULL,
                    value TEXT NOT NULL,
                    target TEXT NOT NULL,
                    at INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }

    static let insertSQL = """
        INSERT INTO audit_events (message_id, correlation_id, parent_id, trace_id, route_id, entry, step_kind,
            step_index, step_path, endpoint, phase, started_at, duration_us, error, detail, headers, body_hash,
            body_prefix, body_changed, body_size_in, body_size)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    public func append(_ records: [AuditRecord]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: Self.insertSQL)
            for record in records {
                statement.setUncheckedArguments([
                    record.messageID, record.correlationID, record.parentID, record.traceID, record.routeID,
                    record.entry, record.stepKind, record.stepIndex, record.stepPath, record.endpoint, record.phase,
                    record.startedAt, record.durationMicros, record.error, record.detail, record.headers,
                    record.bodyHash, record.bodyPrefix.map { Data($0) }, record.bodyChanged, record.bodySizeIn, record.bodySize,
                ])
                try statement.execute()
            }
        }
    }

    public func traces(_ query: TraceQuery) async throws -> [Trace] {
        try await pool.read { db in
            let ids: [String]
            if let id = query.messageID {
                ids = [id]
            } else {
                var sql = "SELECT message_id FROM audit_events e WHERE entry = 1 AND phase <> 'started'"
                var arguments: [(any DatabaseValueConvertible)?] = []
                if let correlation = query.correlationID {
                    sql += " AND correlation_id = ?"
                    arguments.append(correlation)
                }
                if let route = query.routeID {
                    sql += " AND route_id = ?"
                    arguments.append(route)
                }
                switch query.status {
                case .ok: sql += " AND phase = 'completed'"
                case .failed: sql += " AND phase = 'failed'"
                case nil: break
                }
                if let since = query.since {
                    sql += " AND started_at >= ?"
                    arguments.append(since)
                }
                if let until = query.until {
                    sql += " AND started_at < ?"
                    arguments.append(until)
                }
                if let after = query.afterSequence {
                    sql += " AND seq > ?"
                    arguments.append(after)
                }
                if let header = query.header {
                    sql += """
                         AND EXISTS (SELECT 1 FROM audit_events h, json_each(h.headers) j
                            WHERE h.message_id = e.message_id AND h.entry = 1 AND h.phase = 'started'
                            AND lower(json_extract(j.value, '$[0]')) = lower(?) AND json_extract(j.value, '$[1]') = ?)
                        """
                    arguments.append(header.name)
                    arguments.append(header.value)
                }
                sql += query.afterSequence == nil ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq ASC LIMIT ?"
                arguments.append(query.limit)
                ids = try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            }
            return try ids.compactMap { try Self.trace(db, messageID: $0, depth: 0) }
        }
    }

    private static func trace(_ db: Database, messageID: String, depth: Int) throws -> Trace? {
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit_events WHERE message_id = ? ORDER BY seq", arguments: [messageID])
        guard !rows.isEmpty else { return nil }
        var children: [Trace] = []
        if depth < 8 {
            let childIDs = try String.fetchAll(
                db, sql: "SELECT message_id FROM audit_events WHERE parent_id = ? GROUP BY message_id ORDER BY MIN(seq)",
                arguments: [messageID]
            )
            children = try childIDs.compactMap { try trace(db, messageID: $0, depth: depth + 1) }
        }
        return Trace(messageID: messageID, events: timelineOrder(rows.map(record)), children: children)
    }

    private static func record(_ row: Row) -> AuditRecord {
        AuditRecord(
            sequence: row["seq"],
            messageID: row["message_id"],
            correlationID: row["correlation_id"],
            parentID: row["parent_id"],
            traceID: row["trace_id"],
            routeID: row["route_id"],
            entry: row["entry"],
            stepKind: row["step_kind"],
            stepIndex: row["step_index"],
            stepPath: row["step_path"],
            endpoint: row["endpoint"],
            phase: row["phase"],
            startedAt: row["started_at"],
            durationMicros: row["duration_us"],
            error: row["error"],
            detail: row["detail"],
            headers: row["headers"],
            bodyHash: row["body_hash"],
            bodyPrefix: (row["body_prefix"] as Data?).map { Array($0) },
            bodyChanged: row["body_changed"],
            bodySizeIn: row["body_size_in"],
            bodySize: row["body_size"]
        )
    }

    public func prune(before: Int64?, maxBytes: Int64?) async throws -> Int {
        var deleted = 0
        if let before {
            // Sequence numbers grow with time: everything below the first recent row is old.
            let cut: Int64? = try await pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT seq FROM audit_events WHERE started_at >= ? ORDER BY seq LIMIT 1", arguments: [before])
                    ?? Int64.fetchOne(db, sql: "SELECT MAX(seq) + 1 FROM audit_events")
            }
            if let cut {
                deleted += try await deleteBelow(cut)
            }
            try await pool.write { db in try db.execute(sql: "DELETE FROM sla_events WHERE at < ?", arguments: [before]) }
        }
        if let maxBytes {
            // Drop the oldest tenth until the live pages fit.
            for _ in 0..<20 {
                let (used, oldest, count) = try await pool.read { db -> (Int64, Int64, Int64) in
                    let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                    let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                    let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                    let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM audit_events") ?? 0
                    let newest = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_events") ?? 0
                    return ((pages - free) * size, oldest, newest - oldest + 1)
                }
                guard used > maxBytes, count > 1 else { break }
                deleted += try await deleteBelow(oldest + max(1, count / 10))
            }
        }
        return deleted
    }

    /// Deletes rows with `seq < cut`, in chunks so the writer is never held for long.
    private func deleteBelow(_ cut: Int64) async throws -> Int {
        var deleted = 0
        while true {
            let count = try await pool.write { db -> Int in
                try db.execute(
                    sql: "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE seq < ? ORDER BY seq LIMIT 5000)",
                    arguments: [cut]
                )
                return db.changesCount
            }
            deleted += count
            if count < 5000 { return deleted }
        }
    }

    public func append(_ change: SLAEventRecord) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO sla_events (route_id, objective, state, value, target, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [change.routeID, change.objective, change.state, change.value, change.target, change.at]
            )
        }
    }

    public func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] {
        try await pool.read { db in
            var sql = "SELECT * FROM sla_events"
            var arguments: StatementArguments = []
            if let route {
                sql += " WHERE route_id = ?"
                arguments += [route]
            }
            sql += " ORDER BY seq DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                SLAEventRecord(routeID: row["route_id"], objective: row["objective"], state: row["state"], value: row["value"], target: row["target"], at: row["at"])
            }
        }
    }

    public func close() async throws {
        try pool.close()
    }
}

/// The audit store cannot be opened, read or written.
public struct AuditStoreError: Error, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
