// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import Synchronization

/// The record of files taken, one row per consumer folder and file key, in SQLite under the
/// node's data folder. A file is `processing` from the moment it is taken until its route
/// finished and it was archived (`done`) or moved aside (`failed`). Only `done` and `failed`
/// files are skipped: a file still `processing` after a crash is processed again.
final class FileRegistry: Sendable {
    private let queue: DatabaseQueue

    init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS taken_files (
                    consumer TEXT NOT NULL,
                    key TEXT NOT NULL,
                    path TEXT NOT NULL,
                    state TEXT NOT NULL,
                    taken_at REAL NOT NULL,
                    finished_at REAL,
                    error TEXT,
                    PRIMARY KEY (consumer, key)
                )
                """)
        }
    }

    enum State: String {
        case processing, done, failed
    }

    func state(consumer: String, key: String) throws -> State? {
        try queue.read { db in
            try String.fetchOne(db, sql: "SELECT state FROM taken_files WHERE consumer = ? AND key = ?", arguments: [consumer, key])
        }.flatMap(State.init(rawValue:))
    }

    func taken(consumer: String, key: String, path: String) throws {
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO taken_files (consumer, key, path, state, taken_at) VALUES (?, ?, ?, 'processing', ?)
                ON CONFLICT (consumer, key) DO UPDATE SET state = 'processing', path = excluded.path, taken_at = excluded.taken_at, finished_at = NULL, error = NULL
                """, arguments: [consumer, key, path, Date().timeIntervalSince1970])
        }
    }

    /// The files of `consumer` still `processing`: key and the path they were taken from.
    func processing(consumer: String) throws -> [(key: String, path: String)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT key, path FROM taken_files WHERE consumer = ? AND state = 'processing'", arguments: [consumer])
                .map { (key: $0["key"], path: $0["path"]) }
        }
    }

    func finished(consumer: String, key: String, state: State, error: String? = nil) throws {
        try queue.write { db in
            try db.execute(
                sql: "UPDATE taken_files SET state = ?, finished_at = ?, error = ? WHERE consumer = ? AND key = ?",
                arguments: [state.rawValue, Date().timeIntervalSince1970, error, consumer, key]
            )
        }
    }
}

/// Opens the registry the first time a consumer needs it (a node without file consumers
/// never creates the database), and shares it between consumers.
public final class FileRegistryHandle: Sendable {
    let path: String
    private let registry = Mutex<FileRegistry?>(nil)

    public init(path: String) {
        self.path = path
    }

    func open() throws -> FileRegistry {
        try registry.withLock { current in
            if let current { return current }
            let opened = try FileRegistry(path: path)
            current = opened
            return opened
        }
    }

    public func close() {
        registry.withLock { $0 = nil }
    }
}
