// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0
//
// Over 500 lines: one channel handler's per-connection state (head, reply, pipelined
// requests, deadlines), which every part reads and changes on one event loop. Its settings
// and the reading of bodies (memory and file) are extensions in files of their own.

import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardCore

/// One client connection of the HTTP listener.
///
/// Collects a request (head and body, up to the binding's limit), runs its route in a task,
/// and writes the reply (head, body and end in one flush) back on the connection's event
/// loop. One request is in flight per connection: the parts of pipelined requests that
/// arrive meanwhile are kept and handled, in order, once the reply is written; while any
/// are kept the connection stops reading, so a client cannot pile up requests. A client
/// that waits for each reply (the usual case) is read from without pause: no change of
/// the socket's interest set per request, which NIO's own pipelining handler makes.
///
/// - A path no route listens on, a method the path does not take, or a route that is not
///   running is answered (404, 405, 503) once the request's body has been read and dropped,
///   and the connection stays open.
/// - A body over the limit is answered with 413 and `Connection: close` as soon as it is
///   known (from `Content-Length` or while reading); the rest of the body is read and
///   dropped, then the connection closes, so the client sees the reply rather than a reset.
///   So is a body the listener has no memory left for (503, `http.max-buffered-bodies`).
/// - A body that is read only to be dropped is dropped up to ``discardLimit``; a client that
///   sends more is closed on rather than read without end.
/// - A body past `http.body-file-threshold` goes on in a ``BodyFile``; reading stops while
///   its bytes are written, and it is read back once whole.
/// - `Expect: 100-continue` gets its interim reply when the request will be read.
/// - Deadlines (one timer per connection, moved only when a deadline comes sooner): a head
///   must arrive within `http.header-timeout` of its first byte (of the connect, for the
///   first request), a body within `http.body-timeout` of its head (408 and close); a
///   connection with no request under way closes after `http.idle-timeout` counted from its
///   last reply. A route that takes its time is not idleness.
/// - Heads with more fields or bytes than the limits get 431, a missing or repeated `Host`,
///   `Transfer-Encoding` in HTTP/1.0 and bytes that are not HTTP/1.x get 400; each closes.
/// - On shutdown (``ChannelShouldQuiesceEvent``) an idle connection closes at once; a busy
///   one finishes its request, says `Connection: close` and closes.
final class HTTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Replies are written as bytes (``HTTPWire``): NIO's decoder reads requests, but no
    /// encoder sits between this handler and the socket.
    typealias OutboundOut = ByteBuffer

    /// A request whose body is being read.
    struct Collecting {
        var head: HTTPRequestHead
        var binding: HTTPListener.Binding
        var deliver: HTTPListener.DeliveryBox
        var path: Substring
        var query: Substring?
        var segments: [Substring]
        /// The body in memory; once it went to a file, the bytes not yet written there.
        var body: ByteBuffer?
        /// Bytes of `body` taken from the listener's ``BodyBudget``.
        var taken = 0
        /// Bytes of body read so far.
        var received = 0
        /// The body's file, once it outgrew the threshold (nil while the file is being made).
        var file: BodyFile?
        var spilling = false
        /// The body's end was read.
        var ended = false
    }

    enum State {
        /// Between requests.
        case idle
        /// Reading a request's body (``request``).
        case collecting
        /// Reading and dropping a body: then writing `reply` (keeping the connection), or,
        /// when nil, closing (the refusal was already written).
        case discarding(reply: HTTPReply?, head: HTTPRequestHead)
        /// The request is whole: its body comes back from its file, or its route runs; the
        /// reply comes back through ``finish(_:head:context:)``.
        case routing
    }

    let settings: Settings
    private let watch: HeadWatch
    /// Runs the connection's routes on its event loop (see ``LoopTaskExecutor``).
    private let executor: LoopTaskExecutor
    var state = State.idle
    var request: Collecting?
    /// Budget bytes of the request being routed, given back once its reply is written.
    private var routedBytes = 0
    var isOpen = true
    private var date = HTTPDate()
    /// Parts of pipelined requests that arrived while a request was in flight.
    private var pending = CircularBuffer<HTTPServerRequestPart>()
    /// A `read` held back while `pending` is not empty or a body's file is being written.
    private var readHeld = false
    /// A body file is being made or written to.
    var fileBusy = false
    /// Shutdown (or a pipelined head past its deadline) asked this connection to close after
    /// its current request.
    private var quiescing = false
    /// A refusal written before its request's body was read: the connection closes once the
    /// body is read and this write is done, so the client reads the reply, not a reset.
    private var refusal: EventLoopFuture<Void>?
    /// Bytes of the body being dropped so far.
    private var discarded = 0
    /// The reply for bytes that are not HTTP (or a head over the limits): written, and the
    /// connection closed, once the requests before them are answered.
    private var malformed: HTTPReply?
    /// When the connection last had no request under way: the connect, or the last reply.
    private var idleSince = NIODeadline.now()
    /// When the current request's head arrived (its body's deadline counts from there).
    private var headReceivedAt = NIODeadline.now()
    /// The connection's one timer and when it fires.
    private var timer: Scheduled<Void>?
    private var timerDue: NIODeadline?

    /// The most of a body the connection reads only to drop it.
    static let discardLimit = 1 << 20

    init(settings: Settings, watch: HeadWatch, loop: any EventLoop) {
        self.settings = settings
        self.watch = watch
        self.executor = LoopTaskExecutor.on(loop)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        idleSince = .now()
        armTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        abandonRequest()
    }

    // MARK: Deadlines

    /// When the deadline that applies now falls, or nil when none does.
    private func nextDeadline() -> NIODeadline? {
        switch state {
        case .idle:
            let head = watch.headStartedAt.map { $0 + settings.headerTimeout }
            let idle = settings.idleTimeout.map { idleSince + $0 }
            guard let head else { return idle }
            return min(head, idle ?? head)
        case .collecting, .discarding:
            return headReceivedAt + settings.bodyTimeout
        case .routing:
            // A pipelined head that began while the route runs.
            return quiescing ? nil : watch.headStartedAt.map { $0 + settings.headerTimeout }
        }
    }

    /// Makes the timer fire by the deadline that applies now; a timer due sooner is kept (it
    /// looks again when it fires), so most calls schedule nothing.
    private func armTimer(context: ChannelHandlerContext) {
        guard isOpen, let due = nextDeadline() else { return }
        if let timerDue, timerDue <= due { return }
        timer?.cancel()
        timerDue = due
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: due) {
            let (handler, context) = bound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDue = nil
        guard isOpen else { return }
        let now = NIODeadline.now()
        switch state {
        case .idle where pending.isEmpty:
            if let started = watch.headStartedAt, started + settings.headerTimeout <= now {
                guard watch.sawHeadBytes else {
                    // Connected and sent nothing: no request to answer.
                    isOpen = false
                    context.close(promise: nil)
                    return
                }
                timeOut(.headerTimeout, "the request head did not arrive within \(settings.headerTimeoutText) (http.header-timeout)", context: context)
                return
            }
            if let idle = settings.idleTimeout, idleSince + idle <= now {
                isOpen = false
                context.close(promise: nil)
                return
            }
        case .collecting, .discarding:
            if headReceivedAt + settings.bodyTimeout <= now {
                timeOut(.bodyTimeout, "the request body did not arrive within \(settings.bodyTimeoutText) (http.body-timeout)", context: context)
                return
            }
        case .routing:
            if !quiescing, let started = watch.headStartedAt, started + settings.headerTimeout <= now {
                // The next head is overdue: answer the request in flight, then close.
                settings.counters.count(.headerTimeout)
                quiescing = true
            }
        case .idle:
            break
        }
        armTimer(context: context)
    }

    /// Answers 408 (unless a refusal was already written for this request) and closes.
    private func timeOut(_ reason: RejectionReason, _ text: String, context: ChannelHandlerContext) {
        settings.counters.count(reason)
        let head = requestHead ?? HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        let refused: Bool
        if case .discarding(.none, _) = state { refused = true } else { refused = false }
        abandonRequest()
        state = .idle
        isOpen = false
        if refused {
            context.close(promise: nil)
        } else {
            write(.error(status: 408, text), head: head, close: true, context: context)
        }
    }

    /// The head of the request being read or dropped.
    var requestHead: HTTPRequestHead? {
        if case .discarding(_, let head) = state { return head }
        return request?.head
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Closing: nothing more is read into a request.
        guard isOpen else { return }
        let part = unwrapInboundIn(data)
        switch part {
        case .head: watch.headArrived()
        case .end: watch.awaitHead()
        case .body: break
        }
        if case .routing = state {
            pending.append(part)
        } else if !pending.isEmpty {
            pending.append(part)
        } else {
            handle(part, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A head that began in this read and did not end in it: its deadline may come before
        // the timer does.
        if watch.headStartedAt != nil { armTimer(context: context) }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if pending.isEmpty, !fileBusy {
            context.read()
        } else {
            readHeld = true
        }
    }

    /// Reads again if a read was held and nothing holds it any more.
    func resumeReading(context: ChannelHandlerContext) {
        guard readHeld, pending.isEmpty, !fileBusy, isOpen else { return }
        readHeld = false
        context.read()
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            receive(head, context: context)
        case .body(let part):
            if case .discarding(let reply, let head) = state {
                discarded += part.readableBytes
                guard discarded > Self.discardLimit else { return }
                // Too much to read only to drop: answer (if not done yet) and close.
                state = .idle
                isOpen = false
                if let reply {
                    write(reply, head: head, close: true, context: context)
                } else {
                    closeAfterRefusal(context: context)
                }
                return
            }
            guard case .collecting = state else { return }
            collect(part, context: context)
        case .end:
            switch state {
            case .collecting:
                state = .routing
                request?.ended = true
                if request?.spilling == true {
                    writeToFile(context: context)
                } else if let request {
                    self.request = nil
                    route(request, context: context)
                }
            case .discarding(.some(let reply), let head):
                state = .idle
                write(reply, head: head, close: !head.isKeepAlive || quiescing, context: context)
            case .discarding(.none, _):
                // The whole body is read: close once the refusal is written.
                state = .idle
                closeAfterRefusal(context: context)
            case .idle, .routing:
                break
            }
        }
    }

    /// Drops the request being read: gives its memory back and closes its file.
    func abandonRequest() {
        guard let request else { return }
        settings.budget.giveBack(request.taken)
        request.file?.close()
        self.request = nil
    }

    /// Closes the connection once the refusal written before the body was read has gone out.
    private func closeAfterRefusal(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        (refusal ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in bound.value.close(promise: nil) }
        refusal = nil
    }

    /// After a reply: handles the pipelined parts kept meanwhile, until one starts routing.
    private func resume(context: ChannelHandlerContext) {
        while isOpen, let part = pending.popFirst() {
            handle(part, context: context)
            if case .routing = state { return }
        }
        if malformed != nil, isOpen {
            answerMalformed(context: context)
            return
        }
        resumeReading(context: context)
        armTimer(context: context)
    }

    /// Answers the bytes that are not HTTP (400) or a head over the limits (431) and closes:
    /// nothing after them can be read.
    private func answerMalformed(context: ChannelHandlerContext) {
        isOpen = false
        switch state {
        case .discarding(.none, _):
            // A refusal was written for the request these bytes broke off.
            closeAfterRefusal(context: context)
        default:
            let head = requestHead ?? HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            abandonRequest()
            state = .idle
            write(malformed ?? .error(status: 400, "the request is not valid HTTP/1.1"), head: head, close: true, context: context)
        }
    }

    private func receive(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        discarded = 0
        headReceivedAt = .now()
        if let problem = RequestRouter.framingProblem(head) {
            // The body's framing cannot be trusted either: answer and close.
            settings.counters.count(.malformed)
            state = .idle
            isOpen = false
            write(.error(status: 400, problem), head: head, close: true, context: context)
            return
        }
        switch settings.router.decide(head) {
        case .reply(let reply):
            state = .discarding(reply: reply, head: head)
        case .route(let binding, let deliver, let path, let query, let segments):
            if let length = head.headers.first(name: "content-length").flatMap({ Int($0) }), length > binding.maxBodySize {
                refuse(RequestRouter.tooLarge(binding, path: path), head: head, context: context)
                return
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                var interim = context.channel.allocator.buffer(capacity: 32)
                interim.writeHTTPStatusLine(version: head.version, status: .continue)
                interim.writeStaticString("\r\n")
                context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
            }
            request = Collecting(head: head, binding: binding, deliver: deliver, path: path, query: query, segments: segments)
            state = .collecting
        }
        armTimer(context: context)
    }

    // MARK: Routing and replies

    /// Runs the route in a task; the reply is written from the connection's event loop.
    func route(_ collected: Collecting, context: ChannelHandlerContext) {
        routedBytes = collected.taken
        let request = CollectedRequest(
            head: collected.head, path: collected.path, query: collected.query, segments: collected.segments,
            binding: collected.binding, deliver: collected.deliver,
            body: collected.body ?? ByteBuffer()
        )
        let router = settings.router
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task(executorPreference: executor) {
            let reply = await router.respond(to: request)
            // Usually already on the loop (the task prefers it): no hop then.
            let finish: @Sendable () -> Void = {
                let (handler, context) = bound.value
                handler.finish(reply, head: request.head, context: context)
            }
            if loop.inEventLoop { finish() } else { loop.execute(finish) }
        }
    }

    private func finish(_ reply: HTTPReply, head: HTTPRequestHead, context: ChannelHandlerContext) {
        settings.budget.giveBack(routedBytes)
        routedBytes = 0
        state = .idle
        // The client went away meanwhile: the exchange still ran to its end.
        guard isOpen else { return }
        let close = !head.isKeepAlive || quiescing
        write(reply, head: head, close: close, context: context)
        if !close { resume(context: context) }
    }

    /// Answers at once a request that will not be routed (413, 503), saying `Connection: close`,
    /// and reads and drops the rest of its body (see `refusal`).
    func refuse(_ reply: HTTPReply, head: HTTPRequestHead, context: ChannelHandlerContext) {
        abandonRequest()
        refusal = write(reply, head: head, close: true, closeWhenWritten: false, context: context)
        state = .discarding(reply: nil, head: head)
    }

    /// Writes a whole reply in one flush: the head (with a small body) as one buffer. With
    /// `close` it says `Connection: close` and, unless `closeWhenWritten` is false, closes the
    /// connection once written; the write's future then comes back (nil for a reply that
    /// keeps the connection). Fields that are not valid HTTP (``HTTPWire``) are not written.
    @discardableResult
    func write(
        _ reply: HTTPReply, head request: HTTPRequestHead, close: Bool, closeWhenWritten: Bool = true, context: ChannelHandlerContext
    ) -> EventLoopFuture<Void>? {
        // No body, and no length, on the statuses that cannot have one.
        let bodyless = reply.status < 200 || reply.status == 204 || reply.status == 304
        let body = !bodyless && request.method != .HEAD && reply.body.readableBytes > 0 ? reply.body : nil
        let inline = (body?.readableBytes ?? 0) <= HTTPWire.inlineBodyLimit
        var buffer = context.channel.allocator.buffer(capacity: HTTPWire.estimate(reply.headers) + (inline ? body?.readableBytes ?? 0 : 0))
        buffer.writeHTTPStatusLine(version: request.version, status: HTTPResponseStatus(statusCode: reply.status))
        for (name, value) in reply.headers where HTTPWire.isValidField(name: name, value: value) {
            buffer.writeHTTPField(name, value)
        }
        if !bodyless {
            buffer.writeHTTPContentLength(reply.body.readableBytes)
        }
        buffer.writeHTTPField("Date", date.now())
        idleSince = .now()
        if close {
            buffer.writeStaticString("Connection: close\r\n")
        } else if request.version.major == 1, request.version.minor == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        if var body {
            if inline {
                buffer.writeBuffer(&body)
            } else {
                context.write(wrapOutboundOut(buffer), promise: nil)
                buffer = body
            }
        }
        guard close else {
            // Nothing waits on a reply that keeps the connection: no future to make.
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            return nil
        }
        let written = context.writeAndFlush(wrapOutboundOut(buffer))
        if closeWhenWritten {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
        }
        return written
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if case .idle = state, pending.isEmpty { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        // Not left to hold the handler until it fires.
        timer?.cancel()
        timer = nil
        abandonRequest()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is HTTPParserError, is HTTPVersionMissing:
            guard malformed == nil else { return }
            malformed = reply(forMalformed: error)
            // Requests read before the bad bytes are answered first, in order (see `resume`).
            guard isOpen else { return }
            if case .routing = state { return }
            if !pending.isEmpty { return }
            answerMalformed(context: context)
        case is ByteToMessageDecoderError where malformed != nil:
            // Bytes that arrive after the bad ones: dropped, the connection is closing.
            break
        default:
            isOpen = false
            context.close(promise: nil)
        }
    }

    /// 431 for a head over the limits, 400 for anything else that is not HTTP/1.x (counted).
    private func reply(forMalformed error: any Error) -> HTTPReply {
        if let error = error as? HTTPParserError, error == .headerOverflow {
            settings.counters.count(.headerTooLarge)
            return .error(
                status: 431,
                "the request head is larger than this listener takes: at most \(settings.maxHeaderCount) header fields and "
                    + "\(settings.maxHeaderSize) bytes of target, header names and values (http.max-header-count, http.max-header-size)"
            )
        }
        settings.counters.count(.malformed)
        if let error = error as? HTTPVersionMissing {
            return .error(status: 400, error.description)
        }
        return .error(status: 400, "the request is not valid HTTP/1.1 (\(error))")
    }
}
