// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking client socket; each read runs on a thread of its own so that no task
/// thread waits on the network (dispatch's global queues have one thread per core and
/// add more only after a delay, which several tests reading at once would hit).
public final class RawConnection: @unchecked Sendable {
    public let descriptor: Int32

    public init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    public func send(_ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            sent += count
        }
    }

    /// Reads until `done` says the text so far is complete, the peer closes, or 10 s pass.
    /// Returns the text and whether the peer closed (or reset the connection).
    public func read(until done: @escaping @Sendable (String) -> Bool = { _ in false }) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread { [self] in
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = recv(descriptor, &buffer, buffer.count, 0)
                    if count <= 0 {
                        // A peer that closes while this side still sends resets the connection.
                        let closed = count == 0 || errno == ECONNRESET
                        continuation.resume(returning: (String(decoding: bytes, as: UTF8.self), closed))
                        return
                    }
                    bytes += buffer[0..<count]
                    if done(String(decoding: bytes, as: UTF8.self)) {
                        continuation.resume(returning: (String(decoding: bytes, as: UTF8.self), false))
                        return
                    }
                }
            }.start()
        }
    }
}
