import Foundation
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
/// - A body that is read only to be dropped (after a 413, 404, 405 or 503) is dropped up to
///   ``discardLimit``; a client that sends more is closed on rather than read without end.
/// - `Expect: 100-continue` gets its interim reply when the request will be read.
/// - A connection that reads nothing and answers nothing for the listener's idle timeout
///   while no route runs for it closes (one timer per connection, not moved on every read).
/// - On shutdown (``ChannelShouldQuiesceEvent``) an idle connection closes at once; a busy
///   one finishes its request, says `Connection: close` and closes.
final class HTTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    /// Replies are written as bytes (``HTTPWire``): NIO's decoder reads requests, but no
    /// encoder sits between this handler and the socket.
    typealias OutboundOut = ByteBuffer

    private struct Collecting {
        var head: HTTPRequestHead
        var binding: HTTPListener.Binding
        var deliver: HTTPListener.DeliveryBox
        var path: Substring
        var query: Substring?
        var segments: [Substring]
        var body: ByteBuffer?
    }

    private enum State {
        /// Between requests.
        case idle
        /// Reading a request's body.
        case collecting(Collecting)
        /// Reading and dropping a body: then writing `reply` (keeping the connection), or,
        /// when nil, closing (the 413 was already written).
        case discarding(reply: HTTPReply?, head: HTTPRequestHead)
        /// The route runs; its reply comes back through ``finish(_:head:context:)``.
        case routing
    }

    private let router: RequestRouter
    /// Runs the connection's routes on its event loop (see ``LoopTaskExecutor``).
    private let executor: LoopTaskExecutor
    private var state = State.idle
    private var isOpen = true
    private var date = HTTPDate()
    /// Parts of pipelined requests that arrived while a request was in flight.
    private var pending = CircularBuffer<HTTPServerRequestPart>()
    /// A `read` held back while `pending` is not empty.
    private var readHeld = false
    /// Shutdown asked this connection to close after its current request.
    private var quiescing = false
    /// A 413 written before its request's body was read: the connection closes once the
    /// body is read and this write is done, so the client reads the reply, not a reset.
    private var refusal: EventLoopFuture<Void>?
    /// Bytes of the body being dropped so far.
    private var discarded = 0
    /// The decoder met bytes that are not HTTP: once the requests before them are answered,
    /// the connection answers 400 and closes.
    private var malformed = false
    /// With nothing read or answered for this long and no route running, the connection
    /// closes.
    private let idleTimeout: TimeAmount?
    /// When bytes were last read (at the end of each read from the socket) or a route's reply
    /// written: the client gets the whole timeout after a slow route's reply.
    private var lastActivity = NIODeadline.now()
    /// The connection's one idle timer: it is not moved on every read; when it fires it
    /// closes an idle connection or goes again for the time the last read allows.
    private var idleTimer: Scheduled<Void>?

    /// The most of a body the connection reads only to drop it.
    static let discardLimit = 1 << 20

    init(router: RequestRouter, loop: any EventLoop, idleTimeout: TimeAmount? = nil) {
        self.router = router
        self.executor = LoopTaskExecutor.on(loop)
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = .now()
        scheduleIdleCheck(at: lastActivity, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastActivity = .now()
        context.fireChannelReadComplete()
    }

    /// Checks for idleness `idleTimeout` after `since`.
    private func scheduleIdleCheck(at since: NIODeadline, context: ChannelHandlerContext) {
        guard let idleTimeout else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: since + idleTimeout) {
            let (handler, context) = bound.value
            handler.idleCheck(context: context)
        }
    }

    private func idleCheck(context: ChannelHandlerContext) {
        idleTimer = nil
        guard isOpen, let idleTimeout else { return }
        // A route that takes its time is not idleness; a client that stalls mid-request is.
        if case .routing = state {
            scheduleIdleCheck(at: .now(), context: context)
        } else if lastActivity + idleTimeout <= .now() {
            context.close(promise: nil)
        } else {
            scheduleIdleCheck(at: lastActivity, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Closing: nothing more is read into a request.
        guard isOpen else { return }
        let part = unwrapInboundIn(data)
        if case .routing = state {
            pending.append(part)
        } else if !pending.isEmpty {
            pending.append(part)
        } else {
            handle(part, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if pending.isEmpty {
            context.read()
        } else {
            readHeld = true
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            receive(head, context: context)
        case .body(var part):
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
            guard case .collecting(var request) = state else { return }
            state = .routing  // Not yet: only so that `request` is the buffer's sole owner.
            if request.body == nil {
                request.body = part
            } else {
                request.body!.writeBuffer(&part)
            }
            if request.body!.readableBytes > request.binding.maxBodySize {
                refuse(RequestRouter.tooLarge(request.binding, path: request.path), head: request.head, context: context)
            } else {
                state = .collecting(request)
            }
        case .end:
            switch state {
            case .collecting(let request):
                state = .routing
                route(request, context: context)
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

    /// Closes the connection once the 413 written before the body was read has gone out.
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
        if malformed, isOpen {
            answerMalformed(context: context)
            return
        }
        if readHeld, pending.isEmpty {
            readHeld = false
            context.read()
        }
    }

    /// Answers 400 for the bytes that are not HTTP and closes: nothing after them can be read.
    private func answerMalformed(context: ChannelHandlerContext) {
        isOpen = false
        switch state {
        case .discarding(.none, _):
            // A 413 was written for the request these bytes broke off.
            closeAfterRefusal(context: context)
        default:
            state = .idle
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            write(HTTPReply(status: 400, headers: [], body: ByteBuffer()), head: head, close: true, context: context)
        }
    }

    private func receive(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        discarded = 0
        switch router.decide(head) {
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
            state = .collecting(Collecting(
                head: head, binding: binding, deliver: deliver, path: path, query: query, segments: segments, body: nil
            ))
        }
    }

    /// Runs the route in a task; the reply is written from the connection's event loop.
    private func route(_ collected: Collecting, context: ChannelHandlerContext) {
        let request = CollectedRequest(
            head: collected.head, path: collected.path, query: collected.query, segments: collected.segments,
            binding: collected.binding, deliver: collected.deliver,
            body: collected.body ?? ByteBuffer()
        )
        let router = self.router
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
        state = .idle
        lastActivity = .now()
        // The client went away meanwhile: the exchange still ran to its end.
        guard isOpen else { return }
        let close = !head.isKeepAlive || quiescing
        write(reply, head: head, close: close, context: context)
        if !close { resume(context: context) }
    }

    /// Answers at once a request whose body is too large, saying `Connection: close`, and
    /// reads and drops the rest of its body (see `refusal`).
    private func refuse(_ reply: HTTPReply, head: HTTPRequestHead, context: ChannelHandlerContext) {
        refusal = write(reply, head: head, close: true, closeWhenWritten: false, context: context)
        state = .discarding(reply: nil, head: head)
    }

    /// Writes a whole reply in one flush: the head (with a small body) as one buffer. With
    /// `close` it says `Connection: close` and, unless `closeWhenWritten` is false, closes the
    /// connection once written; the write's future then comes back (nil for a reply that
    /// keeps the connection). Fields that are not valid HTTP (``HTTPWire``) are not written.
    @discardableResult
    private func write(
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
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is HTTPParserError:
            // Requests read before the bad bytes are answered first, in order (see `resume`).
            malformed = true
            guard isOpen else { return }
            if case .routing = state { return }
            if !pending.isEmpty { return }
            answerMalformed(context: context)
        case is ByteToMessageDecoderError where malformed:
            // Bytes that arrive after the bad ones: dropped, the connection is closing.
            break
        default:
            isOpen = false
            context.close(promise: nil)
        }
    }
}

/// The `Date` header's value (RFC 9110 IMF-fixdate), formatted at most once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> String {
        let now = time(nil)
        if now != second {
            second = now
            text = HTTPDate.format(now)
        }
        return text
    }

    static func format(_ seconds: Int) -> String {
        var clock = seconds
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
