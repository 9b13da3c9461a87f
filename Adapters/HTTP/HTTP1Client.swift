// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP/1.1 client `to: http://…` producers use: keep-alive connections pooled per
/// host and port, each request written in one flush (head and body go out in one `writev`),
/// and a connection taken, where one is idle, from the event loop the caller runs on, so
/// the request and its reply stay on one thread.
///
/// `http://` and `https://` endpoints share it: the same pools, stale-connection handling,
/// error kinds and header rules; an `https://` pool puts SwiftNIO SSL at the front of each
/// connection's pipeline. The reasons for a client of our own are in the adapter's README:
/// per proxied request it costs the node a fraction of AsyncHTTPClient's CPU.
final class HTTP1Client: Sendable {
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
    }

    /// Why a request got no reply.
    enum Failure: Error, Equatable {
        /// No reply within the request's timeout.
        case timeout
        /// The server closed the connection before the reply was complete.
        case closed(beforeAnyReply: Bool)
        /// The reply body passed the request's size limit.
        case tooLarge
        /// The client was shut down.
        case shutDown
        /// A request field that cannot be written: its name is not a token, or its value
        /// holds CR, LF or NUL (it would end the field early and inject others).
        case invalidField(String)
        /// A request method that is not a token (it would rewrite the request line).
        case invalidMethod(String)
    }

    struct Settings: Sendable {
        var connectTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var maxConnectionsPerHost: Int
    }

    let settings: Settings
    let group: MultiThreadedEventLoopGroup
    private let pools = Mutex<[HostKey: HostPool]>([:])
    /// TLS contexts by the CA file they trust ("" for the system's), each made once.
    private let tlsContexts = Mutex<[String: NIOSSLContext]>([:])
    private let closed = Atomic<Bool>(false)

    init(settings: Settings, group: MultiThreadedEventLoopGroup = .singleton) {
        self.settings = settings
        self.group = group
    }

    struct HostKey: Hashable, Sendable {
        let host: String
        let port: Int
        /// `https://`: connections speak TLS, verifying the server against the system's
        /// certificate authorities or those of `caFile`.
        var tls = false
        var caFile: String?
    }

    /// Sends `request` over a connection of `pool` (a producer finds its pool once, at route
    /// load) and returns the whole reply.
    ///
    /// A request on a reused connection that the server closed before answering (a
    /// keep-alive race: the server dropped an idle connection as the request left) is sent
    /// once more on a new connection; a request on a new connection is never resent.
    func execute(on pool: HostPool, _ request: HTTPRequestBytes, timeout: TimeAmount, maxResponseSize: Int) async throws -> Response {
        // Waiting for a free connection counts against the request's time.
        let deadline = NIODeadline.now() + timeout
        var resent = false
        while true {
            let (connection, reused) = try await pool.acquire(deadline: deadline)
            do {
                return try await connection.send(request, timeout: timeout, maxResponseSize: maxResponseSize)
            } catch Failure.closed(beforeAnyReply: true) where reused && !resent {
                resent = true
            }
        }
    }

    /// The pool for `key`, made at route load.
    ///
    /// - Throws: For a TLS key, when the trusted certificates cannot be loaded.
    func pool(_ key: HostKey) throws -> HostPool {
        let context = key.tls ? try tlsContext(caFile: key.caFile) : nil
        return pools.withLock { pools in
            if let pool = pools[key] { return pool }
            let pool = HostPool(key: key, client: self, tls: context)
            pools[key] = pool
            return pool
        }
    }

    /// The TLS context trusting `caFile`'s certificates, or the system's; HTTP/1.1 offered
    /// by ALPN, certificates and host names always verified.
    private func tlsContext(caFile: String?) throws -> NIOSSLContext {
        try tlsContexts.withLock { contexts in
            if let context = contexts[caFile ?? ""] { return context }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = ["http/1.1"]
            if let caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            let context = try NIOSSLContext(configuration: configuration)
            contexts[caFile ?? ""] = context
            return context
        }
    }

    var isShutDown: Bool { closed.load(ordering: .relaxed) }

    /// Closes every pooled connection; requests after this fail with ``Failure/shutDown``.
    func shutdown() async {
        closed.store(true, ordering: .relaxed)
        let all = pools.withLock { pools in
            defer { pools = [:] }
            return Array(pools.values)
        }
        for pool in all {
            await pool.closeAll()
        }
    }
}

/// One keep-alive connection: its channel and the handler that pairs a request with its reply.
final class HTTP1Connection: Sendable {
    let channel: any Channel
    /// Called directly from the channel's event loop (where the route usually runs): a
    /// request goes to it with no trip through the pipeline and no promise.
    private let handler: NIOLoopBound<HTTP1ClientHandler>
    private let idleSinceNanos = Atomic<Int64>(0)

    private init(channel: any Channel, handler: HTTP1ClientHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    var idleSince: NIODeadline {
        get { .uptimeNanoseconds(UInt64(idleSinceNanos.load(ordering: .relaxed))) }
        set { idleSinceNanos.store(Int64(newValue.uptimeNanoseconds), ordering: .relaxed) }
    }

    static func attach(to channel: any Channel, pool: HostPool) -> EventLoopFuture<HTTP1Connection> {
        channel.eventLoop.submit {
            let handler = HTTP1ClientHandler(pool: pool)
            let connection = HTTP1Connection(channel: channel, handler: handler)
            handler.connection = connection
            try channel.pipeline.syncOperations.addHandler(handler)
            channel.closeFuture.whenComplete { _ in pool.closed(connection) }
            return connection
        }
    }

    /// Sends `bytes` and returns the whole reply.
    ///
    /// - Throws: ``HTTP1Client/Failure``; `closed(beforeAnyReply: true)` when the connection
    ///   closed before the request could be written (the server dropped an idle connection).
    func send(_ bytes: HTTPRequestBytes, timeout: TimeAmount, maxResponseSize: Int) async throws -> HTTP1Client.Response {
        try await withUnsafeThrowingContinuation { continuation in
            let request = HTTP1ClientHandler.Request(bytes: bytes, timeout: timeout, maxResponseSize: maxResponseSize, continuation: continuation)
            if channel.eventLoop.inEventLoop {
                handler.value.start(request)
            } else {
                let handler = self.handler
                channel.eventLoop.execute { handler.value.start(request) }
            }
        }
    }
}

/// Writes each request as bytes in one flush (``HTTPWire``) and collects the reply; one
/// request at a time per connection.
///
/// NIO's reply decoder sits between this handler and the socket, and must see the head of
/// every request (a reply to HEAD has no body whatever its length says): the handler writes
/// the head through it, then the request's bytes as a body part, and
/// ``HTTPRequestBytesHandler`` at the socket's end drops the head and sends the bytes.
///
/// The caller waits on an unsafe continuation, resumed exactly once: every path that
/// resumes it first takes the request out of `current`.
final class HTTP1ClientHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Request: Sendable {
        var bytes: HTTPRequestBytes
        var timeout: TimeAmount
        var maxResponseSize: Int
        var continuation: UnsafeContinuation<HTTP1Client.Response, any Error>
    }

    private struct InFlight {
        var continuation: UnsafeContinuation<HTTP1Client.Response, any Error>
        var maxResponseSize: Int
        var deadline: NIODeadline
        var head: HTTPResponseHead?
        var body: ByteBuffer?
    }

    /// Set once when the connection is made; cleared when the handler leaves the pipeline
    /// (the connection holds the handler too).
    var connection: HTTP1Connection?
    private let pool: HostPool
    /// While the handler is in an open channel's pipeline.
    private var context: ChannelHandlerContext?
    private var current: InFlight?
    /// The connection's one timer and when it fires. It is not moved for every request
    /// (scheduling and cancelling a task per request cost a heap insert and a linear
    /// removal on the event loop): when it fires it fails the request in flight if that
    /// one's deadline has passed, and otherwise goes again for the request's deadline.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?

    init(pool: HostPool) {
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let inFlight = current {
            current = nil
            inFlight.continuation.resume(throwing: HTTP1Client.Failure.closed(beforeAnyReply: inFlight.head == nil))
        }
        self.context = nil
        connection = nil
        timer?.task.cancel()
        timer = nil
    }

    /// Writes `request` and flushes; called on the event loop.
    func start(_ request: Request) {
        guard current == nil, let context, context.channel.isActive else {
            request.continuation.resume(throwing: HTTP1Client.Failure.closed(beforeAnyReply: true))
            return
        }
        let deadline = NIODeadline.now() + request.timeout
        current = InFlight(continuation: request.continuation, maxResponseSize: request.maxResponseSize, deadline: deadline)
        armTimer(for: deadline, context: context)
        // For the decoder only (HTTPRequestBytesHandler drops it): it needs the method.
        // A write that fails closes the channel, which fails the request (channelInactive).
        context.write(wrapOutboundOut(.head(Self.decoderHead(request.bytes.method))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(request.bytes.head))), promise: nil)
        if let body = request.bytes.separateBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.flush()
    }

    /// What the reply decoder is told of a request: only whether it was HEAD or CONNECT
    /// (whose replies have no body) matters to it, so three heads made once do.
    private static func decoderHead(_ method: HTTPMethod) -> HTTPRequestHead {
        switch method {
        case .HEAD: headHead
        case .CONNECT: connectHead
        default: otherHead
        }
    }

    private static let headHead = HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "")
    private static let connectHead = HTTPRequestHead(version: .http1_1, method: .CONNECT, uri: "")
    private static let otherHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard current != nil else { return }
        // The request in flight is changed where it lies, not copied out and back.
        switch unwrapInboundIn(data) {
        case .head(let head):
            current?.head = head
        case .body(var part):
            let size = (current?.body?.readableBytes ?? 0) + part.readableBytes
            guard size <= current?.maxResponseSize ?? 0 else {
                fail(HTTP1Client.Failure.tooLarge, context: context)
                return
            }
            if current?.body == nil {
                current?.body = part
            } else {
                current?.body?.writeBuffer(&part)
            }
        case .end:
            guard let inFlight = current.take() else { return }
            guard let head = inFlight.head else {
                inFlight.continuation.resume(throwing: HTTP1Client.Failure.closed(beforeAnyReply: true))
                context.close(promise: nil)
                return
            }
            // Back in the pool before the caller hears of the reply, so its next request
            // finds the connection idle.
            if head.isKeepAlive, let connection {
                pool.released(connection)
            } else {
                context.close(promise: nil)
            }
            inFlight.continuation.resume(returning: HTTP1Client.Response(head: head, body: inFlight.body ?? ByteBuffer()))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let inFlight = current {
            fail(HTTP1Client.Failure.closed(beforeAnyReply: inFlight.head == nil), context: context)
        }
        // Not left to hold the handler until it fires.
        timer?.task.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The parser reports a connection that ended inside a reply as an error of its own,
        // and TLS one that ended without its close_notify.
        if let parser = error as? HTTPParserError, parser == .invalidEOFState, let inFlight = current {
            fail(HTTP1Client.Failure.closed(beforeAnyReply: inFlight.head == nil), context: context)
            return
        }
        if let tls = error as? NIOSSLError, case .uncleanShutdown = tls, let inFlight = current {
            fail(HTTP1Client.Failure.closed(beforeAnyReply: inFlight.head == nil), context: context)
            return
        }
        fail(error, context: context)
    }

    /// Makes sure the timer fires by `deadline`: a timer set for later (a request with a
    /// longer timeout went before) is moved earlier; one set for earlier is left to go again.
    private func armTimer(for deadline: NIODeadline, context: ChannelHandlerContext) {
        if let timer {
            if timer.at <= deadline { return }
            timer.task.cancel()
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
        timer = (task, deadline)
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let inFlight = current else { return }
        if inFlight.deadline <= .now() {
            fail(HTTP1Client.Failure.timeout, context: context)
        } else {
            armTimer(for: inFlight.deadline, context: context)
        }
    }

    /// Fails the request in flight, if any, and closes the connection (its state is unknown).
    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        if let inFlight = current.take() {
            inFlight.continuation.resume(throwing: error)
        }
        context.close(promise: nil)
    }
}

/// The client pipeline's handler next to the socket: sends the bytes of requests (body parts
/// holding whole encoded requests, see ``HTTP1ClientHandler``) and drops the heads that were
/// written only for the reply decoder to see.
final class HTTPRequestBytesHandler: ChannelOutboundHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .body(let bytes):
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .head, .end:
            promise?.succeed()
        }
    }
}
