// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import NIOPosix

/// Opens SQLite files the node keeps its state in: WAL mode (readers never block the
/// writer), a 10 s busy timeout, `synchronous = NORMAL` (a commit survives the process
/// being killed) or `FULL` (also a power cut).
public enum SQLiteFile {
    /// - Parameters:
    ///   - create: Create the file (and its folder) when missing; else a missing file throws.
    ///   - what: What the file is, for errors ("audit store").
    /// - Throws: A message naming the file.
    public static func open(path: String, create: Bool, fullSync: Bool = false, what: String, migrator: DatabaseMigrator) throws -> DatabasePool {
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw SQLiteFileError("no \(what) at \(path) (the node creates it on its first start)")
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
            let pool = try DatabasePool(path: path, configuration: configuration)
            try migrator.migrate(pool)
            return pool
        } catch {
            throw SQLiteFileError("cannot open the \(what) at \(path): \(error)")
        }
    }
}

public struct SQLiteFileError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension DatabasePool {
    /// Runs a write transaction on NIO's blocking-I/O thread pool, off the event loops and
    /// the cooperative threads. (GRDB's synchronous API on purpose: its async one,
    /// specialized across modules, crashed the Swift 6.3.1 optimizer in release builds.)
    public func writeOffLoop<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive { try self.write(body) }
    }

    /// Runs a read on NIO's blocking-I/O thread pool.
    public func readOffLoop<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive { try self.read(body) }
    }
}
