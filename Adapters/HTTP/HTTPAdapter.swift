// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchboardCore
import Synchronization

/// HTTP in and out: consumers bind methods and paths on the node's HTTP listener
/// (HTTP/1.1 on SwiftNIO); producers call HTTP and HTTPS services with the adapter's own
/// HTTP/1.1 client (TLS by SwiftNIO SSL).
public struct HTTPAdapter: Adapter {
    /// Node-wide HTTP settings (the node config's `http:` section).
    public struct Configuration: Sendable {
        /// Address the listener binds.
        public var host: String
        /// Port the listener binds; 0 picks a free one.
        public var port: Int
        /// Largest request body accepted, unless a route sets `maxBodySize`.
        public var maxBodySize: Int
        /// Close client connections idle this long.
        public var idleTimeout: Duration?
        /// Pooled keep-alive connections per backend host.
        public var maxConnectionsPerHost: Int
        /// Default connect timeout for producers.
        public var connectTimeout: Duration
        /// Open client connections the listener keeps; past it, new ones are closed at once
        /// and counted. Nil: sized from the process's descriptor limit (``ListenerLimits``).
        public var maxConnections: Int?
        /// Time a client gets to send a whole request head, from its first byte (from the
        /// connect for a connection's first request); past it: 408 and close.
        public var headerTimeout: Duration = .seconds(10)
        /// Time a client gets to send a whole request body, from the end of its head; past it:
        /// 408 and close.
        public var bodyTimeout: Duration = .seconds(60)
        /// Most header fields in a request head; more: 431 and close.
        public var maxHeaderCount = 100
        /// Most bytes of a request head's target, header names and values; more: 431 and close.
        public var maxHeaderSize = 16 * 1024
        /// Most bytes of request bodies the listener holds in memory at once, from their first
        /// byte until their reply is written; a body that would go past it gets 503.
        public var maxBufferedBodies = 128 * 1024 * 1024
        /// A body that grows past this while it is read goes on in a temporary file, outside
        /// ``maxBufferedBodies``, and is read back once whole.
        public var bodyFileThreshold = 64 * 1024
        /// Where those temporary files are made (unnamed: they vanish when closed, or when the
        /// process ends).
        public var bodyFileDirectory = NSTemporaryDirectory()
        /// TLS on the listener (`http.tls`): every connection is HTTPS.
        public var tls: ServerTLS?
        /// How often the listener looks whether its certificate files changed.
        public var tlsReloadInterval: Duration = .seconds(10)

        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            maxBodySize: Int = 10 * 1024 * 1024,
            idleTimeout: Duration? = .seconds(60),
            maxConnectionsPerHost: Int = 64,
            connectTimeout: Duration = .seconds(5)
        ) {
            self.host = host
            self.port = port
            self.maxBodySize = maxBodySize
            self.idleTimeout = idleTimeout
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.connectTimeout = connectTimeout
        }
    }

    public static let spec = EndpointSpec(
        schemes: ["http", "https"],
        summary: "HTTP in (routes bind a method and path on the node's listener) and out (pooled keep-alive requests).",
        consumerSyntax: "http:/PATH[?method=POST] (PATH may hold {captures}, exposed as headers)",
        producerSyntax: "http[s]://HOST[:PORT]/PATH[?QUERY] (query parameters that are not options are sent on)",
        options: [
            OptionSpec("method", .choice(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
                       doc: "Consumer: the method bound (default: any). Producer: the method used (default: the message's http.method, else POST with a body and GET without)."),
            OptionSpec("mode", .choice(["sync", "async"]), default: "sync", roles: [.consumer],
                       doc: "sync: answer with the route's result. async: store the request durably, answer 202 Accepted with its id, then route it; accepted requests not finished when the node stops are routed after it restarts."),
            OptionSpec("maxBodySize", .size, roles: [.consumer],
                       doc: "Largest request body accepted; larger ones get 413 (default: the node's http.max-body-size, 10MiB)."),
            OptionSpec("connectTimeout", .duration, roles: [.producer],
                       doc: "Time allowed to open a connection (default: the node's http.connect-timeout, 5s)."),
            OptionSpec("timeout", .duration, default: "30s", roles: [.producer],
                       doc: "Time allowed for the whole request and reply."),
            OptionSpec("failOnServerError", .bool, default: "true", roles: [.producer],
                       doc: "Treat a 5xx reply as a failure of the step (4xx replies always pass through)."),
            OptionSpec("maxResponseSize", .size, default: "64MiB", roles: [.producer],
                       doc: "Largest reply body accepted."),
            OptionSpec("ca", .string, roles: [.producer],
                       doc: "https only: a PEM file of the certificate authorities to trust instead of the system's (a private CA); the server's certificate and name are always checked."),
        ],
        producerKeepsUnknownQuery: true
    )

    public let configuration: Configuration
    let listener: HTTPListener
    let clients: ClientPool

    /// - Parameter metrics: Where the listener reports open connections and what it turned
    ///   away (`switchboard_http_open_connections`, `switchboard_http_rejected_total{reason}`).
    public init(configuration: Configuration = Configuration(), metrics: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "switchboard.http")) {
        self.configuration = configuration
        self.listener = HTTPListener(configuration: configuration, metrics: metrics, logger: logger)
        self.clients = ClientPool(configuration: configuration)
    }

    /// The port the listener bound once it accepts connections; nil if it failed to bind.
    public var boundPort: Int? {
        get async { await listener.boundPort.value }
    }

    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        let binding = HTTPListener.Binding(
            method: endpoint.options.string("method"),
            path: try PathTemplate(endpoint.path),
            maxBodySize: endpoint.options.size("maxBodySize") ?? configuration.maxBodySize,
            async: endpoint.options.string("mode") == "async"
        )
        guard !endpoint.hasAuthority else {
            throw EndpointError("an HTTP consumer is a path on the node's listener, as in http:/orders; the listen address is set in the node config (http.listen)")
        }
        if endpoint.scheme == "https", configuration.tls == nil {
            throw EndpointError("'from: https:/…' is served over TLS, and the listener has none: set http.tls { cert, key } in the node config")
        }
        listener.register(binding)
        return HTTPConsumer(binding: binding)
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        guard endpoint.hasAuthority, let host = endpoint.host else {
            throw EndpointError("an HTTP producer needs a host, as in http://127.0.0.1:9000/orders")
        }
        var target = endpoint.path.isEmpty ? "/" : endpoint.path
        if !endpoint.query.isEmpty {
            target += "?" + endpoint.query.map { "\(queryEscaped($0.name))=\(queryEscaped($0.value))" }.joined(separator: "&")
        }
        guard HTTPWire.isValidTarget(target) else {
            throw EndpointError("the path and query cannot be sent in a request line (spaces or control characters): \(target)")
        }
        var authorization: String?
        if let user = endpoint.user {
            let credentials = "\(user):\(endpoint.password ?? "")"
            authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        }
        let tls = endpoint.scheme == "https"
        let port = endpoint.port ?? (tls ? 443 : 80)
        let hostHeader = (host.contains(":") ? "[\(host)]" : host) + (port == (tls ? 443 : 80) ? "" : ":\(port)")
        let fixedFields: ByteBuffer
        do {
            fixedFields = try HTTPRequestBytes.fields([("Host", hostHeader)] + (authorization.map { [("Authorization", $0)] } ?? []))
        } catch {
            throw EndpointError("the host or the credentials cannot be sent as HTTP fields: \(hostHeader)")
        }
        let caFile = endpoint.options.string("ca")
        if caFile != nil, !tls {
            throw EndpointError("'ca' is for https:// endpoints; this one is http://")
        }
        let connectTimeout = endpoint.options.duration("connectTimeout") ?? configuration.connectTimeout
        let pool: HostPool
        do {
            pool = try clients.client(connectTimeout: connectTimeout).pool(HTTP1Client.HostKey(host: host, port: port, tls: tls, caFile: caFile))
        } catch {
            throw EndpointError("cannot load the certificate authorities of '\(caFile ?? "the system")' for TLS: \(error)")
        }
        return HTTPProducer(
            display: endpoint.description,
            method: endpoint.options.string("method").map { HTTPMethod(rawValue: $0) },
            timeout: TimeAmount(endpoint.options.duration("timeout") ?? .seconds(30)),
            failOnServerError: endpoint.options.bool("failOnServerError") ?? true,
            maxResponseSize: endpoint.options.size("maxResponseSize") ?? 64 * 1024 * 1024,
            hasCredentials: authorization != nil,
            pool: pool,
            target: target,
            fixedFields: fixedFields
        )
    }

    /// Two consumers conflict when they bind the same method (or both any method) on paths
    /// of the same shape (`/orders/{id}` and `/orders/{oid}` are the same shape).
    public func consumerBinding(_ endpoint: Endpoint) -> String? {
        guard let path = try? PathTemplate(endpoint.path) else { return nil }
        return "\(endpoint.options.string("method") ?? "any method") \(path.shape)"
    }

    /// Runs the listener until graceful shutdown has drained the requests in flight.
    public func run() async throws {
        try await listener.run()
    }

    /// Closes the client connection pools.
    public func shutdown() async {
        await clients.shutdown()
    }
}

/// The HTTP clients of an adapter, one per connect timeout (a client-wide setting), made at
/// route load and shared by every producer with that timeout, `http://` and `https://` alike.
final class ClientPool: Sendable {
    private let configuration: HTTPAdapter.Configuration
    private let clients = Mutex<[Duration: HTTP1Client]>([:])

    init(configuration: HTTPAdapter.Configuration) {
        self.configuration = configuration
    }

    /// The client for producers with this connect timeout.
    func client(connectTimeout: Duration) -> HTTP1Client {
        clients.withLock { clients in
            if let client = clients[connectTimeout] { return client }
            let client = HTTP1Client(settings: .init(
                connectTimeout: TimeAmount(connectTimeout),
                idleTimeout: TimeAmount(configuration.idleTimeout ?? .seconds(60)),
                maxConnectionsPerHost: configuration.maxConnectionsPerHost
            ))
            clients[connectTimeout] = client
            return client
        }
    }

    func shutdown() async {
        let all = clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all {
            await client.shutdown()
        }
    }
}

private func queryEscaped(_ text: String) -> String {
    var allowed = CharacterSet.urlQueryAllowed
    allowed.remove(charactersIn: "&=+")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
