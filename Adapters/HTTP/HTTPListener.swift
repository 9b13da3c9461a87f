import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import SwitchboardCore
import Synchronization

/// The node's HTTP listener: one HTTP/1.1 server on SwiftNIO shared by every `http:` consumer.
///
/// Consumers register their method and path when routes load; requests are dispatched by
/// exact path first (a dictionary lookup), then by path templates with `{captures}`. Each
/// connection's pipeline is NIO's HTTP/1.1 request decoder and a ``HTTPConnectionHandler``
/// that collects a whole request, runs the route in a task and writes the reply as bytes in
/// one flush (``HTTPWire``), keeping pipelined requests in order; it also answers malformed
/// requests with 400 and closes idle connections.
final class HTTPListener: Sendable {
    /// One bound method and path.
    final class Binding: Sendable {
        /// Nil binds every method.
        let method: String?
        let path: PathTemplate
        let maxBodySize: Int
        /// `mode=async`: answer 202 Accepted once the message is stored, route it after.
        let async: Bool
        /// The installed route, boxed: a closure kept directly in a generic `Mutex` and read
        /// through `withLock`'s `inout` is re-wrapped in reabstraction thunks on every read,
        /// so each request would run through a longer chain of them than the last.
        private let delivery = Mutex<(box: DeliveryBox?, installedOnce: Bool)>((nil, false))

        init(method: String?, path: PathTemplate, maxBodySize: Int, async: Bool = false) {
            self.method = method
            self.path = path
            self.maxBodySize = maxBodySize
            self.async = async
        }

        /// What the consumer's `run` installed; nil before it runs and after it stops.
        var deliver: DeliveryBox? {
            delivery.withLock { $0.box }
        }

        /// Whether the route has not started yet (as opposed to having stopped).
        var starting: Bool {
            delivery.withLock { !$0.installedOnce }
        }

        func install(_ deliver: Delivery?) {
            let box = deliver.map(DeliveryBox.init)
            delivery.withLock { state in
                state.box = box
                if box != nil { state.installedOnce = true }
            }
        }

        /// For a request that arrives while the node starts (the listener accepts before
        /// every route's consumer is installed): waits up to `limit` for the route.
        func deliverOnceStarted(limit: Duration = .seconds(5)) -> DeliveryBox {
            DeliveryBox { [self] exchange in
                let deadline = ContinuousClock.now + limit
                while ContinuousClock.now < deadline {
                    if let deliver { return try await deliver.deliver(exchange) }
                    guard starting else { break }
                    try await Task.sleep(for: .milliseconds(5))
                }
                throw ProcessingError("the route for \(path.text) is not running", status: 503)
            }
        }
    }

    /// The installed route, passed along in its box: taking the closure out to carry it
    /// made a reabstraction thunk (an allocation) for every request.
    final class DeliveryBox: Sendable {
        let deliver: Delivery

        init(_ deliver: @escaping Delivery) {
            self.deliver = deliver
        }
    }

    /// The dispatch table, frozen when the listener starts.
    struct Table: Sendable {
        var exact: [Substring: [Binding]] = [:]
        var templated: [Binding] = []

        mutating func add(_ binding: Binding) {
            if binding.path.isStatic {
                exact[PathTemplate.normalize(Substring(binding.path.text)), default: []].append(binding)
            } else {
                templated.append(binding)
            }
        }

        /// The bindings for a path: the exact ones, or those of the first template that
        /// matches (one per method), with the path's segments for capturing.
        func lookup(_ path: Substring) -> (bindings: [Binding], segments: [Substring]) {
            if let bindings = exact[PathTemplate.normalize(path)] { return (bindings, []) }
            let segments = PathTemplate.split(path)
            guard let first = templated.first(where: { $0.path.match(segments) != nil }) else { return ([], segments) }
            let shape = first.path.shape
            return (templated.filter { $0.path.shape == shape }, segments)
        }
    }

    /// The open connections, so that shutdown can ask each to finish and close.
    private struct Connections {
        var open: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
        /// Resumed once `stopping` is set and every connection has closed.
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    let configuration: HTTPAdapter.Configuration
    let logger: Logger
    private let table = Mutex(Table())
    private let connections = Mutex(Connections())
    /// The port the listener bound (useful with port 0) once it accepts connections, or nil
    /// if it stopped without binding.
    let boundPort = AsyncValue<Int?>()

    init(configuration: HTTPAdapter.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func register(_ binding: Binding) {
        table.withLock { $0.add(binding) }
    }

    /// Serves requests until graceful shutdown or cancellation.
    ///
    /// Graceful shutdown stops accepting, lets every connection finish the request it is
    /// on (its reply then says `Connection: close`), closes idle ones, and returns once all
    /// have closed. Cancellation closes every connection at once.
    func run() async throws {
        let router = RequestRouter(table: table.withLock { $0 }, logger: logger)
        let idleTimeout = configuration.idleTimeout.map { TimeAmount($0) }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                guard self.track(channel) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    // NIO's decoder reads requests; the connection handler writes replies as
                    // bytes, checks their fields and answers malformed requests (HTTPWire).
                    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try pipeline.addHandler(HTTPConnectionHandler(router: router, loop: channel.eventLoop, idleTimeout: idleTimeout))
                }
            }
        let server: any Channel
        do {
            server = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            boundPort.set(nil)
            throw ListenError(listener: "the HTTP listener (http.listen)", address: "\(configuration.host):\(configuration.port)", error: error)
        }
        let port = server.localAddress?.port ?? configuration.port
        boundPort.set(port)
        logger.notice("HTTP listener ready", metadata: ["address": "\(configuration.host):\(port)"])
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await server.closeFuture.get()
            } onGracefulShutdown: {
                server.close(promise: nil)
            }
            // Stopped accepting (graceful shutdown, or the server channel failed): finish
            // what is in flight, then close.
            server.close(promise: nil)
            await drain()
        } onCancel: {
            server.close(promise: nil)
            let open = self.connections.withLock { $0.open.values }
            for channel in open { channel.close(promise: nil) }
        }
    }

    /// Registers a new connection, or refuses it once shutdown began.
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let accepted = connections.withLock { state in
            guard !state.stopping else { return false }
            state.open[id] = channel
            return true
        }
        guard accepted else { return false }
        channel.closeFuture.whenComplete { [self] _ in
            let waiters = connections.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.open[id] = nil
                guard state.stopping, state.open.isEmpty else { return [] }
                defer { state.drained = [] }
                return state.drained
            }
            for waiter in waiters { waiter.resume() }
        }
        return true
    }

    /// Asks every connection to finish its request and close, and waits until all have.
    private func drain() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = connections.withLock { state -> [any Channel]? in
                state.stopping = true
                guard !state.open.isEmpty else { return nil }
                state.drained.append(continuation)
                return Array(state.open.values)
            }
            guard let open else {
                continuation.resume()
                return
            }
            for channel in open {
                // The connection handler closes an idle connection at once and a busy one
                // after its reply.
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// An HTTP reply before it is written: status, headers and body.
struct HTTPReply: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: ByteBuffer

    /// A JSON error body: `{"error": "...", "status": 404, ...}`.
    static func error(status: Int, _ text: String, extra: [(String, String)] = []) -> HTTPReply {
        var json = "{\"error\":\(jsonQuoted(text)),\"status\":\(status)"
        for (key, value) in extra {
            json += ",\(jsonQuoted(key)):\(jsonQuoted(value))"
        }
        json += "}"
        return HTTPReply.json(status: status, json)
    }

    static func json(status: Int, _ json: String) -> HTTPReply {
        HTTPReply(status: status, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: json))
    }

    /// Adds `X-Message-ID` and `X-Correlation-ID` (consuming: the header list is grown in place, not copied).
    consuming func identified(exchangeID: MessageID, correlationID: String) -> HTTPReply {
        var reply = self
        reply.headers.append(("X-Message-ID", exchangeID.description))
        // Not written if it is not a valid field value (HTTPWire).
        reply.headers.append(("X-Correlation-ID", correlationID))
        return reply
    }
}

/// A request as the connection handler collected it.
struct CollectedRequest: Sendable {
    var head: HTTPRequestHead
    var path: Substring
    var query: Substring?
    var segments: [Substring]
    var binding: HTTPListener.Binding
    var deliver: HTTPListener.DeliveryBox
    var body: ByteBuffer
}

/// Finds the binding for a request and turns requests into exchanges and results into replies.
struct RequestRouter: Sendable {
    let table: HTTPListener.Table
    let logger: Logger

    /// What to do with a request once its head arrived.
    enum Decision {
        /// Collect the body (up to the binding's limit) and route it.
        case route(HTTPListener.Binding, HTTPListener.DeliveryBox, path: Substring, query: Substring?, segments: [Substring])
        /// Answer this without routing (404, 405, 503).
        case reply(HTTPReply)
    }

    func decide(_ head: HTTPRequestHead) -> Decision {
        let target = head.uri
        let path: Substring
        let query: Substring?
        if let question = target.firstIndex(of: "?") {
            path = target[..<question]
            query = target[target.index(after: question)...]
        } else {
            path = Substring(target)
            query = nil
        }
        let (bindings, segments) = table.lookup(path)
        let method = head.method.rawValue
        guard !bindings.isEmpty else {
            return .reply(.error(status: 404, "no route listens on \(method) \(path)"))
        }
        guard let binding = bindings.first(where: { $0.method == method }) ?? bindings.first(where: { $0.method == nil }) else {
            let allowed = bindings.compactMap(\.method).joined(separator: ", ")
            var reply = HTTPReply.error(status: 405, "method \(method) is not allowed on \(path); allowed: \(allowed)")
            reply.headers.append(("Allow", allowed))
            return .reply(reply)
        }
        guard let deliver = binding.deliver ?? (binding.starting ? binding.deliverOnceStarted() : nil) else {
            return .reply(.error(status: 503, "the route for \(method) \(path) is not running"))
        }
        return .route(binding, deliver, path: path, query: query, segments: segments)
    }

    /// The 413 reply for a body over the binding's limit.
    static func tooLarge(_ binding: HTTPListener.Binding, path: Substring) -> HTTPReply {
        .error(status: 413, "request body is larger than the limit of \(binding.maxBodySize) bytes for \(path)")
    }

    /// Runs the route for a whole request and returns the reply.
    func respond(to request: CollectedRequest) async -> HTTPReply {
        let head = request.head
        var headers = Headers()
        headers.reserveCapacity(head.headers.count + 3)
        for (name, value) in head.headers where HTTPHeaderRules.keepsIncoming(name) {
            headers.add(name, value)
        }
        headers["http.method"] = head.method.rawValue
        headers["http.path"] = String(request.path)
        if let query = request.query, !query.isEmpty {
            headers["http.query"] = String(query)
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecoded(parts[0].replacingPlus()), !name.isEmpty else { continue }
                let value = parts.count > 1 ? percentDecoded(parts[1].replacingPlus()) ?? "" : ""
                headers.add("http.query.\(name)", value)
            }
        }
        let binding = request.binding
        if !binding.path.isStatic, let captures = binding.path.match(request.segments) {
            for (name, value) in captures {
                headers[name] = value
            }
        }
        // W3C trace context: continue the caller's trace, or start one.
        let trace = headers[TraceContext.header].flatMap(TraceContext.init(traceparent:)) ?? .random()
        let message = Message(headers: headers, body: request.body, trace: trace)
        let exchange = Exchange(message: message, pattern: binding.async ? .inOnly : .inOut)
        do {
            let result = try await request.deliver.deliver(exchange)
            if binding.async {
                return HTTPReply.json(status: 202, "{\"id\":\(jsonQuoted(exchange.id.description)),\"status\":\"accepted\"}")
                    .identified(exchangeID: exchange.id, correlationID: message.correlationID)
            }
            return RequestRouter.reply(for: result.message, exchangeID: exchange.id, request: headers)
        } catch let failure as StepFailure {
            return HTTPReply.error(
                status: failure.status,
                failure.description,
                extra: [
                    ("route", failure.step.routeID),
                    ("step", failure.step.path),
                    ("kind", failure.step.kind),
                    ("messageId", exchange.id.description),
                ] + (failure.deadLetter.map { [("deadLetter", $0.description)] } ?? [])
            ).identified(exchangeID: exchange.id, correlationID: message.correlationID)
        } catch {
            // A ProcessingError outside any step (the audit store could not keep up) says its status.
            let status = (error as? ProcessingError)?.status ?? 500
            return HTTPReply.error(status: status, "\(error)", extra: [("messageId", exchange.id.description)])
                .identified(exchangeID: exchange.id, correlationID: message.correlationID)
        }
    }

    /// The final message of a route as an HTTP reply: status from `http.status` (200–599,
    /// else 200).
    ///
    /// Headers still holding the value the request brought (request headers, path captures)
    /// are not echoed back, except those describing the body (`Content-Type`); headers the
    /// route set or a backend replied with are sent. Names that are not HTTP tokens and
    /// values holding CR, LF or NUL are not written (the connection handler checks every
    /// field as it writes it).
    static func reply(for message: Message, exchangeID: MessageID, request: Headers) -> HTTPReply {
        // A 1xx status is interim, not an answer: the client would wait for the final reply.
        var status = 200
        if let text = message.headers["http.status"], let code = Int(text), (200...599).contains(code) {
            status = code
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(message.headers.count + 2)
        for header in message.headers where HTTPHeaderRules.forwardsOnResponse(header.name) {
            if request.fields.contains(header), !HTTPHeaderRules.describesBody.contains(header.name) {
                continue
            }
            fields.append((header.name, header.value))
        }
        return HTTPReply(status: status, headers: fields, body: message.body)
            .identified(exchangeID: exchangeID, correlationID: message.correlationID)
    }
}

extension Substring {
    /// Form-encoded query strings write spaces as `+`.
    func replacingPlus() -> String {
        contains("+") ? String(map { $0 == "+" ? " " : $0 }) : String(self)
    }
}
