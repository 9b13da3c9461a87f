// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardDigest

/// File names that come from messages or templates, kept inside their folder.
public enum FilePaths {
    /// Joins a relative name to `folder`, refusing anything that could leave it: an empty
    /// name, an absolute path, `..` segments, NUL or control characters.
    ///
    /// - Throws: ``FileAdapterError`` saying what was wrong with the name.
    public static func resolve(_ name: String, in folder: String) throws -> String {
        guard !name.isEmpty else { throw FileAdapterError("the file name is empty") }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw FileAdapterError("the file name '\(printable(name))' contains NUL or control characters")
        }
        guard !name.hasPrefix("/") else {
            throw FileAdapterError("the file name '\(name)' is absolute; names are relative to \(folder)")
        }
        let segments = name.split(separator: "/", omittingEmptySubsequences: true)
        guard !segments.contains(where: { $0 == ".." }), !segments.isEmpty, segments.last != "." else {
            throw FileAdapterError("the file name '\(name)' would leave the folder \(folder)")
        }
        let joined = URL(fileURLWithPath: folder).appendingPathComponent(segments.filter { $0 != "." }.joined(separator: "/")).standardizedFileURL.path
        guard joined.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") else {
            throw FileAdapterError("the file name '\(name)' would leave the folder \(folder)")
        }
        return joined
    }

    /// Checks a `fileName` with no placeholders when routes load, so a name that would leave
    /// its folder is a load error rather than a failure of every message.
    ///
    /// - Throws: ``EndpointError`` naming the problem.
    public static func checkFixedName(_ template: (any MessageTemplate)?, in folder: String) throws {
        guard let template, !template.text.contains("${") else { return }
        do {
            _ = try resolve(template.text, in: folder)
        } catch let error as FileAdapterError {
            throw EndpointError("fileName: \(error.message)")
        }
    }

    /// `path` with every symbolic link resolved, or nil when it cannot be (a dangling link).
    package static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` is `folder` or inside it (both resolved).
    package static func isInside(_ path: String, _ folder: String) -> Bool {
        path == folder || path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    /// Reads a whole file without following a symbolic link out of `root`: the file is
    /// opened without following a link; a link is resolved and read only if what it names is
    /// inside `root`.
    package static func readInside(_ path: String, root: String) throws -> [UInt8] {
        var descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0, errno == ELOOP {
            guard let target = realPath(path), isInside(target, realPath(root) ?? root) else {
                throw FileAdapterError("\(path) is a symbolic link to a file outside \(root); it is not read")
            }
            descriptor = open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard descriptor >= 0 else { throw FileAdapterError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw FileAdapterError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// Refuses a path whose folder, once symbolic links are resolved, is not inside `folder`
    /// (a link in an output folder pointing out of it).
    package static func checkInside(_ path: String, folder: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        guard let resolved = realPath(parent) else { return }
        guard isInside(resolved, realPath(folder) ?? folder) else {
            throw FileAdapterError("\(parent) leads out of \(folder) through a symbolic link (to \(resolved)); nothing is written there")
        }
    }

    package static func printable(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }

    package static func timestamp(_ date: Date = Date()) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int(date.timeIntervalSince1970 * 1000) % 1000
        return String(format: "%04d%02d%02dT%02d%02d%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// Creates the folders on the way to `path`.
    package static func makeParent(of path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    }

    /// Writes `bytes` to `path` and flushes them to disk.
    package static func write(_ bytes: UnsafeRawBufferPointer, to path: String, append: Bool = false, exclusive: Bool = false) throws {
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW
        flags |= append ? O_APPEND : O_TRUNC
        if exclusive { flags |= O_EXCL }
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw FileAdapterError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileAdapterError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else { throw FileAdapterError("cannot flush \(path) to disk: \(String(cString: strerror(errno)))") }
    }

    /// Renames, failing with the reason.
    package static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw FileAdapterError("cannot move \(from) to \(to): \(String(cString: strerror(errno)))")
        }
    }

    /// Flushes a folder's entries (a rename into it) to disk.
    package static func syncFolder(_ folder: String) {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}

/// A file adapter problem, with what went wrong and where.
public struct FileAdapterError: Error, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension FilePaths {
    /// The SHA-256 of a file's content as hex, read in chunks (constant memory).
    package static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hash.update($0) }
        }
        return hash.finalizeHex()
    }
}
