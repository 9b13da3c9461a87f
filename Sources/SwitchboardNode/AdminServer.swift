// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import SwitchboardAudit
import SwitchboardCore
import SwitchboardRouting
import SwitchboardSLA
import SwitchboardState
import SwitchboardRegistry
import SwitchboardHTTP
import Prometheus
import Metrics

/// The admin API on its own listener: health now; traces, routes and SLA state as the
/// node grows. With a token configured every endpoint but `/health` needs
/// `Authorization: Bearer TOKEN`.
final class AdminServer: Sendable {
    let listen: NodeConfiguration.Listen
    let token: String?
    /// Connections served at once (further ones wait in the kernel's accept queue) and the
    /// idle time after which one is closed.
    let maxConnections: Int
    let idleTimeout: Duration
    /// `admin.tls`: the API is served over HTTPS.
    let tls: ServerTLS?
    let engine: RouteEngine
    let audit: AuditTrail?
    let monitor: RouteMonitor
    let metrics: PrometheusCollectorRegistry
    let series: SeriesRegistry
    let auditBuffer: Meter
    let logger: Logger
    /// Header names shown as *** in dead letters.
    let mask: [String]
    let services: ServiceRegistry?
    var auditStore: (any AuditStore)? { audit?.store }
    let started = ContinuousClock.now
    /// The port bound once the API listens; nil if it failed to bind.
    let boundPort = AsyncValue<Int?>()

    init(
        listen: NodeConfiguration.Listen, token: String?, maxConnections: Int = 64, idleTimeout: Duration = .seconds(30), tls: ServerTLS? = nil,
        engine: RouteEngine, audit: AuditTrail?,
        monitor: RouteMonitor, metrics: PrometheusCollectorRegistry, series: SeriesRegistry, logger: Logger, services: ServiceRegistry? = nil, mask: [String] = AuditPolicy.defaultMask
    ) {
        self.mask = mask
        self.services = services
        self.listen = listen
        self.token = token
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.tls = tls
        self.engine = engine
        self.audit = audit
        self.monitor = monitor
        self.metrics = metrics
        self.series = series
        self.auditBuffer = Meter(label: "switchboard_audit_buffer_depth", factory: PrometheusMetricsFactory(registry: metrics))
        self.logger = logger
    }

    /// `GET /metrics`: Prometheus text.
    func metricsText() -> Response {
        auditBuffer.set(audit?.bufferDepth ?? 0)
        var text = metrics.emitToBuffer()
        series.emit(into: &text)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: text))
        )
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }

    /// `GET /admin/routes`: every route with its source, where it is written, counters and p95.
    func routes() -> Response {
        let summaries = Dictionary(uniqueKeysWithValues: monitor.summaries().map { ($0.id, $0) })
        let items = engine.routes.map { route -> String in
            let summary = summaries[route.id]
            var json = "{\"id\":\(jsonQuoted(route.id)),\"source\":\(jsonQuoted(route.source.description)),\"location\":\(jsonQuoted(route.location.description))"
            json += ",\"messages\":\(summary?.messages ?? 0),\"failures\":\(summary?.failures ?? 0),\"inFlight\":\(summary?.inFlight ?? 0)"
            json += ",\"p95Micros\":\(summary?.p95Micros.map(String.init) ?? "null"),\"sla\":\(jsonQuoted(summary?.sla ?? "-"))}"
            return json
        }
        return Self.json(.ok, "{\"routes\":[" + items.joined(separator: ",") + "]}")
    }

    /// `GET /admin/sla`: every objective's state, and the latest breach and recovery events.
    func sla() async -> Response {
        let objectives = Self.encode(monitor.status())
        var events = "[]"
        if let auditStore, let stored = try? await auditStore.slaEvents(route: nil, limit: 50) {
            events = Self.encode(stored)
        }
        return Self.json(.ok, "{\"objectives\":\(objectives),\"events\":\(events)}")
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, "{\"error\":\(jsonQuoted(message)),\"status\":\(status.code)}")
    }

    /// `GET /admin/traces`: the traces a query matches, newest first (oldest first with `after`).
    func traces(_ request: Request) async -> Response {
        guard let auditStore else { return Self.error(.notFound, "the audit trail is disabled (audit.enabled: false)") }
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters {
            parameters[String(name)] = String(value)
        }
        do {
            let query = try TraceQuery(parameters: parameters)
            let traces = try await auditStore.traces(query)
            return Self.json(.ok, "{\"traces\":[" + traces.map { $0.jsonLine() }.joined(separator: ",") + "]}")
        } catch let error as TraceQueryError {
            return Self.error(.badRequest, error.description)
        } catch {
            return Self.error(.internalServerError, "reading the audit store failed: \(error)")
        }
    }

    /// `POST /admin/routes/{id}/messages`: runs the request body through a route as a new
    /// in-out message and answers with the route's reply.
    func send(_ request: Request, routeID: String) async -> Response {
        guard engine.route(routeID) != nil else {
            return Self.error(.notFound, "no route with id '\(routeID)'")
        }
        var headers = Headers()
        for field in request.headers where !Self.notForwarded.contains(field.name.canonicalName) {
            headers.add(field.name.rawName, field.value)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 64 << 20)
        } catch is NIOTooManyBytesError {
            return Self.error(.contentTooLarge, "message larger than 64MiB")
        } catch {
            return Self.error(.badRequest, "the message could not be read: \(error)")
        }
        let trace = headers[TraceContext.header].flatMap(TraceContext.init(traceparent:)) ?? .random()
        let exchange = Exchange(message: Message(headers: headers, body: body, trace: trace), pattern: .inOut)
        do {
            let reply = try await engine.process(routeID: routeID, exchange)
            var response = Response(status: .ok, body: .init(byteBuffer: reply.message.body))
            if let type = reply.message.contentType { response.headers[.contentType] = type }
            if let name = Self.messageIDField { response.headers[name] = exchange.id.description }
            if let name = Self.correlationIDField { response.headers[name] = exchange.message.correlationID }
            return response
        } catch let failure as StepFailure {
            var response = Self.json(
                HTTPResponse.Status(code: failure.status),
                "{\"error\":\(jsonQuoted(failure.description)),\"status\":\(failure.status),\"route\":\(jsonQuoted(failure.step.routeID)),\"step\":\(jsonQuoted(failure.step.path)),\"messageId\":\"\(exchange.id)\""
                    + (failure.deadLetter.map { ",\"deadLetter\":\"\($0)\"" } ?? "") + "}"
            )
            if let name = Self.messageIDField { response.headers[name] = exchange.id.description }
            return response
        } catch {
            return Self.error(.internalServerError, "\(error)")
        }
    }

    // MARK: Services

    struct Registration: Decodable {
        var url: String
        var version: String?
        var zone: String?
        var weight: Int?
        /// Seconds, or a duration such as "30s"; absent: never lapses.
        var ttl: String?
    }

    /// `PUT /admin/services/{name}/instances/{id}` with `{"url": …, "version": …, "zone": …,
    /// "weight": …, "ttl": "30s"}`: registers or renews (heartbeat) an instance.
    func registerInstance(_ request: Request, service name: String, id: String) async -> Response {
        guard let services else { return Self.error(.notFound, "this node has no service registry") }
        let registration: Registration
        do {
            let body = try await request.body.collect(upTo: 64 << 10)
            registration = try JSONDecoder().decode(Registration.self, from: Data(buffer: body))
        } catch {
            return Self.error(.badRequest, "expected a JSON object {\"url\": \"http://…\", \"version\", \"zone\", \"weight\", \"ttl\": \"30s\"}: \(error)")
        }
        guard registration.url.hasPrefix("http://") || registration.url.hasPrefix("https://") else {
            return Self.error(.badRequest, "'url' must be an http:// or https:// URL, found '\(registration.url)'")
        }
        var ttl: Duration?
        if let text = registration.ttl {
            guard let parsed = parseDuration(text), parsed > .zero else {
                return Self.error(.badRequest, "'ttl' expects a duration such as 30s, found '\(text)'")
            }
            ttl = parsed
        }
        if let weight = registration.weight, !(1...ServiceDefinition.maximumWeight).contains(weight) {
            return Self.error(.badRequest, "'weight' must be from 1 to \(ServiceDefinition.maximumWeight)")
        }
        let url = registration.url.hasSuffix("/") ? String(registration.url.dropLast()) : registration.url
        services.register(
            service: name,
            ServiceDefinition.Instance(id: id, url: url, version: registration.version, zone: registration.zone, weight: registration.weight ?? 1),
            ttl: ttl
        )
        return Self.json(.ok, "{\"registered\":\(jsonQuoted(id)),\"service\":\(jsonQuoted(name))}")
    }

    // MARK: Dead letters

    /// `GET /admin/dead-letters?route=R&limit=N`: oldest first.
    func deadLetters(_ request: Request) async -> Response {
        guard let store = engine.state.deadLetters else { return Self.error(.notFound, "this node has no dead letter store") }
        let route = request.uri.queryParameters.get("route")
        let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 1000
        do {
            let letters = try await store.list(routeID: route, limit: max(1, limit))
            return Self.json(.ok, "{\"deadLetters\":[" + letters.map { $0.json(mask: mask) }.joined(separator: ",") + "]}")
        } catch {
            return Self.error(.internalServerError, "reading the dead letter store failed: \(error)")
        }
    }

    /// `GET /admin/dead-letters/{id}`: one, with its body.
    func deadLetter(_ id: String) async -> Response {
        guard let store = engine.state.deadLetters else { return Self.error(.notFound, "this node has no dead letter store") }
        guard let messageID = MessageID(id) else { return Self.error(.badRequest, "'\(id)' is not a message id") }
        do {
            guard let letter = try await store.get(messageID) else { return Self.error(.notFound, "no dead letter with id \(id)") }
            return Self.json(.ok, letter.json(mask: mask, body: true))
        } catch {
            return Self.error(.internalServerError, "reading the dead letter store failed: \(error)")
        }
    }

    /// `DELETE /admin/dead-letters/{id}`: discards one without replaying it.
    func discardDeadLetter(_ id: String) async -> Response {
        guard let store = engine.state.deadLetters else { return Self.error(.notFound, "this node has no dead letter store") }
        guard let messageID = MessageID(id) else { return Self.error(.badRequest, "'\(id)' is not a message id") }
        do {
            guard try await store.remove(messageID) else { return Self.error(.notFound, "no dead letter with id \(id)") }
            logger.notice("dead letter discarded", metadata: ["dead-letter": "\(id)"])
            return Self.json(.ok, "{\"discarded\":\(jsonQuoted(id))}")
        } catch {
            return Self.error(.internalServerError, "the dead letter store failed: \(error)")
        }
    }

    /// `POST /admin/dead-letters/{id}/replay`.
    func replay(_ id: String) async -> Response {
        guard let messageID = MessageID(id) else { return Self.error(.badRequest, "'\(id)' is not a message id") }
        do {
            let outcome = try await engine.replay(messageID)
            return Self.json(.ok, "{\"replays\":[\(outcome.json)]}")
        } catch let error as ProcessingError {
            return Self.error(HTTPResponse.Status(code: error.status ?? 500), error.message)
        } catch {
            return Self.error(.internalServerError, "\(error)")
        }
    }

    /// `POST /admin/dead-letters/replay?route=R`: every dead letter of a route (or all).
    func replayAll(_ request: Request) async -> Response {
        let route = request.uri.queryParameters.get("route")
        do {
            let outcomes = try await engine.replayAll(routeID: route)
            return Self.json(.ok, "{\"replays\":[" + outcomes.map(\.json).joined(separator: ",") + "]}")
        } catch let error as ProcessingError {
            return Self.error(HTTPResponse.Status(code: error.status ?? 500), error.message)
        } catch {
            return Self.error(.internalServerError, "\(error)")
        }
    }

    static let messageIDField = HTTPField.Name("X-Message-ID")
    static let correlationIDField = HTTPField.Name("X-Correlation-ID")

    static let notForwarded: Set<String> = ["authorization", "host", "content-length", "connection", "transfer-encoding", "user-agent", "accept", "expect"]

    func run() async throws {
        let router = Router()
        router.get("/health") { [engine, started] _, _ -> Response in
            let uptime = ContinuousClock.now - started
            let json = "{\"status\":\"ok\",\"routes\":\(engine.routes.count),\"uptimeSeconds\":\(uptime.components.seconds)}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
        }
        if let token {
            router.middlewares.add(BearerTokenMiddleware(token: token, openPaths: ["/health"]))
        }
        router.get("/metrics") { _, _ in self.metricsText() }
        router.get("/admin/routes") { _, _ in self.routes() }
        router.get("/admin/sla") { _, _ in await self.sla() }
        router.get("/admin/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: AdminOpenAPI.document)))
        }
        router.get("/admin/traces") { request, _ in await self.traces(request) }
        router.get("/admin/traces/{id}") { request, context -> Response in
            guard let auditStore = self.auditStore else { return Self.error(.notFound, "the audit trail is disabled (audit.enabled: false)") }
            let id = context.parameters.get("id") ?? ""
            do {
                guard let trace = try await auditStore.traces(TraceQuery(messageID: id)).first else {
                    return Self.error(.notFound, "no trace for message \(id)")
                }
                return Self.json(.ok, trace.jsonLine())
            } catch {
                return Self.error(.internalServerError, "reading the audit store failed: \(error)")
            }
        }
        router.get("/admin/services") { _, _ in
            Self.json(.ok, "{\"services\":\(Self.encode(self.services?.status() ?? []))}")
        }
        router.put("/admin/services/{name}/instances/{id}") { request, context in
            await self.registerInstance(request, service: context.parameters.get("name") ?? "", id: context.parameters.get("id") ?? "")
        }
        router.delete("/admin/services/{name}/instances/{id}") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            let id = context.parameters.get("id") ?? ""
            guard self.services?.deregister(service: name, id: id) == true else {
                return Self.error(.notFound, "service '\(name)' has no instance '\(id)'")
            }
            return Self.json(.ok, "{\"deregistered\":\(jsonQuoted(id))}")
        }
        router.get("/admin/dead-letters") { request, _ in await self.deadLetters(request) }
        router.get("/admin/dead-letters/{id}") { _, context in await self.deadLetter(context.parameters.get("id") ?? "") }
        router.delete("/admin/dead-letters/{id}") { _, context in await self.discardDeadLetter(context.parameters.get("id") ?? "") }
        router.post("/admin/dead-letters/{id}/replay") { _, context in await self.replay(context.parameters.get("id") ?? "") }
        router.post("/admin/dead-letters/replay") { request, _ in await self.replayAll(request) }
        router.post("/admin/routes/{id}/messages") { request, context in
            await self.send(request, routeID: context.parameters.get("id") ?? "")
        }
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: TimeAmount(idleTimeout)))
        let application = Application(
            router: router,
            server: try tls.map { try .tls(http1, tlsConfiguration: $0.configuration) } ?? http1,
            configuration: ApplicationConfiguration(
                address: .hostname(listen.host, port: listen.port), serverName: nil,
                availableConnectionsDelegate: .maximum(maxConnections, logger: serverLogger)
            ),
            onServerRunning: { [boundPort, logger, listen, token, tls] channel in
                let port = channel.localAddress?.port ?? listen.port
                boundPort.set(port)
                let auth = token == nil ? "no token set: loopback only" : "bearer token required"
                logger.notice("admin API ready", metadata: ["address": "\(listen.host):\(port)", "auth": "\(auth)", "tls": "\(tls != nil)"])
            },
            logger: serverLogger
        )
        // Certificate rotation: every handshake takes the certificate loaded last.
        let watcher = tls.map { tls in
            Task { [metrics, logger] in
                await tls.watch(every: .seconds(10), listener: "admin", metrics: PrometheusMetricsFactory(registry: metrics), logger: logger)
            }
        }
        defer { watcher?.cancel() }
        do {
            try await application.run()
        } catch {
            guard boundPort.current == nil else { throw error }
            boundPort.set(nil)
            throw ListenError(listener: "the admin API (admin.listen)", address: "\(listen)", error: error)
        }
    }
}

/// Refuses requests without the configured bearer token (compared in constant time).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    let openPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        let presented = request.headers[.authorization] ?? ""
        let expected = "Bearer \(token)"
        guard constantTimeEquals(Array(presented.utf8), Array(expected.utf8)) else {
            return Response(
                status: .unauthorized,
                headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\"missing or wrong bearer token\",\"status\":401}"))
            )
        }
        return try await next(request, context)
    }

    private func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
