// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import ServiceLifecycle
import SwitchboardCore
import Synchronization

/// One route, compiled: its source endpoint, its consumer and its steps.
public final class CompiledRoute: Sendable {
    public let id: String
    /// The `from` endpoint (credentials stripped in its description).
    public let source: Endpoint
    /// Where the route is written.
    public let location: SourceLocation
    /// The route's service level, from `sla:`.
    public let sla: SLAPolicy?
    let slaAlert: SLAAlertTarget?
    let consumer: (any Consumer)?
    let pipeline: Pipeline
    let observers: ObserverSet
    /// Where messages go that failed for good (`on-error.dead-letter`); nil: back to the source.
    let deadLetter: DeadLetterTarget?
    /// Which kinds of failure go there (see ``ErrorPolicy/deadLetterOn``).
    let deadLetterOn: Set<String>?
    /// The consumer acknowledges once a message is stored (`mode=async`), before it is routed.
    public let storesBeforeRouting: Bool

    init(
        id: String, source: Endpoint, location: SourceLocation, consumer: (any Consumer)?, pipeline: Pipeline, observers: ObserverSet,
        sla: SLAPolicy? = nil, slaAlert: SLAAlertTarget? = nil, deadLetter: DeadLetterTarget? = nil, deadLetterOn: Set<String>? = nil,
        storesBeforeRouting: Bool = false
    ) {
        self.deadLetter = deadLetter
        self.deadLetterOn = deadLetterOn
        self.storesBeforeRouting = storesBeforeRouting
        self.id = id
        self.source = source
        self.location = location
        self.consumer = consumer
        self.pipeline = pipeline
        self.observers = observers
        self.sla = sla
        self.slaAlert = slaAlert
    }

    /// Runs the route's steps on `exchange`, reporting the route's start and end to observers.
    ///
    /// - Returns: The exchange after the last step (the reply, for in-out exchanges).
    /// - Throws: ``StepFailure`` naming the step that failed.
    public func execute(_ exchange: Exchange) async throws -> Exchange {
        let observed = !observers.isEmpty
        let depth = RouteDirectory.callDepth
        let start = ContinuousClock.now
        if observed {
            await observers.record(ExchangeEvent(phase: .started, message: exchange.message, routeID: id, step: nil, callDepth: depth))
        }
        do {
            let result = try await pipeline.run(exchange)
            if observed {
                await observers.record(ExchangeEvent(
                    phase: .completed, message: result.exchange.message, input: exchange.message, routeID: id, step: nil,
                    duration: ContinuousClock.now - start, detail: result.action == .stop ? "stopped" : nil, callDepth: depth
                ))
            }
            return result.exchange
        } catch {
            if observed {
                await observers.record(ExchangeEvent(
                    phase: .failed, message: exchange.message, input: exchange.message, routeID: id, step: nil,
                    duration: ContinuousClock.now - start, error: String(describing: error), callDepth: depth
                ))
            }
            throw error
        }
    }
}

/// Where a route's SLA alerts go.
enum SLAAlertTarget: Sendable {
    case producer(any Producer, String)
    case route(String)
}

/// Routes by id, for `route:` steps and `direct:` endpoints. Filled once after compiling,
/// before any message flows.
final class RouteDirectory: Sendable {
    private let routes = Mutex<[String: CompiledRoute]>([:])
    private let directNames = Mutex<[String: String]>([:])

    static let maximumCallDepth = 32
    @TaskLocal static var callDepth = 0

    func install(_ compiled: [CompiledRoute]) {
        routes.withLock { table in
            for route in compiled { table[route.id] = route }
        }
        directNames.withLock { names in
            for route in compiled where route.source.scheme == DirectAdapter.scheme {
                names[route.source.path] = route.id
            }
        }
    }

    func route(_ id: String) -> CompiledRoute? {
        routes.withLock { $0[id] }
    }

    func route(directName name: String) -> CompiledRoute? {
        guard let id = directNames.withLock({ $0[name] }) else { return nil }
        return route(id)
    }

    /// Runs `route` for a `route:` step or a `to: direct:`, refusing calls nested deeper
    /// than ``maximumCallDepth`` (a route that ends up calling itself).
    static func call(_ route: CompiledRoute, with exchange: Exchange) async throws -> Exchange {
        let depth = callDepth
        guard depth < maximumCallDepth else {
            throw ProcessingError("route calls nested deeper than \(maximumCallDepth) levels (a route calls itself?)")
        }
        return try await $callDepth.withValue(depth + 1) {
            try await route.execute(exchange)
        }
    }
}

/// The engine of a node: the loaded routes, their consumers, and the background work that
/// wire taps start.
///
/// `run()` starts every route's consumer and runs until cancelled or until graceful
/// shutdown, after which it lets queued background work finish.
public final class RouteEngine: Service, Sendable {
    public let routes: [CompiledRoute]
    /// Warnings found while loading (errors make loading fail instead).
    public let warnings: [Diagnostic]
    let background: BackgroundWork
    let observers: ObserverSet
    let logger: Logger
    /// Dead letters, idempotency keys, the asynchronous intake.
    public let state: NodeState
    /// The services route files define (`services:`).
    public let services: [ServiceDefinition]
    /// Bounds the accepted messages routed at once (``NodeState/intakeConcurrency``).
    let intakePermits: AsyncLimiter

    init(
        routes: [CompiledRoute], warnings: [Diagnostic], background: BackgroundWork, observers: ObserverSet, logger: Logger,
        state: NodeState = NodeState(), services: [ServiceDefinition] = []
    ) {
        self.services = services
        self.routes = routes
        self.warnings = warnings
        self.background = background
        self.observers = observers
        self.logger = logger
        self.state = state
        self.intakePermits = AsyncLimiter(state.intakeConcurrency)
    }

    public func route(_ id: String) -> CompiledRoute? {
        routes.first { $0.id == id }
    }

    /// Runs a message through a route as if its consumer had received it.
    ///
    /// - Throws: ``ProcessingError`` for an unknown route, ``StepFailure`` when a step fails.
    public func process(routeID: String, _ exchange: Exchange) async throws -> Exchange {
        guard let route = route(routeID) else {
            throw ProcessingError("no route with id '\(routeID)'", status: 404)
        }
        return try await deliver(exchange, to: route)
    }

    /// Sends an SLA alert (a JSON body) to the route's `sla.alert` endpoint or route.
    ///
    /// - Returns: false when the route has no alert target.
    @discardableResult
    public func sendAlert(for routeID: String, _ message: Message) async throws -> Bool {
        guard let target = route(routeID)?.slaAlert else { return false }
        let exchange = Exchange(message: message, pattern: .inOnly)
        switch target {
        case .producer(let producer, _):
            _ = try await producer.send(exchange)
        case .route(let id):
            _ = try await process(routeID: id, exchange)
        }
        return true
    }

    /// What each consumer calls: runs the route, waits until observers have stored its
    /// events (so the source is acknowledged only after its audit trail is durable), and
    /// writes the exchange's log line.
    func deliver(_ exchange: Exchange, to route: CompiledRoute, deadLetters: DeadLetterUse = .route) async throws -> Exchange {
        let start = ContinuousClock.now
        var exchange = exchange
        if exchange.message.trace == nil {
            exchange.message.trace = .random()
        }
        do {
            let result: Exchange
            do {
                result = try await execute(route, exchange)
            } catch var failure as StepFailure {
                if let target = deadLetterTarget(for: route, deadLetters),
                   ErrorPolicy.deadLetters(failure.kind, pattern: exchange.pattern, on: route.deadLetterOn) {
                    failure.deadLetter = await handOver(exchange.message, failure, route: route, to: target)
                }
                // The route's own failure is what the caller needs to hear about.
                try? await observers.settle(exchange.message.id)
                throw failure
            } catch {
                try? await observers.settle(exchange.message.id)
                throw error
            }
            do {
                try await observers.settle(exchange.message.id)
            } catch {
                refused(exchange, result, route: route, started: start, because: error)
                throw error
            }
            if logger.logLevel <= .info {
                logger.info("exchange completed", metadata: [
                    "route": "\(route.id)",
                    "message-id": "\(exchange.message.id)",
                    "correlation-id": "\(exchange.message.correlationID)",
                    "duration": "\(formatDuration(ContinuousClock.now - start))",
                ])
            }
            return result
        } catch {
            var metadata: Logger.Metadata = [
                "route": "\(route.id)",
                "message-id": "\(exchange.message.id)",
                "correlation-id": "\(exchange.message.correlationID)",
                "duration": "\(formatDuration(ContinuousClock.now - start))",
                "error": "\(error)",
            ]
            if let failure = error as? StepFailure {
                if failure.attempts > 1 { metadata["attempts"] = "\(failure.attempts)" }
                if let letter = failure.deadLetter { metadata["dead-letter"] = "\(letter)" }
            }
            logger.error("exchange failed", metadata: metadata)
            throw error
        }
    }

    /// Records that a completed exchange's source was refused its acknowledgement (its events
    /// were not stored in time), so its trace says so whenever the events are stored, before
    /// or after this. Not awaited: recording waits for room in the observers' buffers, which
    /// is what ran out, and the caller is answered now.
    private func refused(_ exchange: Exchange, _ result: Exchange, route: CompiledRoute, started: ContinuousClock.Instant, because error: any Error) {
        let status = (error as? ProcessingError)?.status ?? 500
        let event = ExchangeEvent(
            phase: .failed, message: result.message, input: exchange.message, routeID: route.id, step: nil,
            duration: ContinuousClock.now - started,
            error: "the source was answered \(status) and not acknowledged: \(error)",
            detail: ExchangeEvent.notAcknowledged
        )
        let observers = self.observers
        Task { await observers.record(event) }
    }

    /// Runs the entry route within the observers' scope for the exchange, if one gave one.
    private func execute(_ route: CompiledRoute, _ exchange: Exchange) async throws -> Exchange {
        guard let scope = observers.scope(for: exchange.message.id) else { return try await route.execute(exchange) }
        defer { scope.end() }
        return try await ExchangeScopes.$current.withValue(scope) { try await route.execute(exchange) }
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.background.run() }
            await resumeIntake()
            do {
                try await cancelWhenGracefulShutdown {
                    try await withThrowingDiscardingTaskGroup { consumers in
                        for route in self.routes {
                            guard let consumer = route.consumer else { continue }
                            consumers.addTask {
                                if route.storesBeforeRouting {
                                    try await consumer.run { exchange in
                                        try await self.accept(exchange, for: route)
                                    }
                                } else {
                                    try await consumer.run { exchange in
                                        try await self.deliver(exchange, to: route)
                                    }
                                }
                            }
                        }
                        // Keeps the group open when no route has a consumer.
                        consumers.addTask { try await gracefulShutdown() }
                    }
                }
            } catch is CancellationError {
                // Shutdown: consumers have stopped taking messages.
            }
            self.background.finish()
            try await group.waitForAll()
        }
    }
}

/// Logs every exchange event at debug level: route, step, outcome, duration.
public struct LoggingObserver: ExchangeObserver {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func record(_ event: ExchangeEvent) async {
        var metadata: Logger.Metadata = [
            "route": "\(event.routeID)",
            "message-id": "\(event.messageID)",
            "phase": "\(event.phase.rawValue)",
        ]
        if let step = event.step {
            metadata["step"] = "\(step.path) \(step.kind)"
            if let endpoint = step.endpoint { metadata["endpoint"] = "\(endpoint)" }
        }
        if let parent = event.parentID { metadata["parent-id"] = "\(parent)" }
        if let duration = event.duration { metadata["duration"] = "\(formatDuration(duration))" }
        if let detail = event.detail { metadata["detail"] = "\(detail)" }
        if let error = event.error { metadata["error"] = "\(error)" }
        logger.debug("step event", metadata: metadata)
    }
}
