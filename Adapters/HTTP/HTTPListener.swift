// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
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
    /// What the listener turned away (also reported as metrics).
    let counters: ListenerCounters
    /// Open connections past which new ones are closed at once.
    let maxConnections: Int
    /// The memory its connections may hold for request bodies.
    let bodyBudget: BodyBudget
    private let table = Mutex(Table())
    private let connections = Mutex(Connections())
    /// The port the listener bound (useful with port 0) once it accepts connections, or nil
    /// if it stopped without binding.
    let boundPort = AsyncValue<Int?>()

    /// Where the TLS certificate's expiry is reported.
    let metrics: (any MetricsFactory)?

    init(configuration: HTTPAdapter.Configuration, metrics: (any MetricsFactory)? = nil, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.counters = ListenerCounters(metrics: metrics)
        self.maxConnections = configuration.maxConnections ?? ListenerLimits.defaultMaxConnections()
        self.bodyBudget = BodyBudget(limit: configuration.maxBufferedBodies)
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
        let settings = HTTPConnectionHandler.Settings(
            router: RequestRouter(table: table.withLock { $0 }, logger: logger),
            configuration: configuration,
            budget: bodyBudget,
            counters: counters,
            logger: logger
        )
        let decoderLimits = settings.decoderLimits
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
                    if let tls = self.configuration.tls {
                        try pipeline.addHandler(tls.makeHandler())
                    }
                    // The watch sees a head's first bytes (for http.header-timeout) and HTTP/0.9
                    // request lines; NIO's decoder reads requests within the head limits; the
                    // connection handler writes replies as bytes, checks their fields and
                    // answers malformed requests (HTTPWire).
                    let watch = HeadWatch()
                    try pipeline.addHandler(watch)
                    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits)))
                    try pipeline.addHandler(HTTPConnectionHandler(settings: settings, watch: watch, loop: channel.eventLoop))
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
        logger.notice("HTTP listener ready", metadata: [
            "address": "\(configuration.host):\(port)", "max-connections": "\(maxConnections)", "tls": "\(configuration.tls != nil)",
        ])
        // Certificate rotation: the files are looked at while the listener runs.
        let watcher = configuration.tls.map { tls in
            Task { [metrics, logger, interval = configuration.tlsReloadInterval] in
                await tls.watch(every: interval, listener: "http", metrics: metrics, logger: logger)
            }
        }
        defer { watcher?.cancel() }
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

    /// Registers a new connection, or refuses it once shutdown began or while
    /// ``maxConnections`` are open (counted, and logged at most once a minute).
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let (accepted, open) = connections.withLock { state -> (Bool, Int) in
            guard !state.stopping, state.open.count < maxConnections else { return (false, state.open.count) }
            state.open[id] = channel
            return (true, state.open.count)
        }
        guard accepted else {
            if open >= maxConnections { refusedAtLimit() }
            return false
        }
        counters.setOpenConnections(open)
        channel.closeFuture.whenComplete { [self] _ in
            let (waiters, open) = connections.withLock { state -> ([CheckedContinuation<Void, Never>], Int) in
                state.open[id] = nil
                guard state.stopping, state.open.isEmpty else { return ([], state.open.count) }
                defer { state.drained = [] }
                return (state.drained, 0)
            }
            counters.setOpenConnections(open)
            for waiter in waiters { waiter.resume() }
        }
        return true
    }

    /// When the last connection refused at the limit was logged.
    private let lastRefusalLog = Mutex<ContinuousClock.Instant?>(nil)

    private func refusedAtLimit() {
        let total = counters.count(.connectionLimit)
        let now = ContinuousClock.now
        let due = lastRefusalLog.withLock { last in
            guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
            last = now
            return true
        }
        if due {
            logger.warning("HTTP listener is at its connection limit; new connections are closed at once", metadata: [
                "max-connections": "\(maxConnections)", "refused-so-far": "\(total)",
            ])
        }
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
