// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Synchronization

/// The append-only files that hold an SQLite audit store's records, next to the database
/// (`audit.db-events/000000000001.events`, …): each message's row and events, in the form
/// ``AuditEventRecords`` describes.
///
/// A commit writes its exchanges' records here with one write; SQLite indexes them later,
/// many per transaction. SQLite then writes a few hundred bytes per exchange to its WAL and
/// again at checkpoint instead of the whole event text (about 2 KB for a proxied request
/// with the default body policy) twice, plus the partly filled pages every small commit
/// writes again.
///
/// A store opened writes to a new file (``freshFileNumber(in:)``), so a record an earlier
/// run cut short stays at the end of its file. Files roll at ``rollBytes``; retention
/// deletes a file once no row points into it and indexing has passed it.
final class AuditSegments: Sendable {
    /// Where the files are: the store's path with `-events`.
    let folder: String
    /// A file is closed for writing once it holds this much.
    let rollBytes: Int64

    private struct Current {
        var number: Int64
        var descriptor: Int32 = -1
        var end: Int64 = 0
    }

    private let current: Mutex<Current>

    /// - Parameters:
    ///   - storePath: The SQLite file's path.
    ///   - rollBytes: The size at which writing moves to a new file.
    init(storePath: String, rollBytes: Int64 = 16 << 20) {
        folder = storePath + "-events"
        self.rollBytes = rollBytes
        current = Mutex(Current(number: Self.freshFileNumber(in: folder)))
    }

    /// The file a store opened now writes to: a new one after the last, or the last when it
    /// is empty. A node never appends to a file an earlier run wrote: whatever that run left
    /// at its end (a record cut short) then stays the end of its file.
    static func freshFileNumber(in folder: String) -> Int64 {
        guard let last = fileNumbers(in: folder).last else { return 1 }
        var info = stat()
        let file = folder + "/" + fileName(last)
        return stat(file, &info) == 0 && info.st_size == 0 ? last : last + 1
    }

    deinit {
        close()
    }

    /// Closes the file being written to; the next append opens it again.
    func close() {
        current.withLock { current in
            if current.descriptor >= 0 { Glibc.close(current.descriptor) }
            current.descriptor = -1
        }
    }

    /// The file name for segment `number`.
    func path(_ number: Int64) -> String {
        folder + "/" + Self.fileName(number)
    }

    private static func fileName(_ number: Int64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".events"
    }

    /// The file after `number`, if there is one. Files are numbered one after another (the
    /// writer moves to the next number, retention deletes only the oldest), so it is
    /// `number + 1`; the folder is listed only when `number` itself is gone.
    func nextFileNumber(after number: Int64) -> Int64? {
        var info = stat()
        if stat(path(number + 1), &info) == 0 { return number + 1 }
        guard stat(path(number), &info) != 0 else { return nil }
        return Self.fileNumbers(in: folder).first { $0 > number }
    }

    /// The segment numbers present, ascending.
    static func fileNumbers(in folder: String) -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name in
            guard name.hasSuffix(".events") else { return nil }
            return Int64(name.dropLast(".events".count))
        }.sorted()
    }

    /// Appends `bytes` (with `sync`, waits for the disk) and returns the segment and offset
    /// they start at.
    ///
    /// - Throws: ``AuditStoreError`` naming the file when it cannot be opened or written.
    func append(_ bytes: UnsafeRawBufferPointer, sync: Bool) throws -> (segment: Int64, offset: Int64) {
        try current.withLock { current in
            if current.descriptor >= 0, current.end >= rollBytes {
                Glibc.close(current.descriptor)
                current.descriptor = -1
                current.number += 1
            }
            while current.descriptor < 0 {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let file = path(current.number)
                let descriptor = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
                guard descriptor >= 0 else {
                    throw AuditStoreError("cannot open the audit events file \(file): \(String(cString: strerror(errno)))")
                }
                let end = lseek(descriptor, 0, SEEK_END)
                guard end >= 0 else {
                    let reason = String(cString: strerror(errno))
                    Glibc.close(descriptor)
                    throw AuditStoreError("cannot open the audit events file \(file): \(reason)")
                }
                if Int64(end) >= rollBytes {
                    // Full already (the node stopped after filling it): the next one.
                    Glibc.close(descriptor)
                    current.number += 1
                    continue
                }
                // A new file's name must reach the disk too before a row points into it.
                if sync, end == 0 {
                    let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    let synced = directory >= 0 && fsync(directory) == 0
                    if directory >= 0 { Glibc.close(directory) }
                    guard synced else {
                        Glibc.close(descriptor)
                        throw AuditStoreError("cannot sync the audit events folder \(folder): \(String(cString: strerror(errno)))")
                    }
                }
                current.descriptor = descriptor
                current.end = Int64(end)
            }
            // A failed write leaves `end` where it was: the next write goes over what part
            // of it reached the file (no row points there).
            var written = 0
            while written < bytes.count {
                let count = pwrite(current.descriptor, bytes.baseAddress.map { $0 + written }, bytes.count - written, off_t(current.end) + off_t(written))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw AuditStoreError("cannot write the audit events file \(path(current.number)): \(String(cString: strerror(errno)))")
                }
                written += count
            }
            if sync, fdatasync(current.descriptor) != 0 {
                throw AuditStoreError("cannot sync the audit events file \(path(current.number)): \(String(cString: strerror(errno)))")
            }
            let offset = current.end
            current.end += Int64(bytes.count)
            return (current.number, offset)
        }
    }

    /// The segment being written to.
    var currentNumber: Int64 {
        current.withLock { $0.number }
    }

    /// Reads `length` bytes of segment `segment` from `offset`.
    ///
    /// - Throws: ``AuditStoreError`` when the file is gone (retention deleted it after the
    ///   row was read) or shorter than the row says.
    func read(segment: Int64, offset: Int64, length: Int) throws -> [UInt8] {
        let file = path(segment)
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw AuditStoreError("cannot read the audit events file \(file): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(descriptor) }
        // A damaged row (a negative or oversized span) is an error, not a crash or an
        // allocation of whatever size it says.
        var info = stat()
        guard offset >= 0, length >= 0, fstat(descriptor, &info) == 0,
              Int64(length) <= Int64(info.st_size), offset <= Int64(info.st_size) - Int64(length) else {
            throw AuditStoreError("the audit events file \(file) holds no \(length) bytes at \(offset), which a stored row points at")
        }
        var bytes = [UInt8](repeating: 0, count: length)
        try bytes.withUnsafeMutableBytes { buffer in
            try Self.readFully(descriptor, into: buffer, at: offset) { _, _ in
                AuditStoreError("the audit events file \(file) ends before byte \(offset + Int64(length)) that a stored row points at")
            }
        }
        return bytes
    }

    /// Fills `buffer` with the bytes of `descriptor` from `offset`.
    ///
    /// - Throws: What `failure` makes of where the read stopped and why, when it fails or the
    ///   file ends first.
    private static func readFully(
        _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, failure: (_ at: Int64, _ reason: String) -> AuditStoreError
    ) throws {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset) + off_t(done))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw failure(offset + Int64(done), count < 0 ? String(cString: strerror(errno)) : "it ends early")
            }
            done += count
        }
    }

    /// Calls `body` with the whole records of segment `segment` from `offset` on (at most
    /// `limit`), and the offset each starts at: once per window read, with the records in it
    /// (they point into the window, which is read over after `body` returns).
    ///
    /// - Returns: Where the records read end: the file's end, or the start of a record cut
    ///   short. A missing file has none.
    /// - Throws: ``AuditStoreError`` naming the file when it cannot be read, or what `body` throws.
    func scan(
        segment: Int64, from offset: Int64, limit: Int, _ body: ([(record: AuditEventRecords.Record, start: Int64)]) throws -> Void
    ) throws -> (end: Int64, count: Int) {
        let file = path(segment)
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return (offset, 0) }
            throw AuditStoreError("cannot read the audit events file \(file): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw AuditStoreError("cannot read the audit events file \(file): \(String(cString: strerror(errno)))")
        }
        let size = Int64(info.st_size)
        var position = offset
        var count = 0
        var buffer: [UInt8] = []
        var records: [(record: AuditEventRecords.Record, start: Int64)] = []
        // Read a window at a time; a record longer than the window is read whole.
        var want = Self.scanWindow
        while position < size, count < limit {
            let length = Int(min(Int64(want), size - position))
            // Not zeroed first: every byte used is read into it.
            if buffer.count < length { buffer = [UInt8](unsafeUninitializedCapacity: length) { $1 = length } }
            try buffer.withUnsafeMutableBytes { raw in
                try Self.readFully(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), at: position) { at, reason in
                    AuditStoreError("cannot read the audit events file \(file) at \(at): \(reason)")
                }
            }
            let (used, needs, stop) = try buffer.withUnsafeBytes { raw -> (Int, Int?, Bool) in
                let window = UnsafeRawBufferPointer(rebasing: raw[0..<length])
                var cursor = 0
                records.removeAll(keepingCapacity: true)
                var needs: Int?
                var stop = false
                parsing: while cursor < length, count < limit {
                    switch AuditEventRecords.parse(UnsafeRawBufferPointer(rebasing: window[cursor...]), remaining: Int(size - position) - cursor) {
                    case .record(let record):
                        records.append((record, position + Int64(cursor)))
                        cursor += record.length
                        count += 1
                    case .needs(let length):
                        needs = length
                        break parsing
                    case .broken:
                        stop = true
                        break parsing
                    }
                }
                if !records.isEmpty { try body(records) }
                return (cursor, needs, stop)
            }
            position += Int64(used)
            if stop { break }
            want = max(Self.scanWindow, needs ?? 0)
        }
        return (position, count)
    }

    /// How much of a file indexing reads at a time.
    static let scanWindow = 1 << 20

    /// Deletes the files numbered below `number`, never the one being written to.
    ///
    /// - Returns: The bytes the deleted files held.
    @discardableResult
    func removeFiles(below number: Int64) -> Int64 {
        let limit = min(number, currentNumber)
        var freed: Int64 = 0
        for old in Self.fileNumbers(in: folder) where old < limit {
            let file = path(old)
            var info = stat()
            let size = stat(file, &info) == 0 ? Int64(info.st_size) : 0
            if unlink(file) == 0 { freed += size }
        }
        return freed
    }

    /// The bytes all files hold.
    var totalBytes: Int64 {
        Self.fileNumbers(in: folder).reduce(0) { total, number in
            var info = stat()
            return stat(path(number), &info) == 0 ? total + Int64(info.st_size) : total
        }
    }
}
