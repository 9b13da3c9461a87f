// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The connections to one host and port: idle ones ready for a request, a count of open
/// ones (at most `maxConnectionsPerHost`), and callers waiting for one when all are busy.
final class HostPool: Sendable {
    private struct State: ~Copyable {
        var idle: [HTTP1Connection] = []
        var open = 0
        /// Callers waiting for a connection, each with a number its timer finds it by.
        var waiters: [(number: Int, continuation: CheckedContinuation<HTTP1Connection?, any Error>)] = []
        var waitersEver = 0
        var sweepScheduled = false

        /// The longest-waiting caller, taken off the list.
        mutating func nextWaiter() -> CheckedContinuation<HTTP1Connection?, any Error>? {
            waiters.isEmpty ? nil : waiters.removeFirst().continuation
        }
    }

    let key: HTTP1Client.HostKey
    let client: HTTP1Client
    /// For `https://`: each connection starts with a TLS handshake in this context.
    let tls: NIOSSLContext?
    private let state = Mutex(State())

    init(key: HTTP1Client.HostKey, client: HTTP1Client, tls: NIOSSLContext?) {
        self.key = key
        self.client = client
        self.tls = tls
    }

    /// An idle connection (preferring one on the caller's event loop), a new one if the
    /// limit allows, or the next one released; ``HTTP1Client/Failure/timeout`` when none is
    /// free by `deadline`.
    func acquire(deadline: NIODeadline) async throws -> (HTTP1Connection, reused: Bool) {
        if client.isShutDown { throw HTTP1Client.Failure.shutDown }
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        enum Next { case reuse(HTTP1Connection), connect, wait }
        let next = state.withLock { state -> Next in
            if !state.idle.isEmpty {
                var index = state.idle.count - 1
                if let loop, let local = state.idle.lastIndex(where: { $0.channel.eventLoop === loop }) {
                    index = local
                }
                return .reuse(state.idle.remove(at: index))
            }
            if state.open < client.settings.maxConnectionsPerHost {
                state.open += 1
                return .connect
            }
            return .wait
        }
        switch next {
        case .reuse(let connection):
            return (connection, true)
        case .connect:
            return (try await connect(on: loop ?? client.group.next()), false)
        case .wait:
            let timer = Mutex<Scheduled<Void>?>(nil)
            let handed = try await withCheckedThrowingContinuation { continuation in
                let number = state.withLock { state -> Int? in
                    if !state.idle.isEmpty || state.open < client.settings.maxConnectionsPerHost { return nil }
                    state.waitersEver += 1
                    state.waiters.append((state.waitersEver, continuation))
                    return state.waitersEver
                }
                guard let number else {
                    continuation.resume(returning: nil)
                    return
                }
                let scheduled = (loop ?? client.group.next()).scheduleTask(deadline: deadline) { [self] in
                    let expired = state.withLock { state -> CheckedContinuation<HTTP1Connection?, any Error>? in
                        guard let index = state.waiters.firstIndex(where: { $0.number == number }) else { return nil }
                        return state.waiters.remove(at: index).continuation
                    }
                    expired?.resume(throwing: HTTP1Client.Failure.timeout)
                }
                timer.withLock { $0 = scheduled }
            }
            timer.withLock { $0?.cancel() }
            if let handed { return (handed, true) }
            return try await acquire(deadline: deadline)
        }
    }

    private func connect(on loop: any EventLoop) async throws -> HTTP1Connection {
        do {
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(client.settings.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [key, tls] channel in
                    channel.eventLoop.makeCompletedFuture {
                        // TLS next to the socket (SNI only for a name: an address is checked
                        // against the certificate's IP entries).
                        if let tls {
                            let name = key.host.isIPAddress ? nil : key.host
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                        }
                        // NIO's decoder reads replies; requests go out as bytes (HTTPWire).
                        try channel.pipeline.syncOperations.addHandlers(
                            HTTPRequestBytesHandler(), ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes))
                        )
                    }
                }
                .connect(host: key.host, port: key.port)
                .get()
            do {
                return try await HTTP1Connection.attach(to: channel, pool: self).get()
            } catch {
                // Not in the pool yet (its close is not counted): close it here.
                channel.close(promise: nil)
                throw error
            }
        } catch {
            // The slot is free again: let a waiter try a connection of its own.
            let waiter = state.withLock { state -> CheckedContinuation<HTTP1Connection?, any Error>? in
                state.open -= 1
                return state.nextWaiter()
            }
            waiter?.resume(returning: nil)
            throw error
        }
    }

    /// Called on the connection's event loop when a reply is complete and the connection
    /// may carry another request: a waiter gets it, else it waits in the idle list.
    func released(_ connection: HTTP1Connection) {
        if client.isShutDown {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now()
        let (waiter, sweep) = state.withLock { state -> (CheckedContinuation<HTTP1Connection?, any Error>?, Bool) in
            if let waiter = state.nextWaiter() { return (waiter, false) }
            state.idle.append(connection)
            defer { state.sweepScheduled = true }
            return (nil, !state.sweepScheduled)
        }
        waiter?.resume(returning: connection)
        if sweep { scheduleSweep(on: connection.channel.eventLoop) }
    }

    /// Called when a connection's channel closes, busy or idle.
    func closed(_ connection: HTTP1Connection) {
        let waiter = state.withLock { state -> CheckedContinuation<HTTP1Connection?, any Error>? in
            state.idle.removeAll { $0 === connection }
            state.open -= 1
            return state.nextWaiter()
        }
        waiter?.resume(returning: nil)
    }

    /// Closes connections idle longer than the idle timeout, checking again while any are idle.
    private func scheduleSweep(on loop: any EventLoop) {
        let timeout = client.settings.idleTimeout
        loop.scheduleTask(in: timeout) { [self] in
            let cutoff = NIODeadline.now() - timeout
            let (stale, again) = state.withLock { state -> ([HTTP1Connection], Bool) in
                var stale: [HTTP1Connection] = []
                state.idle.removeAll { connection in
                    guard connection.idleSince <= cutoff else { return false }
                    stale.append(connection)
                    return true
                }
                state.sweepScheduled = !state.idle.isEmpty
                return (stale, state.sweepScheduled)
            }
            for connection in stale { connection.channel.close(promise: nil) }
            if again { scheduleSweep(on: loop) }
        }
    }

    func closeAll() async {
        let (idle, waiters) = state.withLock { state in
            defer { state.idle = []; state.waiters = [] }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: HTTP1Client.Failure.shutDown) }
        for connection in idle { try? await connection.channel.close() }
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 address rather than a host name.
    fileprivate var isIPAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, self, &v4) == 1 || inet_pton(AF_INET6, self, &v6) == 1
    }
}
