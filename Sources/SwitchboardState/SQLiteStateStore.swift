// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import NIOPosix
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStorage

/// A problem opening or using the node's state store.
public struct StateStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The node's embedded state store: dead letters, idempotency keys and the asynchronous
/// intake in one SQLite file in WAL mode (`DATA/state.db`).
///
/// Every write is a transaction that has committed when the call returns, so a node killed
/// with SIGKILL keeps it (`synchronous = NORMAL` in WAL mode).
public final class SQLiteStateStore: NodeStateStore {
    public let path: String
    private let pool: DatabasePool

    /// Opens (creating when `create`) the store at `path`.
    ///
    /// - Throws: ``StateStoreError`` when the file cannot be opened or is not a state store.
    public init(path: String, create: Bool = true) throws {
        self.path = path
        do {
            pool = try SQLiteFile.open(path: path, create: create, what: "state store", migrator: Self.migrator)
        } catch {
            throw StateStoreError("\(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("state-v1") { db in
            try db.execute(sql: """
                CREATE TABLE dead_letters (
                    id TEXT PRIMARY KEY,
                    route_id TEXT NOT NULL,
                    step TEXT NOT NULL,
                    error TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    first_failed_at INTEGER NOT NULL,
                    last_failed_at INTEGER NOT NULL,
                    replays INTEGER NOT NULL,
                    envelope TEXT NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX dead_letters_by_route ON dead_letters(route_id, first_failed_at);
                CREATE TABLE idempotency_keys (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    message_id TEXT NOT NULL,
                    claimed_at INTEGER NOT NULL,
                    PRIMARY KEY (scope, key)
                );
                CREATE TABLE intake (
                    id TEXT PRIMARY KEY,
                    route_id TEXT NOT NULL,
                    accepted_at INTEGER NOT NULL,
                    envelope TEXT NOT NULL,
                    body BLOB NOT NULL
                );
                """)
        }
        return migrator
    }

    /// Runs a write transaction on NIO's blocking-I/O thread pool, off the event loops.
    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeOffLoop(body)
        } catch let error as DatabaseError {
            throw StateStoreError("the state store at \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.readOffLoop(body)
        } catch let error as DatabaseError {
            throw StateStoreError("the state store at \(path) failed: \(error.message ?? "\(error)")")
        }
    }

    // MARK: Dead letters

    public func add(_ letter: DeadLetter) async throws {
        let envelope = MessageEnvelope.encode(letter.message)
        let body = Data(letter.message.body.readableBytesView)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO dead_letters
                        (id, route_id, step, error, attempts, first_failed_at, last_failed_at, replays, envelope, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    letter.id.description, letter.routeID, letter.step, letter.error, letter.attempts,
                    letter.firstFailedAt, letter.lastFailedAt, letter.replays, envelope, body,
                ]
            )
        }
    }

    public func list(routeID: String?, limit: Int) async throws -> [DeadLetter] {
        try await read { db in
            let rows = if let routeID {
                try Row.fetchAll(db, sql: "SELECT * FROM dead_letters WHERE route_id = ? ORDER BY first_failed_at, id LIMIT ?", arguments: [routeID, limit])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM dead_letters ORDER BY first_failed_at, id LIMIT ?", arguments: [limit])
            }
            return try rows.map(Self.deadLetter)
        }
    }

    public func get(_ id: MessageID) async throws -> DeadLetter? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dead_letters WHERE id = ?", arguments: [id.description]).map(Self.deadLetter)
        }
    }

    @discardableResult
    public func remove(_ id: MessageID) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM dead_letters WHERE id = ?", arguments: [id.description])
            return db.changesCount > 0
        }
    }

    private static func deadLetter(_ row: Row) throws -> DeadLetter {
        let body: Data = row["body"]
        return DeadLetter(
            message: try MessageEnvelope.decode(row["envelope"], body: Array(body)),
            routeID: row["route_id"],
            step: row["step"],
            error: row["error"],
            attempts: row["attempts"],
            firstFailedAt: row["first_failed_at"],
            lastFailedAt: row["last_failed_at"],
            replays: row["replays"]
        )
    }

    // MARK: Idempotency

    public func claim(scope: String, key: String, messageID: MessageID, ttl: Duration) async throws -> IdempotencyClaim {
        let now = wallClockMilliseconds()
        let cutoff = now - ttl.milliseconds
        let id = messageID.description
        return try await write { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT message_id, claimed_at FROM idempotency_keys WHERE scope = ? AND key = ?", arguments: [scope, key]
            ) {
                let holder: String = row["message_id"]
                let claimedAt: Int64 = row["claimed_at"]
                if holder == id { return .alreadyMine }
                if claimedAt > cutoff, let original = MessageID(holder) { return .duplicate(of: original) }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO idempotency_keys (scope, key, message_id, claimed_at) VALUES (?, ?, ?, ?)",
                arguments: [scope, key, id, now]
            )
            // Expired keys of this scope go as new ones come, so the table does not grow forever.
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE scope = ? AND claimed_at <= ?", arguments: [scope, cutoff])
            return .claimed
        }
    }

    public func release(scope: String, key: String, messageID: MessageID) async throws {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND message_id = ?",
                arguments: [scope, key, messageID.description]
            )
        }
    }

    // MARK: Intake

    public func enqueue(routeID: String, _ message: Message) async throws {
        let envelope = MessageEnvelope.encode(message)
        let body = Data(message.body.readableBytesView)
        try await write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO intake (id, route_id, accepted_at, envelope, body) VALUES (?, ?, ?, ?, ?)",
                arguments: [message.id.description, routeID, wallClockMilliseconds(), envelope, body]
            )
        }
    }

    public func finish(_ id: MessageID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM intake WHERE id = ?", arguments: [id.description])
        }
    }

    public func pending() async throws -> [(routeID: String, message: Message)] {
        let entries = try await read { db in
            try Row.fetchAll(db, sql: "SELECT route_id, envelope, body FROM intake ORDER BY accepted_at, id").map { row in
                let body: Data = row["body"]
                return IntakeEntry(routeID: row["route_id"], message: try MessageEnvelope.decode(row["envelope"], body: Array(body)))
            }
        }
        return entries.map { ($0.routeID, $0.message) }
    }
}

private struct IntakeEntry: Sendable {
    var routeID: String
    var message: Message
}
