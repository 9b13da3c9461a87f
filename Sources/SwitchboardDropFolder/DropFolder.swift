// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// One entry of a folder listing.
public struct DropEntry: Sendable {
    public var name: String
    public var isDirectory: Bool
    public var isFile: Bool
    public var size: Int64
    /// Modification time in nanoseconds since the epoch (as precise as the system gives it).
    public var modifiedNanos: Int64
    /// Why the entry is not taken although it is there (a link out of the folder); nil for
    /// an entry as listed.
    public var refusal: String?

    public init(name: String, isDirectory: Bool, isFile: Bool, size: Int64, modifiedNanos: Int64, refusal: String? = nil) {
        self.name = name
        self.isDirectory = isDirectory
        self.isFile = isFile
        self.size = size
        self.modifiedNanos = modifiedNanos
        self.refusal = refusal
    }
}

/// Where dropped files are taken from: a local folder, or one on an SFTP or FTP server. The
/// consumer's rules (complete files only, archive after success, never twice) are written
/// once against this; paths are absolute on the folder's own system.
public protocol DropFolder: Sendable {
    /// The folder itself, absolute.
    var root: String { get }
    /// Names the folder in the record of files taken and in logs (`sftp://user@host:22/in`).
    var identity: String { get }
    /// Makes the folder if it is missing (and connects, for a remote one).
    func prepare() throws
    func list(_ folder: String) throws -> [DropEntry]
    func exists(_ path: String) throws -> Bool
    func read(_ path: String) throws -> [UInt8]
    /// Writes a small file (an error note) in place.
    func write(_ bytes: [UInt8], to path: String) throws
    /// Renames within the folder; the target does not exist (callers pick a free name).
    func rename(_ from: String, to: String) throws
    func makeDirectories(_ path: String) throws
    func remove(_ path: String) throws
    /// The path on this machine's file system, for a local folder; nil for a remote one.
    func localPath(_ path: String) -> String?
    /// Whether calls wait on the network (a remote folder): then ``blocking(_:)`` runs them
    /// apart from the threads async code runs on.
    var waitsOnNetwork: Bool { get }
}

extension DropFolder {
    public func localPath(_ path: String) -> String? { nil }
    public var waitsOnNetwork: Bool { false }

    /// Runs `body`, which calls the folder. For a remote folder it runs on a thread of its
    /// own: a slow server or a connect timeout then never holds one of the threads async
    /// code runs on (in the node, its event loops, which also serve HTTP), nor a slot of a
    /// shared pool that other folders wait for. A local folder's calls run in place.
    public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard waitsOnNetwork else { return try body() }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = "switchboard remote folder"
            thread.start()
        }
    }

    /// `path` if nothing is there, else the same name with a timestamp (and a counter if
    /// needed) before the extension.
    public func unique(_ path: String) throws -> String {
        guard try exists(path) else { return path }
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let base = url.deletingPathExtension().path
        let stamp = FilePaths.timestamp()
        var counter = 0
        while true {
            let candidate = base + "-" + stamp + (counter == 0 ? "" : "-\(counter)") + (ext.isEmpty ? "" : "." + ext)
            if try !exists(candidate) { return candidate }
            counter += 1
        }
    }

    public func makeParent(of path: String) throws {
        try makeDirectories((path as NSString).deletingLastPathComponent)
    }
}

/// A folder on this machine's file system.
package struct LocalFolder: DropFolder {
    package let root: String

    package init(root: String) {
        self.root = root
    }
    package var identity: String { root }

    package func localPath(_ path: String) -> String? { path }

    package func prepare() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Symbolic links are followed only when what they name is inside the folder; a link out
    /// of it is listed with its refusal.
    package func list(_ folder: String) throws -> [DropEntry] {
        try FileManager.default.contentsOfDirectory(atPath: folder).compactMap { name in
            let path = folder + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            if info.st_mode & S_IFMT == S_IFLNK {
                guard let target = FilePaths.realPath(path), FilePaths.isInside(target, FilePaths.realPath(root) ?? root) else {
                    let named = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
                    return DropEntry(name: name, isDirectory: false, isFile: false, size: 0, modifiedNanos: 0,
                                     refusal: "it is a symbolic link to \(named), outside \(root), which is not followed")
                }
                guard stat(path, &info) == 0 else { return nil }
            }
            let kind = info.st_mode & S_IFMT
            return DropEntry(
                name: name, isDirectory: kind == S_IFDIR, isFile: kind == S_IFREG, size: Int64(info.st_size),
                modifiedNanos: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            )
        }
    }

    package func exists(_ path: String) throws -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    /// Reads a file; a symbolic link only when what it names (at the time of reading) is
    /// inside the folder.
    package func read(_ path: String) throws -> [UInt8] {
        try FilePaths.readInside(path, root: root)
    }

    package func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try FilePaths.write($0, to: path) }
    }

    package func rename(_ from: String, to: String) throws {
        try FilePaths.rename(from, to: to)
    }

    package func makeDirectories(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    package func remove(_ path: String) throws {
        guard unlink(path) == 0 else {
            throw FileAdapterError("cannot delete \(path): \(String(cString: strerror(errno)))")
        }
    }
}
