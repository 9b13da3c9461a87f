// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import ServiceLifecycle
import SwitchboardAudit
import SwitchboardCore
import NIOCore
import Prometheus
import SwitchboardHTTP
import SwitchboardRouting
import SwitchboardTransform
import SwitchboardSLA
import SwitchboardState
import SwitchboardRegistry
import SwitchboardStorage
import UnixSignals

/// A running Switchboard node: adapters, routes and the admin API under one service group.
///
/// On SIGTERM or SIGINT the node stops accepting, lets in-flight exchanges finish (up to
/// `shutdown-timeout`), lets background work drain, closes client pools, and returns.
public final class SwitchboardNode: Sendable {
    public let configuration: NodeConfiguration
    public let catalog: AdapterCatalog
    public let engine: RouteEngine
    /// The audit trail, unless `audit.enabled` is false.
    public let audit: AuditTrail?
    /// Route counters, latencies and SLA state.
    public let monitor: RouteMonitor
    /// What `GET /metrics` serves: this, then ``series``.
    public let metrics: PrometheusCollectorRegistry
    /// The per-route and per-step series.
    public let series: SeriesRegistry
    /// Dead letters, idempotency keys, accepted async messages.
    public let stateStore: any NodeStateStore
    /// Services and their instances, for `service:` endpoints.
    public var services: ServiceRegistry? {
        catalog.adapters.lazy.compactMap { ($0 as? ServiceAdapter)?.registry }.first
    }
    let admin: AdminServer
    let logger: Logger

    /// Loads routes, opens the audit store and builds adapters; nothing listens until
    /// ``run(gracefulShutdownSignals:)``.
    ///
    /// - Throws: ``ConfigurationError`` with every problem in every route file;
    ///   ``AuditStoreError`` when the audit store cannot be opened.
    public init(configuration: NodeConfiguration, observers: [any ExchangeObserver] = [], logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        // Before the listener sizes its connection limit from it.
        let descriptors = ProcessLimits.raiseOpenFileLimit()
        logger.debug("open-file limit", metadata: ["soft": "\(descriptors.soft)", "hard": "\(descriptors.hard)"])
        XMLLimits.maximumSize = configuration.xmlMaxSize
        XMLLimits.maximumDepth = configuration.xmlMaxDepth
        let metrics = PrometheusCollectorRegistry()
        self.metrics = metrics
        let catalog = AdapterRegistry.makeCatalog(configuration, metrics: PrometheusMetricsFactory(registry: metrics), logger: logger)
        self.catalog = catalog
        var observers = observers
        // Per-route series go to a registry of their own: see SeriesRegistry.
        let series = SeriesRegistry()
        self.series = series
        let monitor = RouteMonitor(metrics: series, logger: logger)
        self.monitor = monitor
        observers.append(monitor)
        do {
            if configuration.audit.enabled {
                let store = try await openAuditStore(configuration, create: true, logger: logger)
                let audit = AuditTrail(
                    store: store,
                    policy: AuditPolicy(
                        body: configuration.audit.body,
                        mask: AuditPolicy.defaultMask + configuration.audit.mask + AdapterRegistry.secretOptionNames
                    ),
                    capacity: configuration.audit.buffer,
                    commitTimeout: configuration.audit.commitTimeout,
                    commitInterval: configuration.audit.commitInterval,
                    retention: configuration.audit.retention,
                    logger: logger
                )
                self.audit = audit
                observers.append(audit)
            } else {
                audit = nil
            }
            let state = try await openStateStore(configuration, create: true, logger: logger)
            self.stateStore = state
            engine = try RouteLoader(
                catalog: catalog, observers: observers, logger: logger, mappingsDirectory: configuration.mappingsDirectory,
                state: NodeState(state), defaultErrorPolicy: configuration.onError
            ).load(directory: configuration.routesDirectory)
            try catalog.adapters.lazy.compactMap { ($0 as? ServiceAdapter)?.registry }.first?.define(configuration.services + engine.services)
            monitor.install(engine.routes.map { RouteMonitor.RouteInfo(id: $0.id, source: $0.source.description, sla: $0.sla) })
        } catch {
            for adapter in catalog.adapters { await adapter.shutdown() }
            throw error
        }
        admin = AdminServer(
            listen: configuration.adminListen, token: configuration.adminToken,
            maxConnections: configuration.adminMaxConnections, idleTimeout: configuration.adminIdleTimeout, tls: configuration.adminTLS, engine: engine,
            audit: audit, monitor: monitor, metrics: metrics, series: series, logger: logger,
            services: catalog.adapters.lazy.compactMap { ($0 as? ServiceAdapter)?.registry }.first,
            mask: AuditPolicy.defaultMask + configuration.audit.mask + AdapterRegistry.secretOptionNames
        )
    }

    /// The port the HTTP listener bound once it listens; nil if it failed to bind.
    public var httpPort: Int? {
        get async {
            guard let http = catalog.adapters.lazy.compactMap({ $0 as? HTTPAdapter }).first else { return configuration.httpListen.port }
            return await http.boundPort
        }
    }

    /// The port the admin API bound once it listens; nil if it failed to bind.
    public var adminPort: Int? {
        get async { await admin.boundPort.value }
    }

    /// Runs until a signal in `gracefulShutdownSignals` or cancellation.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        try FileManager.default.createDirectory(atPath: configuration.temporaryDirectory, withIntermediateDirectories: true)
        let problems = configuration.startProblems
        if !problems.isEmpty { throw ConfigurationError(problems) }
        for warning in configuration.warnings + engine.warnings {
            logger.warning("\(warning)")
        }
        logger.notice("starting", metadata: [
            "routes": "\(engine.routes.count)",
            "config": "\(configuration.file ?? "embedded defaults")",
            "routes-folder": "\(configuration.routesDirectory)",
        ])
        // Services stop in reverse order: listeners drain their requests first, then the
        // engine stops consumers and finishes background work, then the admin API goes.
        // The audit writer stops last, once nothing can record events any more.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let audit {
            services.append(.init(service: ClosureService(name: "audit trail") { try await audit.run() }))
        }
        services.append(.init(service: ClosureService(name: "admin") { [admin] in try await admin.run() }))
        services.append(.init(service: ClosureService(name: "sla monitor") { try await self.watchSLAs() }))
        services.append(.init(service: engine))
        for adapter in catalog.adapters {
            services.append(.init(
                service: ClosureService(name: "\(type(of: adapter).spec.schemes[0]) adapter") { try await adapter.run() },
                successTerminationBehavior: .ignore
            ))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        var failure: (any Error)?
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            failure = error
        }
        for adapter in catalog.adapters { await adapter.shutdown() }
        await stateStore.close()
        if let audit {
            do {
                try await audit.store.close()
            } catch {
                logger.warning("closing the audit store failed", metadata: ["error": "\(error)"])
            }
        }
        if let failure { throw failure }
        logger.notice("stopped")
    }
}

extension SwitchboardNode {
    /// Measures every route's SLA once a second until shutdown and reports each change.
    func watchSLAs() async throws {
        guard engine.routes.contains(where: { $0.sla != nil }) else {
            try? await gracefulShutdown()
            return
        }
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    for change in self.monitor.evaluate() {
                        await self.report(change)
                    }
                    try await Task.sleep(for: .seconds(1))
                }
            }
        } catch is CancellationError {
            // Shutdown.
        }
    }

    /// Logs an SLA change, stores it in the audit trail and sends the route's alert.
    func report(_ change: RouteMonitor.Change) async {
        let metadata: Logger.Metadata = [
            "route": "\(change.routeID)", "objective": "\(change.objective)",
            "value": "\(change.value)", "target": "\(change.target)",
        ]
        if change.state == "breached" {
            logger.warning("SLA breached", metadata: metadata)
        } else {
            logger.notice("SLA recovered", metadata: metadata)
        }
        let record = SLAEventRecord(
            routeID: change.routeID, objective: change.objective, state: change.state,
            value: change.value, target: change.target, at: change.at
        )
        if let audit {
            do {
                try await audit.store.append(record)
            } catch {
                logger.error("storing an SLA event failed", metadata: ["error": "\(error)"])
            }
        }
        let json = "{\"route\":\(jsonQuoted(change.routeID)),\"objective\":\(jsonQuoted(change.objective)),\"state\":\(jsonQuoted(change.state)),"
            + "\"value\":\(jsonQuoted(change.value)),\"target\":\(jsonQuoted(change.target)),\"at\":\(change.at)}"
        var headers = Headers()
        headers["Content-Type"] = "application/json"
        headers["X-SLA-Route"] = change.routeID
        headers["X-SLA-State"] = change.state
        do {
            try await engine.sendAlert(for: change.routeID, Message(headers: headers, body: ByteBuffer(string: json)))
        } catch {
            logger.error("sending an SLA alert failed", metadata: ["route": "\(change.routeID)", "error": "\(error)"])
        }
    }
}

/// A service made of a closure, for the node's own listeners.
struct ClosureService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async throws -> Void

    init(name: String, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.body = body
    }

    func run() async throws { try await body() }

    var description: String { name }
}

/// Opens the state store a node config names: a SQLite file, or PostgreSQL for a URL.
///
/// - Parameter create: Create the SQLite file when missing (the node); the CLI reading
///   dead letters offline passes false.
public func openStateStore(_ configuration: NodeConfiguration, create: Bool, logger: Logger) async throws -> any NodeStateStore {
    let location = configuration.stateStore
    if PostgresURL.isPostgres(location) {
        return try await PostgresStateStore(url: location, logger: logger)
    }
    return try SQLiteStateStore(path: location, create: create)
}

/// Opens the audit store a node config names: a SQLite file, or PostgreSQL for a URL.
///
/// - Parameter create: Create the SQLite file when missing (the node); the CLI reading
///   traces offline passes false.
public func openAuditStore(_ configuration: NodeConfiguration, create: Bool, logger: Logger) async throws -> any AuditStore {
    let location = configuration.auditStore
    if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
        return try await PostgresAuditStore(url: location, logger: logger)
    }
    return try SQLiteAuditStore(path: location, create: create, fullSync: configuration.audit.fullSync)
}
