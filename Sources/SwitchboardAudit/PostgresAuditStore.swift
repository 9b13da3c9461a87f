// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import PostgresNIO
import SwitchboardCore
import SwitchboardStorage

/// The audit store on PostgreSQL, for several nodes sharing one trail.
///
/// `audit.store: postgres://user:password@host:port/database?sslmode=disable|prefer|require`
/// (default `prefer`). Each batch of records is one multi-row INSERT.
public final class PostgresAuditStore: AuditStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// The URL with its password replaced by `***`.
    public let displayURL: String

    /// Connects and creates the tables when missing.
    ///
    /// - Throws: ``AuditStoreError`` naming the URL (password hidden) when the URL is
    ///   malformed or the server cannot be reached.
    public init(url: String, logger: Logger) async throws {
        let connection: PostgresPool
        do {
            connection = try await PostgresPool(url: url, what: "the audit store", schema: Self.schema, logger: logger)
        } catch {
            throw AuditStoreError("\(error)")
        }
        client = connection.client
        runner = connection.runner
        self.logger = connection.logger
        displayURL = connection.displayURL
    }

    private static let schema = [
        """
        CREATE TABLE IF NOT EXISTS audit_events (
            seq BIGSERIAL PRIMARY KEY,
            message_id TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            parent_id TEXT,
            trace_id TEXT,
            route_id TEXT NOT NULL,
            entry BOOLEAN NOT NULL,
            step_kind TEXT,
            step_index INTEGER,
            step_path TEXT,
            endpoint TEXT,
            phase TEXT NOT NULL,
            started_at BIGINT NOT NULL,
            duration_us BIGINT,
            error TEXT,
            detail TEXT,
            headers JSONB,
            body_hash TEXT,
            body_prefix BYTEA,
            body_changed BOOLEAN NOT NULL,
            body_size_in INTEGER,
            body_size INTEGER NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS audit_by_message ON audit_events(message_id)",
        "CREATE INDEX IF NOT EXISTS audit_by_parent ON audit_events(parent_id) WHERE parent_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS audit_entry_ends ON audit_events(seq) WHERE entry AND phase <> 'started'",
        "CREATE INDEX IF NOT EXISTS audit_by_correlation ON audit_events(correlation_id) WHERE entry AND phase <> 'started'",
        """
        CREATE TABLE IF NOT EXISTS sla_events (
            seq BIGSERIAL PRIMARY KEY,
            route_id TEXT NOT NULL,
            objective TEXT NOT NULL,
            state TEXT NOT NULL,
            value TEXT NOT NULL,
            target TEXT NOT NULL,
            at BIGINT NOT NULL
        )
        """,
    ]

    private static let columns = 21

    /// Stores each event as a row of its own (PostgreSQL keeps them in columns, for queries
    /// across nodes), read back from the batch's stored JSON.
    public func append(_ batch: AuditBatch) async throws {
        let records = try batch.records()
        // 21 binds a row; a statement carries at most 65535.
        for start in stride(from: 0, to: records.count, by: 1000) {
            let chunk = records[start..<min(records.count, start + 1000)]
            var sql = """
                INSERT INTO audit_events (message_id, correlation_id, parent_id, trace_id, route_id, entry, step_kind,
                    step_index, step_path, endpoint, phase, started_at, duration_us, error, detail, headers, body_hash,
                    body_prefix, body_changed, body_size_in, body_size) VALUES
                """
            var binds = PostgresBindings(capacity: chunk.count * Self.columns)
            for (row, record) in chunk.enumerated() {
                let base = row * Self.columns
                sql += row == 0 ? " (" : ", ("
                sql += (1...Self.columns).map { column in
                    column == 16 ? "$\(base + column)::jsonb" : "$\(base + column)"
                }.joined(separator: ", ")
                sql += ")"
                binds.append(record.messageID)
                binds.append(record.correlationID)
                binds.append(record.parentID)
                binds.append(record.traceID)
                binds.append(record.routeID)
                binds.append(record.entry)
                binds.append(record.stepKind)
                binds.append(record.stepIndex.map(Int32.init))
                binds.append(record.stepPath)
                binds.append(record.endpoint)
                binds.append(record.phase)
                binds.append(record.startedAt)
                binds.append(record.durationMicros)
                binds.append(record.error)
                binds.append(record.detail)
                binds.append(record.headers)
                binds.append(record.bodyHash)
                binds.append(record.bodyPrefix.map { ByteBuffer(bytes: $0) })
                binds.append(record.bodyChanged)
                binds.append(record.bodySizeIn.map(Int32.init))
                binds.append(Int32(clamping: record.bodySize))
            }
            try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        }
    }

    public func traces(_ query: TraceQuery) async throws -> [Trace] {
        var ids: [String] = []
        if let id = query.messageID {
            ids = [id]
        } else {
            var sql = "SELECT message_id FROM audit_events e WHERE entry AND phase <> 'started'"
            var binds = PostgresBindings()
            func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
                binds.append(value)
                return "$\(binds.count)"
            }
            if let correlation = query.correlationID { sql += " AND correlation_id = \(bind(correlation))" }
            if let route = query.routeID { sql += " AND route_id = \(bind(route))" }
            switch query.status {
            case .ok: sql += " AND phase = 'completed'"
            case .failed: sql += " AND phase = 'failed'"
            case nil: break
            }
            if let since = query.since { sql += " AND started_at >= \(bind(since))" }
            if let until = query.until { sql += " AND started_at < \(bind(until))" }
            if let after = query.afterSequence { sql += " AND seq > \(bind(after))" }
            if let header = query.header {
                sql += """
                     AND EXISTS (SELECT 1 FROM audit_events h, jsonb_array_elements(h.headers) j
                        WHERE h.message_id = e.message_id AND h.entry AND h.phase = 'started'
                        AND lower(j->>0) = lower(\(bind(header.name))) AND j->>1 = \(bind(header.value)))
                    """
            }
            sql += query.afterSequence == nil ? " ORDER BY seq DESC" : " ORDER BY seq ASC"
            sql += " LIMIT \(bind(Int64(query.limit)))"
            for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
                ids.append(try row.decode(String.self))
            }
        }
        var traces: [Trace] = []
        for id in ids.uniqued() {
            if let trace = try await trace(messageID: id, depth: 0) { traces.append(trace) }
        }
        return query.keep(traces)
    }

    private func trace(messageID: String, depth: Int) async throws -> Trace? {
        var events: [AuditRecord] = []
        let rows = try await client.query("""
            SELECT seq, message_id, correlation_id, parent_id, trace_id, route_id, entry, step_kind, step_index, step_path,
                endpoint, phase, started_at, duration_us, error, detail, headers::text, body_hash, body_prefix, body_changed,
                body_size_in, body_size
            FROM audit_events WHERE message_id = \(messageID) ORDER BY seq
            """, logger: logger)
        for try await row in rows {
            let cells = row.makeRandomAccess()
            events.append(AuditRecord(
                sequence: try cells[0].decode(Int64.self),
                messageID: try cells[1].decode(String.self),
                correlationID: try cells[2].decode(String.self),
                parentID: try cells[3].decode(String?.self),
                traceID: try cells[4].decode(String?.self),
                routeID: try cells[5].decode(String.self),
                entry: try cells[6].decode(Bool.self),
                stepKind: try cells[7].decode(String?.self),
                stepIndex: try cells[8].decode(Int32?.self).map(Int.init),
                stepPath: try cells[9].decode(String?.self),
                endpoint: try cells[10].decode(String?.self),
                phase: try cells[11].decode(String.self),
                startedAt: try cells[12].decode(Int64.self),
                durationMicros: try cells[13].decode(Int64?.self),
                error: try cells[14].decode(String?.self),
                detail: try cells[15].decode(String?.self),
                headers: try cells[16].decode(String?.self),
                bodyHash: try cells[17].decode(String?.self),
                bodyPrefix: try cells[18].decode(ByteBuffer?.self).map { Array($0.readableBytesView) },
                bodyChanged: try cells[19].decode(Bool.self),
                bodySizeIn: try cells[20].decode(Int32?.self).map(Int.init),
                bodySize: Int(try cells[21].decode(Int32.self))
            ))
        }
        guard !events.isEmpty else { return nil }
        var children: [Trace] = []
        if depth < 8 {
            var childIDs: [String] = []
            let rows = try await client.query(
                "SELECT message_id FROM audit_events WHERE parent_id = \(messageID) GROUP BY message_id ORDER BY MIN(seq)",
                logger: logger
            )
            for try await row in rows { childIDs.append(try row.decode(String.self)) }
            for id in childIDs {
                if let child = try await trace(messageID: id, depth: depth + 1) { children.append(child) }
            }
        }
        return Trace(messageID: messageID, events: timelineOrder(events), children: children)
    }

    public func prune(before: Int64?, maxBytes: Int64?) async throws -> Int {
        var deleted = 0
        if let before {
            while true {
                let count = try await deleteCount(
                    "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE started_at < \(before) ORDER BY seq LIMIT 5000) RETURNING seq"
                )
                deleted += count
                if count < 5000 { break }
            }
            try await client.query("DELETE FROM sla_events WHERE at < \(before)", logger: logger)
        }
        if let maxBytes {
            for _ in 0..<20 {
                var size: Int64 = 0
                for try await row in try await client.query("SELECT pg_total_relation_size('audit_events')", logger: logger) {
                    size = try row.decode(Int64.self)
                }
                guard size > maxBytes else { break }
                // PostgreSQL reuses the space of deleted rows after vacuum rather than
                // shrinking the table, so this bounds growth rather than the file size.
                let count = try await deleteCount(
                    "DELETE FROM audit_events WHERE seq < (SELECT MIN(seq) + GREATEST(1, (MAX(seq) - MIN(seq)) / 10) FROM audit_events) RETURNING seq"
                )
                deleted += count
                if count == 0 { break }
            }
        }
        return deleted
    }

    /// Runs a `DELETE … RETURNING` and counts the rows it removed.
    private func deleteCount(_ query: PostgresQuery) async throws -> Int {
        var count = 0
        for try await _ in try await client.query(query, logger: logger) { count += 1 }
        return count
    }

    public func append(_ change: SLAEventRecord) async throws {
        try await client.query("""
            INSERT INTO sla_events (route_id, objective, state, value, target, at)
            VALUES (\(change.routeID), \(change.objective), \(change.state), \(change.value), \(change.target), \(change.at))
            """, logger: logger)
    }

    public func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] {
        var events: [SLAEventRecord] = []
        let query: PostgresQuery = route.map {
            "SELECT route_id, objective, state, value, target, at FROM sla_events WHERE route_id = \($0) ORDER BY seq DESC LIMIT \(Int64(limit))"
        } ?? "SELECT route_id, objective, state, value, target, at FROM sla_events ORDER BY seq DESC LIMIT \(Int64(limit))"
        for try await row in try await client.query(query, logger: logger) {
            let (route, objective, state, value, target, at) = try row.decode((String, String, String, String, String, Int64).self)
            events.append(SLAEventRecord(routeID: route, objective: objective, state: state, value: value, target: target, at: at))
        }
        return events
    }

    public func close() async throws {
        runner.cancel()
    }
}
