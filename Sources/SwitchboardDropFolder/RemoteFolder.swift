// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore
import Synchronization

/// A connection to a remote server's files (an SFTP session, an FTP control connection).
public protocol DropClient: AnyObject {
    func list(_ path: String) throws -> [DropEntry]
    func exists(_ path: String) throws -> Bool
    func read(_ path: String) throws -> [UInt8]
    func write(_ bytes: [UInt8], to path: String) throws
    /// Renames without replacing an existing file.
    func rename(_ from: String, to: String) throws
    func makeDirectory(_ path: String) throws
    func remove(_ path: String) throws
    func close()
}

/// A folder on a remote server, as a ``DropFolder``. One client is kept and reused across
/// polls, one call at a time; a call that fails with a connection error drops it, and the
/// next call connects again, waiting longer after each failed attempt (1 s doubling to 60 s).
public final class RemoteFolder: DropFolder, @unchecked Sendable {
    // @unchecked: the client and the backoff state are only touched under `lock`.
    public let root: String
    public let identity: String
    private let connect: () throws -> any DropClient
    private let isConnectionError: (any Error) -> Bool
    private let lock = NSLock()
    private var client: (any DropClient)?
    private var failures = 0
    private var retryAt = Date.distantPast
    /// Folders known to exist on the server (forgotten after any failure).
    private var knownDirectories: Set<String> = []

    public init(root: String, identity: String, connect: @escaping () throws -> any DropClient, isConnectionError: @escaping (any Error) -> Bool) {
        self.root = root
        self.identity = identity
        self.connect = connect
        self.isConnectionError = isConnectionError
    }

    /// Runs `body` with a connected client.
    public func with<T>(_ body: (any DropClient) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if client == nil {
            let now = Date()
            guard now >= retryAt else {
                throw FileAdapterError("\(identity): not connected; trying again in \(Int(retryAt.timeIntervalSince(now).rounded(.up))) s")
            }
            do {
                client = try connect()
                failures = 0
            } catch {
                failures += 1
                retryAt = now.addingTimeInterval(min(60, pow(2, Double(failures - 1))))
                throw error
            }
        }
        guard let client else { throw FileAdapterError("\(identity): not connected") }
        do {
            return try body(client)
        } catch {
            // A folder removed on the server shows up as a failure: ask again next time.
            knownDirectories = []
            if isConnectionError(error) {
                client.close()
                self.client = nil
            }
            throw error
        }
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        client?.close()
        client = nil
    }

    public var waitsOnNetwork: Bool { true }

    public func prepare() throws {
        try makeDirectories(root)
    }

    public func list(_ folder: String) throws -> [DropEntry] {
        try with { try $0.list(folder) }
    }

    public func exists(_ path: String) throws -> Bool {
        try with { try $0.exists(path) }
    }

    public func read(_ path: String) throws -> [UInt8] {
        try with { try $0.read(path) }
    }

    public func write(_ bytes: [UInt8], to path: String) throws {
        try with { try $0.write(bytes, to: path) }
    }

    public func rename(_ from: String, to: String) throws {
        try with { try $0.rename(from, to: to) }
    }

    public func makeDirectories(_ path: String) throws {
        try with { client in
            var built = ""
            for part in path.split(separator: "/") {
                built += "/" + part
                // Folders seen or made are remembered, so that writing many files into one
                // folder does not ask the server about it again for each file.
                if knownDirectories.contains(built) { continue }
                if try !client.exists(built) { try client.makeDirectory(built) }
                knownDirectories.insert(built)
            }
        }
    }

    public func remove(_ path: String) throws {
        try with { try $0.remove(path) }
    }
}

/// The remote folders an adapter opened, so that shutdown closes their connections, and the
/// consumer and producer set-up the remote adapters share.
public final class RemoteFolders: Sendable {
    private let open = Mutex<[RemoteFolder]>([])
    public let registry: FileRegistryHandle

    /// `dataDirectory` holds the record of files taken (shared with `file:` consumers).
    public init(dataDirectory: String) {
        registry = FileRegistryHandle(path: (dataDirectory as NSString).appendingPathComponent("file-consumers.db"))
    }

    public func consumer(_ endpoint: Endpoint, folder: RemoteFolder, logger: Logger) -> FileConsumer {
        FileConsumer(settings: DropFolderOptions.consumerSettings(endpoint, drop: track(folder)), registry: registry, logger: logger)
    }

    public func producer(_ endpoint: Endpoint, folder: RemoteFolder) throws -> RemoteFileProducer {
        try RemoteFileProducer(endpoint: endpoint, folder: track(folder))
    }

    private func track(_ folder: RemoteFolder) -> RemoteFolder {
        open.withLock { $0.append(folder) }
        return folder
    }

    /// Closes every connection and the record of files taken.
    public func close() {
        for folder in open.withLock({ $0 }) { folder.close() }
        registry.close()
    }
}
