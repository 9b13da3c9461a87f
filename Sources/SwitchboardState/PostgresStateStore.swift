// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import PostgresNIO
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStorage

/// The state store on PostgreSQL, for several nodes sharing dead letters and idempotency
/// keys (`state.store: postgres://…`).
///
/// Accepted async messages carry the name of the node that accepted them (its host name),
/// and a node resumes only its own after a restart, so two nodes never route one message.
public final class PostgresStateStore: NodeStateStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// The URL with its password replaced by `***`.
    public let displayURL: String
    /// Who owns the intake entries this node writes.
    let nodeName: String

    /// Connects and creates the tables when missing.
    ///
    /// - Throws: ``StateStoreError`` naming the URL (password hidden).
    public init(url: String, logger: Logger, nodeName: String = ProcessInfo.processInfo.hostName, connectTimeout: Duration = .seconds(5)) async throws {
        self.nodeName = nodeName
        let connection: PostgresPool
        do {
            connection = try await PostgresPool(url: url, what: "the state store", schema: Self.schema, connectTimeout: connectTimeout, logger: logger)
        } catch {
            throw StateStoreError("\(error)")
        }
        client = connection.client
        runner = connection.runner
        self.logger = connection.logger
        displayURL = connection.displayURL
    }

    public func close() async {
        runner.cancel()
    }

    private static let schema = [
        """
        CREATE TABLE IF NOT EXISTS switchboard_dead_letters (
            id TEXT PRIMARY KEY,
            route_id TEXT NOT NULL,
            step TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            first_failed_at BIGINT NOT NULL,
            last_failed_at BIGINT NOT NULL,
            replays INTEGER NOT NULL,
            envelope TEXT NOT NULL,
            body BYTEA NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS switchboard_dead_letters_by_route ON switchboard_dead_letters(route_id, first_failed_at)",
        """
        CREATE TABLE IF NOT EXISTS switchboard_idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            claimed_at BIGINT NOT NULL,
            PRIMARY KEY (scope, key)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS switchboard_intake (
            id TEXT PRIMARY KEY,
            node TEXT NOT NULL,
            route_id TEXT NOT NULL,
            accepted_at BIGINT NOT NULL,
            envelope TEXT NOT NULL,
            body BYTEA NOT NULL
        )
        """,
    ]

    private func failed(_ error: any Error) -> StateStoreError {
        StateStoreError("the state store \(displayURL) failed: \(String(reflecting: error))")
    }

    // MARK: Dead letters

    public func add(_ letter: DeadLetter) async throws {
        let envelope = MessageEnvelope.encode(letter.message)
        let body = letter.message.body
        let attempts = letter.attempts
        let replays = letter.replays
        do {
            try await client.query("""
                INSERT INTO switchboard_dead_letters
                    (id, route_id, step, error, attempts, first_failed_at, last_failed_at, replays, envelope, body)
                VALUES (\(letter.id.description), \(letter.routeID), \(letter.step), \(letter.error), \(attempts),
                    \(letter.firstFailedAt), \(letter.lastFailedAt), \(replays), \(envelope), \(body))
                ON CONFLICT (id) DO UPDATE SET step = EXCLUDED.step, error = EXCLUDED.error, attempts = EXCLUDED.attempts,
                    last_failed_at = EXCLUDED.last_failed_at, replays = EXCLUDED.replays
                """, logger: logger)
        } catch {
            throw failed(error)
        }
    }

    public func list(routeID: String?, limit: Int) async throws -> [DeadLetter] {
        do {
            let rows = if let routeID {
                try await client.query("""
                    SELECT id, route_id, step, error, attempts, first_failed_at, last_failed_at, replays, envelope, body
                    FROM switchboard_dead_letters WHERE route_id = \(routeID) ORDER BY first_failed_at, id LIMIT \(limit)
                    """, logger: logger)
            } else {
                try await client.query("""
                    SELECT id, route_id, step, error, attempts, first_failed_at, last_failed_at, replays, envelope, body
                    FROM switchboard_dead_letters ORDER BY first_failed_at, id LIMIT \(limit)
                    """, logger: logger)
            }
            var letters: [DeadLetter] = []
            for try await row in rows {
                letters.append(try Self.deadLetter(row))
            }
            return letters
        } catch let error as ProcessingError {
            throw error
        } catch {
            throw failed(error)
        }
    }

    public func get(_ id: MessageID) async throws -> DeadLetter? {
        do {
            let rows = try await client.query("""
                SELECT id, route_id, step, error, attempts, first_failed_at, last_failed_at, replays, envelope, body
                FROM switchboard_dead_letters WHERE id = \(id.description)
                """, logger: logger)
            for try await row in rows {
                return try Self.deadLetter(row)
            }
            return nil
        } catch let error as ProcessingError {
            throw error
        } catch {
            throw failed(error)
        }
    }

    @discardableResult
    public func remove(_ id: MessageID) async throws -> Bool {
        do {
            let rows = try await client.query("DELETE FROM switchboard_dead_letters WHERE id = \(id.description) RETURNING id", logger: logger)
            var removed = false
            for try await _ in rows { removed = true }
            return removed
        } catch {
            throw failed(error)
        }
    }

    private static func deadLetter(_ row: PostgresRow) throws -> DeadLetter {
        let cells = row.makeRandomAccess()
        let body = try cells[9].decode(ByteBuffer.self)
        return DeadLetter(
            message: try MessageEnvelope.decode(try cells[8].decode(String.self), body: Array(body.readableBytesView)),
            routeID: try cells[1].decode(String.self),
            step: try cells[2].decode(String.self),
            error: try cells[3].decode(String.self),
            attempts: try cells[4].decode(Int.self),
            firstFailedAt: try cells[5].decode(Int64.self),
            lastFailedAt: try cells[6].decode(Int64.self),
            replays: try cells[7].decode(Int.self)
        )
    }

    // MARK: Idempotency

    public func claim(scope: String, key: String, messageID: MessageID, ttl: Duration) async throws -> IdempotencyClaim {
        let now = wallClockMilliseconds()
        let cutoff = now - ttl.milliseconds
        let id = messageID.description
        do {
            // One statement, so two nodes claiming the same key at once cannot both win: the
            // row is taken when new, expired, or already this message's.
            let taken = try await client.query("""
                INSERT INTO switchboard_idempotency (scope, key, message_id, claimed_at) VALUES (\(scope), \(key), \(id), \(now))
                ON CONFLICT (scope, key) DO UPDATE SET message_id = EXCLUDED.message_id, claimed_at = EXCLUDED.claimed_at
                    WHERE switchboard_idempotency.claimed_at <= \(cutoff) OR switchboard_idempotency.message_id = EXCLUDED.message_id
                RETURNING message_id
                """, logger: logger)
            for try await _ in taken { return .claimed }
            let holders = try await client.query(
                "SELECT message_id FROM switchboard_idempotency WHERE scope = \(scope) AND key = \(key)", logger: logger
            )
            for try await holder in holders.decode(String.self) {
                if let original = MessageID(holder) { return .duplicate(of: original) }
            }
            // Released between the two statements: try again.
            return try await claim(scope: scope, key: key, messageID: messageID, ttl: ttl)
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw failed(error)
        }
    }

    public func release(scope: String, key: String, messageID: MessageID) async throws {
        do {
            try await client.query("""
                DELETE FROM switchboard_idempotency WHERE scope = \(scope) AND key = \(key) AND message_id = \(messageID.description)
                """, logger: logger)
        } catch {
            throw failed(error)
        }
    }

    // MARK: Intake

    public func enqueue(routeID: String, _ message: Message) async throws {
        let envelope = MessageEnvelope.encode(message)
        do {
            try await client.query("""
                INSERT INTO switchboard_intake (id, node, route_id, accepted_at, envelope, body)
                VALUES (\(message.id.description), \(nodeName), \(routeID), \(wallClockMilliseconds()), \(envelope), \(message.body))
                ON CONFLICT (id) DO NOTHING
                """, logger: logger)
        } catch {
            throw failed(error)
        }
    }

    public func finish(_ id: MessageID) async throws {
        do {
            try await client.query("DELETE FROM switchboard_intake WHERE id = \(id.description)", logger: logger)
        } catch {
            throw failed(error)
        }
    }

    public func pending() async throws -> [(routeID: String, message: Message)] {
        do {
            let rows = try await client.query("""
                SELECT route_id, envelope, body FROM switchboard_intake WHERE node = \(nodeName) ORDER BY accepted_at, id
                """, logger: logger)
            var entries: [(routeID: String, message: Message)] = []
            for try await (routeID, envelope, body) in rows.decode((String, String, ByteBuffer).self) {
                entries.append((routeID, try MessageEnvelope.decode(envelope, body: Array(body.readableBytesView))))
            }
            return entries
        } catch let error as ProcessingError {
            throw error
        } catch {
            throw failed(error)
        }
    }
}
