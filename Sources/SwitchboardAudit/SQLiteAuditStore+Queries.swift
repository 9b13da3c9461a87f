// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import GRDBSQLite
import NIOPosix
import SwitchboardStorage
import Synchronization

// What `trace` and `sla` read from the SQLite store.
extension SQLiteAuditStore {
    public func traces(_ query: TraceQuery) async throws -> [Trace] {
        try await indexPending()
        return try await read { db in
            let ids: [String]
            if let id = query.messageID {
                ids = [id]
            } else {
                var sql = "SELECT message_id FROM audit_chunks e WHERE entry_route IS NOT NULL"
                var arguments: [(any DatabaseValueConvertible)?] = []
                if let correlation = query.correlationID {
                    sql += """
                         AND seq IN (SELECT seq FROM audit_chunks WHERE correlation_id = ? AND correlation_id <> message_id AND entry_route IS NOT NULL
                            UNION ALL SELECT seq FROM audit_chunks WHERE message_id = ? AND correlation_id = message_id)
                        """
                    arguments.append(correlation)
                    arguments.append(correlation)
                }
                if let route = query.routeID {
                    sql += " AND entry_route = ?"
                    arguments.append(route)
                }
                switch query.status {
                case .ok: sql += " AND status = 'completed'"
                case .failed: sql += " AND status = 'failed'"
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
                         AND EXISTS (SELECT 1 FROM audit_chunks h, json_each(h.headers) j
                            WHERE h.message_id = e.message_id AND h.headers IS NOT NULL
                            AND lower(json_extract(j.value, '$[0]')) = lower(?) AND json_extract(j.value, '$[1]') = ?)
                        """
                    arguments.append(header.name)
                    arguments.append(header.value)
                }
                sql += query.afterSequence == nil ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq ASC LIMIT ?"
                arguments.append(query.limit)
                ids = try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            }
            return query.keep(try ids.uniqued().compactMap { try self.trace(db, messageID: $0, depth: 0) })
        }
    }

    private func trace(_ db: Database, messageID: String, depth: Int) throws -> Trace? {
        let rows = try Row.fetchAll(
            db, sql: "SELECT seq, correlation_id, parent_id, trace_id, headers, events, seg, seg_offset, seg_length FROM audit_chunks WHERE message_id = ? ORDER BY seq",
            arguments: [messageID]
        )
        guard !rows.isEmpty else { return nil }
        var events: [AuditRecord] = []
        for row in rows {
            events += try AuditRecord.fromStoredJSON(
                try storedEvents(row), sequence: row["seq"], messageID: messageID, correlationID: row["correlation_id"],
                parentID: row["parent_id"], traceID: row["trace_id"], headers: row["headers"]
            )
        }
        var children: [Trace] = []
        if depth < 8 {
            let childIDs = try String.fetchAll(
                db, sql: "SELECT message_id FROM audit_chunks WHERE parent_id = ? GROUP BY message_id ORDER BY MIN(seq)",
                arguments: [messageID]
            )
            children = try childIDs.compactMap { try self.trace(db, messageID: $0, depth: depth + 1) }
        }
        return Trace(messageID: messageID, events: timelineOrder(events), children: children)
    }

    /// A row's events as JSON text: from the events files, or inline for rows written before
    /// they existed.
    private func storedEvents(_ row: Row) throws -> String {
        guard let segment: Int64 = row["seg"], let offset: Int64 = row["seg_offset"], let length: Int = row["seg_length"] else {
            return row["events"]
        }
        return String(decoding: try segments.read(segment: segment, offset: offset, length: length), as: UTF8.self)
    }

    /// The events JSON stored for `messageID`, a string per row (what a row holds, for tests).
    func storedEvents(messageID: String) async throws -> [String] {
        try await indexPending()
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT events, seg, seg_offset, seg_length FROM audit_chunks WHERE message_id = ? ORDER BY seq", arguments: [messageID])
                .map { try self.storedEvents($0) }
        }
    }

    public func append(_ change: SLAEventRecord) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO sla_events (route_id, objective, state, value, target, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [change.routeID, change.objective, change.state, change.value, change.target, change.at]
            )
        }
    }

    public func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] {
        try await read { db in
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
}
