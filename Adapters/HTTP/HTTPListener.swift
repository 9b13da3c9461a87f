import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// The node's HTTP listener: one Hummingbird server shared by every `http:` consumer.
///
/// Consumers register their method and path when routes load; requests are dispatched by
/// exact path first (a dictionary lookup), then by path templates with `{captures}`.
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
        private let delivery = Mutex<DeliveryBox?>(nil)

        init(method: String?, path: PathTemplate, maxBodySize: Int, async: Bool = false) {
            self.method = method
            self.path = path
            self.maxBodySize = maxBodySize
            self.async = async
        }

        /// What the consumer's `run` installed; nil before it runs and after it stops.
        var deliver: Delivery? {
            delivery.withLock { $0 }?.deliver
        }

        func install(_ deliver: Delivery?) {
            let box = deliver.map(DeliveryBox.init)
            delivery.withLock { $0 = box }
        }
    }

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

    let configuration: HTTPAdapter.Configuration
    let logger: Logger
    private let table = Mutex(Table())
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

    /// Serves requests until graceful shutdown (finishing requests in flight) or cancellation.
    func run() async throws {
        let responder = ListenerResponder(table: table.withLock { $0 }, defaultMaxBodySize: configuration.maxBodySize, logger: logger)
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let application = Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: configuration.idleTimeout.map { TimeAmount($0) })),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: nil
            ),
            onServerRunning: { [boundPort, logger, configuration] channel in
                let port = channel.localAddress?.port ?? configuration.port
                boundPort.set(port)
                logger.notice("HTTP listener ready", metadata: ["address": "\(configuration.host):\(port)"])
            },
            logger: serverLogger
        )
        do {
            try await application.run()
        } catch {
            // A failure before the listener bound is a failure to listen: say where.
            guard boundPort.current == nil else { throw error }
            boundPort.set(nil)
            throw ListenError(listener: "the HTTP listener (http.listen)", address: "\(configuration.host):\(configuration.port)", error: error)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Answers each request: finds the binding, turns the request into an exchange, runs the
/// route, and turns the final message (or the failure) into the response.
struct ListenerResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let table: HTTPListener.Table
    let defaultMaxBodySize: Int
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        let target = request.head.path ?? "/"
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
        let method = request.method.rawValue
        guard !bindings.isEmpty else {
            return ListenerResponder.errorResponse(status: 404, "no route listens on \(method) \(path)")
        }
        guard let binding = bindings.first(where: { $0.method == method }) ?? bindings.first(where: { $0.method == nil }) else {
            let allowed = bindings.compactMap(\.method).joined(separator: ", ")
            var response = ListenerResponder.errorResponse(status: 405, "method \(method) is not allowed on \(path); allowed: \(allowed)")
            response.headers[.allow] = allowed
            return response
        }
        guard let deliver = binding.deliver else {
            return ListenerResponder.errorResponse(status: 503, "the route for \(method) \(path) is not running")
        }
        let limit = binding.maxBodySize
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return ListenerResponder.errorResponse(status: 413, "request body is larger than the limit of \(limit) bytes for \(path)")
        }
        var headers = Headers()
        for field in request.headers where HTTPHeaderRules.keepsIncoming(field.name.rawName) {
            headers.add(field.name.rawName, field.value)
        }
        headers["http.method"] = method
        headers["http.path"] = String(path)
        if let query, !query.isEmpty {
            headers["http.query"] = String(query)
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecoded(parts[0].replacingPlus()), !name.isEmpty else { continue }
                let value = parts.count > 1 ? percentDecoded(parts[1].replacingPlus()) ?? "" : ""
                headers.add("http.query.\(name)", value)
            }
        }
        if !binding.path.isStatic, let captures = binding.path.match(segments) {
            for (name, value) in captures {
                headers[name] = value
            }
        }
        // W3C trace context: continue the caller's trace, or start one.
        let trace = headers[TraceContext.header].flatMap(TraceContext.init(traceparent:)) ?? .random()
        let message = Message(headers: headers, body: body, trace: trace)
        let exchange = Exchange(message: message, pattern: binding.async ? .inOnly : .inOut)
        do {
            let result = try await deliver(exchange)
            if binding.async {
                let response = ListenerResponder.jsonResponse(
                    status: 202, "{\"id\":\(jsonQuoted(exchange.id.description)),\"status\":\"accepted\"}"
                )
                return ListenerResponder.identified(response, exchangeID: exchange.id, correlationID: message.correlationID)
            }
            return ListenerResponder.response(for: result.message, exchangeID: exchange.id, request: headers)
        } catch let failure as StepFailure {
            let response = ListenerResponder.errorResponse(
                status: failure.status,
                failure.description,
                extra: [
                    ("route", failure.step.routeID),
                    ("step", failure.step.path),
                    ("kind", failure.step.kind),
                    ("messageId", exchange.id.description),
                ] + (failure.deadLetter.map { [("deadLetter", $0.description)] } ?? [])
            )
            return ListenerResponder.identified(response, exchangeID: exchange.id, correlationID: message.correlationID)
        } catch {
            // A ProcessingError outside any step (the audit store could not keep up) says its status.
            let status = (error as? ProcessingError)?.status ?? 500
            let response = ListenerResponder.errorResponse(status: status, "\(error)", extra: [("messageId", exchange.id.description)])
            return ListenerResponder.identified(response, exchangeID: exchange.id, correlationID: message.correlationID)
        }
    }

    /// Adds `X-Message-ID` and `X-Correlation-ID`.
    static func identified(_ response: Response, exchangeID: MessageID, correlationID: String) -> Response {
        var response = response
        if let name = messageIDName { response.headers[name] = exchangeID.description }
        if let name = correlationIDName { response.headers[name] = correlationID }
        return response
    }

    static let messageIDName = HTTPField.Name("X-Message-ID")
    static let correlationIDName = HTTPField.Name("X-Correlation-ID")

    /// The final message of a route as an HTTP response.
    ///
    /// Headers still holding the value the request brought (request headers, path captures)
    /// are not echoed back, except those describing the body (`Content-Type`); headers the
    /// route set or a backend replied with are sent.
    static func response(for message: Message, exchangeID: MessageID, request: Headers) -> Response {
        var status = 200
        if let text = message.headers["http.status"], let code = Int(text), (100...599).contains(code) {
            status = code
        }
        var fields = HTTPFields()
        fields.reserveCapacity(message.headers.count + 2)
        for header in message.headers where HTTPHeaderRules.forwardsOnResponse(header.name) {
            if request.fields.contains(header), !HTTPHeaderRules.name(header.name, isIn: HTTPHeaderRules.describesBody) {
                continue
            }
            if let name = HTTPField.Name(header.name) {
                fields.append(HTTPField(name: name, value: header.value))
            }
        }
        let response = Response(status: HTTPResponse.Status(code: status), headers: fields, body: ResponseBody(byteBuffer: message.body))
        return identified(response, exchangeID: exchangeID, correlationID: message.correlationID)
    }

    /// A JSON error body: `{"error": "...", "status": 404, ...}`.
    static func errorResponse(status: Int, _ text: String, extra: [(String, String)] = []) -> Response {
        var json = "{\"error\":\(jsonQuoted(text)),\"status\":\(status)"
        for (key, value) in extra {
            json += ",\(jsonQuoted(key)):\(jsonQuoted(value))"
        }
        json += "}"
        return jsonResponse(status: status, json)
    }

    static func jsonResponse(status: Int, _ json: String) -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: json))
        )
    }
}

extension Substring {
    /// Form-encoded query strings write spaces as `+`.
    func replacingPlus() -> String {
        contains("+") ? String(map { $0 == "+" ? " " : $0 }) : String(self)
    }
}
