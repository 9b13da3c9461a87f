// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import GRDBSQLite
import NIOPosix
import SwitchboardStorage
import Synchronization

/// The embedded audit store: records appended to events files (``AuditSegments``), indexed
/// into one SQLite file in WAL mode (readers never block the writer).
///
/// A batch is kept once its records are written to the events file (``appendBlocking(_:)``):
/// a node killed with SIGKILL keeps it, and whoever opens the store next indexes it. Only a
/// power cut can lose the last few batches (and the last index transactions, which are run
/// again from the records: SQLite runs with `synchronous = NORMAL`). `audit.sync: full`
/// makes every write wait for the disk, the records' and SQLite's.
public final class SQLiteAuditStore: BlockingAuditStore {
    public let path: String
    private let pool: DatabasePool
    /// The records, in append-only files beside the database (see ``AuditSegments``).
    let segments: AuditSegments
    private let fullSync: Bool

    /// Opens (creating when `create`) the store at `path`.
    ///
    /// - Throws: ``AuditStoreError`` when the file cannot be opened or is not an audit store.
    /// - Parameter eventFileBytes: The size at which the events move to a new file.
    public init(path: String, create: Bool = true, fullSync: Bool = false, eventFileBytes: Int64 = 16 << 20) throws {
        self.path = path
        self.fullSync = fullSync
        segments = AuditSegments(storePath: path, rollBytes: eventFileBytes)
        do {
            pool = try SQLiteFile.open(
                path: path, create: create, fullSync: fullSync, what: "audit store", migrator: Self.migrator(eventsFolder: segments.folder)
            )
        } catch {
            throw AuditStoreError("\(error)")
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeOffLoop(body)
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.readOffLoop(body)
    }

    private static func migrator(eventsFolder: String) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("audit-v1") { db in
            // One row per message and write batch, its events as a JSON array: the usual
            // exchange is one row, one index entry and a few WAL pages rather than four.
            try db.execute(sql: """
                CREATE TABLE audit_chunks (
                    seq INTEGER PRIMARY KEY,
                    message_id TEXT NOT NULL,
                    correlation_id TEXT NOT NULL,
                    parent_id TEXT,
                    trace_id TEXT,
                    entry_route TEXT,
                    status TEXT,
                    started_at INTEGER NOT NULL,
                    headers TEXT,
                    events TEXT NOT NULL
                );
                CREATE INDEX chunk_by_message ON audit_chunks(message_id);
                CREATE INDEX chunk_by_parent ON audit_chunks(parent_id) WHERE parent_id IS NOT NULL;
                CREATE INDEX chunk_entry_ends ON audit_chunks(seq) WHERE entry_route IS NOT NULL;
                CREATE INDEX chunk_by_correlation ON audit_chunks(correlation_id) WHERE entry_route IS NOT NULL;
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
        migrator.registerMigration("audit-v2") { db in
            // Each index costs a page write on every commit (its rightmost leaf), which is most
            // of what a commit writes. Recent traces are found by scanning rows newest first;
            // a correlation id that is the message's own id (the usual case) is found by the
            // message index, so only the others are indexed.
            try db.execute(sql: """
                DROP INDEX chunk_entry_ends;
                DROP INDEX chunk_by_correlation;
                CREATE INDEX chunk_by_correlation ON audit_chunks(correlation_id)
                    WHERE entry_route IS NOT NULL AND correlation_id <> message_id;
                """)
        }
        migrator.registerMigration("audit-v3") { db in
            // A row's events moved to the events files: `seg` names the file, `seg_offset`
            // and `seg_length` the bytes; `events` is then empty. Rows written before keep
            // their events inline (`seg` NULL).
            try db.execute(sql: """
                ALTER TABLE audit_chunks ADD COLUMN seg INTEGER;
                ALTER TABLE audit_chunks ADD COLUMN seg_offset INTEGER;
                ALTER TABLE audit_chunks ADD COLUMN seg_length INTEGER;
                """)
        }
        migrator.registerMigration("audit-v4") { db in
            // Rows are indexed from the events files' records: `audit_index` holds where the
            // next record to index starts. Files written before hold bare events, not
            // records: indexing starts at the file this run writes first.
            try db.execute(sql: """
                CREATE TABLE audit_index (seg INTEGER NOT NULL, seg_offset INTEGER NOT NULL);
                INSERT INTO audit_index VALUES (?, 0);
                """, arguments: [AuditSegments.freshFileNumber(in: eventsFolder)])
        }
        return migrator
    }

    static let insertSQL = insertSQL(rows: 1)

    /// Rows an index transaction inserts with one statement when it has that many: SQLite
    /// then runs one statement for them instead of one each (a C loop in this schema took
    /// 27% less time a row with 16; bench/HISTORY.md, tenth round).
    static let rowsPerInsert = 16

    static func insertSQL(rows: Int) -> String {
        """
        INSERT INTO audit_chunks (message_id, correlation_id, parent_id, trace_id, entry_route, status, started_at, headers, events, seg, seg_offset, seg_length)
        VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)", count: rows).joined(separator: ", "))
        """
    }

    static let insertManySQL = insertSQL(rows: rowsPerInsert)

    /// The parameters a row takes in the insert statements.
    static let parametersPerRow: Int32 = 11

    /// Writes `batch` and indexes it: searchable once this returns.
    public func append(_ batch: AuditBatch) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            try self.appendBlocking(batch)
            try self.indexBlocking()
        }
    }

    /// Writes the batch's records to the events file with one write: kept once this
    /// returns (with `audit.sync: full`, on the disk), searchable once indexed.
    public func appendBlocking(_ batch: AuditBatch) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(batch.events.reduce(0) { $0 + $1.json.count + ($1.headers?.count ?? 0) } + 256)
        let records = try batch.appendRecords(to: &bytes)
        _ = try bytes.withUnsafeBytes { try segments.append($0, sync: fullSync) }
        unindexed.add(records, ordering: .relaxed)
    }

    /// With `audit.sync: full`, every write waits for the disk.
    public var waitsForDisk: Bool { fullSync }

    /// Records written by this store and not yet indexed (others may have indexed them).
    private let unindexed = Atomic<Int>(0)

    /// Whether this store wrote records since it last indexed.
    public var hasUnindexedRecords: Bool { unindexed.load(ordering: .relaxed) > 0 }

    /// Whether this store wrote enough records since it last indexed for an index
    /// transaction to be worth it.
    public var indexDue: Bool { unindexed.load(ordering: .relaxed) >= Self.indexBatch }

    /// The records an index transaction takes, at least, when the writer is busy.
    static let indexBatch = 512

    /// Indexes every record past the index position into SQLite, up to `limit` per
    /// transaction. The position is read and advanced in the same transaction as the rows,
    /// so every record is indexed once, whoever indexes: this node's writer, a query, or
    /// `switchboard trace --store` run while the node is down.
    public func indexBlocking(limit: Int = 20_000) throws {
        let written = unindexed.load(ordering: .relaxed)
        while try pool.writeWithoutTransaction({ db in try self.indexOnce(db, limit: limit) }) >= limit {}
        // What was written before this pass is indexed now. Two passes at once (the writer
        // and a query) both took it off: the count never goes below zero.
        var count = unindexed.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = unindexed.compareExchange(expected: count, desired: max(0, count - written), ordering: .relaxed)
            if exchanged { break }
            count = original
        }
    }

    /// One index transaction. Returns how many records it indexed.
    private func indexOnce(_ db: Database, limit: Int) throws -> Int {
        // The transaction is begun and committed with prepared statements of its own: GRDB's
        // `write` parses its BEGIN and COMMIT text anew for every transaction.
        let begin = try db.cachedStatement(sql: "BEGIN IMMEDIATE").sqliteStatement
        let commit = try db.cachedStatement(sql: "COMMIT").sqliteStatement
        // Bound with SQLite's own calls, straight from the bytes read: GRDB's argument
        // arrays box each value.
        let insert = try db.cachedStatement(sql: Self.insertSQL).sqliteStatement
        let insertMany = try db.cachedStatement(sql: Self.insertManySQL).sqliteStatement
        try step(begin, "beginning to index audit events")
        do {
            guard let position = try Row.fetchOne(db, sql: "SELECT seg, seg_offset FROM audit_index") else {
                throw AuditStoreError("the audit store \(path) has no index position (table audit_index is empty)")
            }
            var segment: Int64 = position["seg"]
            var offset: Int64 = position["seg_offset"]
            var count = 0
            while count < limit {
                // A later file, seen before this one is read, means this one is complete:
                // the writer never goes back to a file. What is left of it past its last
                // whole record is a write cut short, and indexing goes on in the next file.
                let next = segments.nextFileNumber(after: segment)
                let (end, indexed) = try segments.scan(segment: segment, from: offset, limit: limit - count) { records in
                    // The bytes bound go with the window read, also when a step fails.
                    defer {
                        sqlite3_clear_bindings(insert)
                        sqlite3_clear_bindings(insertMany)
                    }
                    var first = records.startIndex
                    while records.endIndex - first >= Self.rowsPerInsert {
                        for row in 0..<Self.rowsPerInsert {
                            let (record, start) = records[first + row]
                            self.bindRow(record, segment: segment, at: start, to: insertMany, from: Int32(row) * Self.parametersPerRow + 1)
                        }
                        try step(insertMany, "indexing audit events")
                        first += Self.rowsPerInsert
                    }
                    for (record, start) in records[first...] {
                        self.bindRow(record, segment: segment, at: start, to: insert, from: 1)
                        try step(insert, "indexing audit events")
                    }
                }
                offset = end
                count += indexed
                guard count < limit, let next else { break }
                segment = next
                offset = 0
            }
            if count > 0 || segment != position["seg"] || offset != position["seg_offset"] {
                try db.execute(sql: "UPDATE audit_index SET seg = ?, seg_offset = ?", arguments: [segment, offset])
            }
            try step(commit, "committing indexed audit events")
            return count
        } catch {
            // Nothing of it stays: the records are indexed again from the same position.
            if let connection = db.sqliteConnection, sqlite3_get_autocommit(connection) == 0 {
                sqlite3_exec(connection, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// Binds the row of a record that starts at `start` in file `segment` to the statement's
    /// parameters from `first` on (``parametersPerRow`` of them).
    private func bindRow(_ record: AuditEventRecords.Record, segment: Int64, at start: Int64, to statement: OpaquePointer, from first: Int32) {
        bind(statement, first, record.field(.messageID))
        bind(statement, first + 1, record.field(.correlationID))
        bind(statement, first + 2, record.field(.parentID))
        bind(statement, first + 3, record.field(.traceID))
        bind(statement, first + 4, record.field(.entryRoute))
        bind(statement, first + 5, record.field(.status))
        sqlite3_bind_int64(statement, first + 6, record.startedAt)
        bind(statement, first + 7, record.field(.headers))
        sqlite3_bind_int64(statement, first + 8, segment)
        sqlite3_bind_int64(statement, first + 9, start + Int64(record.eventsOffset))
        sqlite3_bind_int64(statement, first + 10, Int64(record.field(.events)?.count ?? 0))
    }

    /// Indexes what is left, off the caller's thread: queries and retention see every
    /// record written.
    func indexPending() async throws {
        try await NIOThreadPool.singleton.runIfActive { try self.indexBlocking() }
    }

    public func prune(before: Int64?, maxBytes: Int64?) async throws -> Int {
        // Rows first, so what is pruned by age or size is what is stored.
        try await indexPending()
        var deleted = 0
        if let before {
            // Sequence numbers grow with time: everything below the first recent row is old.
            let cut: Int64? = try await read { db in
                try Int64.fetchOne(db, sql: "SELECT seq FROM audit_chunks WHERE started_at >= ? ORDER BY seq LIMIT 1", arguments: [before])
                    ?? Int64.fetchOne(db, sql: "SELECT MAX(seq) + 1 FROM audit_chunks")
            }
            if let cut {
                deleted += try await deleteBelow(cut).rows
            }
            try await write { db in try db.execute(sql: "DELETE FROM sla_events WHERE at < ?", arguments: [before]) }
        }
        if let maxBytes {
            // What the store holds: the database's live pages and the events of its rows.
            // The events files bound the second from above (the oldest file can be partly
            // pruned), so when they fit the rows need not be summed.
            let files = segments.totalBytes
            var events: Int64 = try await read { db in
                try Self.pageBytes(db) + files <= maxBytes ? 0 : Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(seg_length), 0) FROM audit_chunks") ?? 0
            }
            // Drop the oldest tenth until it fits.
            for _ in 0..<20 {
                let (pages, oldest, count) = try await read { db -> (Int64, Int64, Int64) in
                    let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM audit_chunks") ?? 0
                    let newest = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_chunks") ?? 0
                    return (try Self.pageBytes(db), oldest, newest - oldest + 1)
                }
                guard pages + min(events, files) > maxBytes, count > 1 else { break }
                let (rows, freed) = try await deleteBelow(oldest + max(1, count / 10))
                deleted += rows
                events -= freed
            }
        }
        try await removeUnusedEventFiles()
        return deleted
    }

    /// The bytes of the database's pages in use.
    private static func pageBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }

    /// Deletes the events files no row points into.
    private func removeUnusedEventFiles() async throws {
        // The file being written to is read first: records written to it after the index
        // position is read have no row yet, and files from it on are kept. So are files
        // from the index position on: their records are not all indexed.
        let writing = segments.currentNumber
        let (first, indexing): (Int64?, Int64?) = try await read { db in
            // Files are numbered in the order rows are written: the oldest row's is the first.
            (try Int64.fetchOne(db, sql: "SELECT seg FROM audit_chunks WHERE seg IS NOT NULL ORDER BY seq LIMIT 1"),
             try Int64.fetchOne(db, sql: "SELECT seg FROM audit_index"))
        }
        segments.removeFiles(below: min(first ?? writing, writing, indexing ?? writing))
    }

    /// Deletes rows with `seq < cut`, in chunks so the writer is never held for long.
    ///
    /// - Returns: The rows deleted and the bytes of events they pointed at.
    private func deleteBelow(_ cut: Int64) async throws -> (rows: Int, eventBytes: Int64) {
        var deleted = 0
        var bytes: Int64 = 0
        while true {
            let (count, freed) = try await write { db -> (Int, Int64) in
                let chunk = "SELECT seq FROM audit_chunks WHERE seq < ? ORDER BY seq LIMIT 5000"
                let freed = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(seg_length), 0) FROM audit_chunks WHERE seq IN (\(chunk))", arguments: [cut]) ?? 0
                try db.execute(sql: "DELETE FROM audit_chunks WHERE seq IN (\(chunk))", arguments: [cut])
                return (db.changesCount, freed)
            }
            deleted += count
            bytes += freed
            if count < 5000 { return (deleted, bytes) }
        }
    }

    public func close() async throws {
        segments.close()
        try pool.close()
    }
}

/// Runs a statement that returns no rows, and resets it.
private func step(_ statement: OpaquePointer, _ what: String) throws {
    let code = sqlite3_step(statement)
    guard code == SQLITE_DONE else {
        let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(statement)))
        sqlite3_reset(statement)
        throw AuditStoreError("\(what) failed: \(message)")
    }
    sqlite3_reset(statement)
}

/// Binds UTF-8 bytes as text, or NULL. SQLite does not copy them (`SQLITE_STATIC`): they
/// must stay in place until the statement has been stepped and the bindings cleared or
/// replaced (``SQLiteAuditStore``'s index binds from the bytes read, which outlive the step).
private func bind(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer?) {
    guard let bytes else {
        sqlite3_bind_null(statement, index)
        return
    }
    // An empty field has no address; SQLite reads none of its bytes, but NULL would bind NULL.
    let base = bytes.baseAddress ?? UnsafeRawPointer(emptyText.utf8Start)
    _ = sqlite3_bind_text(statement, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
}

private let emptyText: StaticString = ""

/// The audit store cannot be opened, read or written.
public struct AuditStoreError: Error, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
