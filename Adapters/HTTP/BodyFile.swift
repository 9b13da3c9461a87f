// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// A request body that outgrew `http.body-file-threshold` while it was read, in a temporary
/// file with no name (unlinked once made: nothing is left behind, whatever happens to the
/// process).
///
/// Used from its connection's event loop only; the file work runs on a thread pool of its
/// own, one operation after another (each starts when the one before has finished), so the
/// loop never waits on the disk and the descriptor is closed only once nothing uses it.
final class BodyFile {
    /// The listener's own threads for body files: NIO's shared pool also runs SQLite commits
    /// and other blocking work, and bodies waiting behind those would fill the body budget.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    private let descriptor: Int32
    private let loop: any EventLoop
    /// The last operation queued.
    private var tail: EventLoopFuture<Void>
    /// Bytes written or queued.
    private(set) var size = 0
    private var closed = false

    private init(descriptor: Int32, loop: any EventLoop) {
        self.descriptor = descriptor
        self.loop = loop
        self.tail = loop.makeSucceededVoidFuture()
    }

    /// Makes an unnamed file in `directory`.
    static func make(in directory: String, on loop: any EventLoop) -> EventLoopFuture<BodyFile> {
        BodyFile.pool.runIfActive(eventLoop: loop) { () throws -> Int32 in
            var template = Array(((directory.hasSuffix("/") ? directory : directory + "/") + "switchboard-body-XXXXXX").utf8CString)
            // The template is never empty: it ends in XXXXXX and a NUL.
            let descriptor = template.withUnsafeMutableBufferPointer { $0.baseAddress.map { mkstemp($0) } ?? -1 }
            guard descriptor >= 0 else {
                throw BodyFileError("cannot make a temporary file for a request body in \(directory): \(String(cString: strerror(errno)))")
            }
            template.withUnsafeBufferPointer { if let path = $0.baseAddress { _ = unlink(path) } }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            return descriptor
        }.map { descriptor in
            BodyFile(descriptor: descriptor, loop: loop)
        }
    }

    /// Appends `buffer`; the future completes once it is written.
    func append(_ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let offset = size
        size += buffer.readableBytes
        let descriptor = self.descriptor
        tail = tail.flatMap { [loop] in
            BodyFile.pool.runIfActive(eventLoop: loop) {
                try buffer.withUnsafeReadableBytes { bytes in
                    guard let start = bytes.baseAddress else { return }
                    var written = 0
                    while written < bytes.count {
                        let count = pwrite(descriptor, start + written, bytes.count - written, off_t(offset + written))
                        if count < 0, errno == EINTR { continue }
                        guard count > 0 else {
                            throw BodyFileError("cannot write a request body to its temporary file: \(String(cString: strerror(errno)))")
                        }
                        written += count
                    }
                }
            }
        }
        return tail
    }

    /// Reads the whole file, once what was appended is written.
    func readAll(allocator: ByteBufferAllocator) -> EventLoopFuture<ByteBuffer> {
        let size = self.size
        let descriptor = self.descriptor
        let read = tail.flatMap { [loop] in
            BodyFile.pool.runIfActive(eventLoop: loop) { () throws -> ByteBuffer in
                var buffer = allocator.buffer(capacity: size)
                try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
                    guard let start = target.baseAddress else {
                        guard size == 0 else { throw BodyFileError("no memory to read a request body back into") }
                        return 0
                    }
                    var done = 0
                    while done < size {
                        let count = pread(descriptor, start + done, size - done, off_t(done))
                        if count < 0, errno == EINTR { continue }
                        guard count > 0 else {
                            throw BodyFileError("cannot read a request body back from its temporary file: \(count == 0 ? "it is shorter than written" : String(cString: strerror(errno)))")
                        }
                        done += count
                    }
                    return size
                }
                return buffer
            }
        }
        tail = read.map { _ in }
        return read
    }

    /// Closes the file once every queued operation has finished.
    func close() {
        guard !closed else { return }
        closed = true
        let descriptor = self.descriptor
        tail.whenComplete { _ in
            BodyFile.pool.submit { _ in _ = Glibc.close(descriptor) }
        }
    }
}

struct BodyFileError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
