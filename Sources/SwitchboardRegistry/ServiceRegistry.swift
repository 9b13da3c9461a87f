// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import Metrics
import SwitchboardCore
import SwitchboardRouting
import Synchronization

/// Services and their instances: from config, and registered at run time with a TTL
/// renewed by heartbeat. Picks instances by the service's balance, skipping those whose
/// TTL lapsed, whose health check failed or whose breaker is open.
public final class ServiceRegistry: Sendable {
    struct InstanceState: Sendable {
        var definition: ServiceDefinition.Instance
        /// nil: from config, never expires.
        var expiresAt: Duration?
        var healthy = true
        /// Successes (positive) or failures (negative) of health checks in a row.
        var healthStreak = 0
        var lastCheck: Duration?
        var inFlight = 0
        var breaker = CircuitBreaker()
        var calls = 0
        var failures = 0
        /// Smoothed latency of recent calls, in seconds.
        var latency: Double?
        /// Smooth weighted round-robin's running weight.
        var currentWeight = 0
    }

    struct ServiceState: Sendable {
        var definition: ServiceDefinition
        var order: [String] = []
        var instances: [String: InstanceState] = [:]
        var next = 0

        /// Drops registrations whose TTL lapsed.
        ///
        /// - Returns: The ids dropped.
        @discardableResult
        mutating func prune(at now: Duration) -> [String] {
            let lapsed = order.filter { id in instances[id]?.expiresAt.map { $0 <= now } ?? false }
            for id in lapsed { instances[id] = nil }
            order.removeAll { lapsed.contains($0) }
            return lapsed
        }
    }

    let clock: any RegistryClock
    let logger: Logger
    let metrics: (any MetricsFactory)?
    private let services = Mutex<[String: ServiceState]>([:])

    public init(clock: any RegistryClock = SystemRegistryClock(), metrics: (any MetricsFactory)? = nil, logger: Logger) {
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// Adds configured services.
    ///
    /// - Throws: ``ConfigurationError`` for a name defined twice (route files and node config).
    public func define(_ definitions: [ServiceDefinition]) throws {
        var diagnostics: [Diagnostic] = []
        services.withLock { services in
            for definition in definitions {
                if let existing = services[definition.name] {
                    let at = definition.location ?? SourceLocation(file: "switchboard.yaml", line: 1, column: 1)
                    diagnostics.append(Diagnostic(at: at, "service '\(definition.name)' is defined twice; first at \(existing.definition.location.map(\.description) ?? "?")"))
                    continue
                }
                var state = ServiceState(definition: definition)
                for instance in definition.instances {
                    state.order.append(instance.id)
                    state.instances[instance.id] = InstanceState(definition: instance)
                }
                state.definition.instances = []
                services[definition.name] = state
            }
        }
        if !diagnostics.isEmpty { throw ConfigurationError(diagnostics) }
    }

    /// How many other instances a call to `name` may fail over to.
    func failover(of name: String) -> Int {
        services.withLock { $0[name]?.definition.failover } ?? 1
    }

    /// Registers (or renews, the heartbeat) an instance; a service not configured is
    /// created with the defaults. A TTL of nil never lapses.
    public func register(service name: String, _ instance: ServiceDefinition.Instance, ttl: Duration?) {
        let now = clock.now
        let isNew = services.withLock { services -> Bool in
            var state = services[name] ?? ServiceState(definition: ServiceDefinition(name: name))
            defer { services[name] = state }
            if var existing = state.instances[instance.id] {
                existing.definition = instance
                existing.expiresAt = ttl.map { now + $0 }
                state.instances[instance.id] = existing
                return false
            }
            var fresh = InstanceState(definition: instance)
            fresh.expiresAt = ttl.map { now + $0 }
            state.order.append(instance.id)
            state.instances[instance.id] = fresh
            return true
        }
        if isNew {
            logger.notice("service instance registered", metadata: ["service": "\(name)", "instance": "\(instance.id)", "url": "\(instance.url)"])
        }
    }

    /// - Returns: false when there was no such instance.
    @discardableResult
    public func deregister(service name: String, id: String) -> Bool {
        let now = clock.now
        let removed = services.withLock { services -> Bool in
            guard var state = services[name] else { return false }
            state.prune(at: now)
            services[name] = state
            guard state.instances.removeValue(forKey: id) != nil else { return false }
            state.order.removeAll { $0 == id }
            services[name] = state
            return true
        }
        if removed { logger.notice("service instance deregistered", metadata: ["service": "\(name)", "instance": "\(id)"]) }
        return removed
    }

    /// An instance taken for one call; give it back with ``finish(_:success:latency:)``.
    struct Lease: Sendable {
        let service: String
        let id: String
        let url: String
    }

    /// Picks an instance for a call.
    ///
    /// - Throws: ``ProcessingError`` (503) saying why no instance is available.
    func lease(_ name: String, version: String?, excluding: Set<String>) throws -> Lease {
        let now = clock.now
        var changes: [(String, CircuitBreaker.State)] = []
        let result = services.withLock { services -> Result<Lease, ProcessingError> in
            guard var state = services[name] else {
                return .failure(ProcessingError("no service '\(name)' is configured or registered", status: 503, kind: ErrorKind.connection))
            }
            defer { services[name] = state }
            var eligible: [String] = []
            var reasons: [String] = state.prune(at: now).map { "\($0): registration lapsed" }
            for id in state.order {
                guard var instance = state.instances[id] else { continue }
                if excluding.contains(id) { continue }
                if let version, instance.definition.version != version { continue }
                if !instance.healthy {
                    reasons.append("\(id): unhealthy")
                    continue
                }
                let before = instance.breaker.state
                let allowed = instance.breaker.allows(at: now, state.definition.breaker)
                if instance.breaker.state != before { changes.append((id, instance.breaker.state)) }
                state.instances[id] = instance
                guard allowed else {
                    reasons.append("\(id): breaker \(instance.breaker.state.rawValue)")
                    continue
                }
                eligible.append(id)
            }
            guard !eligible.isEmpty else {
                let which = version.map { " version \($0)" } ?? ""
                let why = reasons.isEmpty ? (excluding.isEmpty ? "no instances" : "every instance failed") : reasons.joined(separator: ", ")
                return .failure(ProcessingError("service '\(name)'\(which) has no available instance (\(why))", status: 503, kind: ErrorKind.connection))
            }
            let chosen: String
            switch state.definition.balance {
            case .roundRobin:
                chosen = eligible[state.next % eligible.count]
                // A failover within a call does not move the turn on.
                if excluding.isEmpty { state.next &+= 1 }
            case .leastOutstanding:
                let least = eligible.map { state.instances[$0]?.inFlight ?? 0 }.min() ?? 0
                let tied = eligible.filter { (state.instances[$0]?.inFlight ?? 0) == least }
                chosen = tied[state.next % tied.count]
                state.next &+= 1
            case .weighted:
                // Smooth weighted round-robin: spreads picks evenly in proportion to weight.
                var total = 0
                var best: String?
                var bestWeight = Int.min
                for id in eligible {
                    guard var instance = state.instances[id] else { continue }
                    instance.currentWeight += instance.definition.weight
                    total += instance.definition.weight
                    if instance.currentWeight > bestWeight {
                        bestWeight = instance.currentWeight
                        best = id
                    }
                    state.instances[id] = instance
                }
                chosen = best ?? eligible[0]
                state.instances[chosen]?.currentWeight -= total
            }
            state.instances[chosen]?.inFlight += 1
            state.instances[chosen]?.breaker.begin()
            return .success(Lease(service: name, id: chosen, url: state.instances[chosen]?.definition.url ?? ""))
        }
        for (id, breaker) in changes { reportBreaker(name, id, breaker) }
        return try result.get()
    }

    /// Gives an instance back after a call and records its outcome for the breaker.
    func finish(_ lease: Lease, success: Bool, latency: Duration) {
        let now = clock.now
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) / 1e18
        let change = services.withLock { services -> CircuitBreaker.State? in
            guard var state = services[lease.service], var instance = state.instances[lease.id] else { return nil }
            defer {
                state.instances[lease.id] = instance
                services[lease.service] = state
            }
            instance.inFlight = max(0, instance.inFlight - 1)
            instance.calls += 1
            if !success { instance.failures += 1 }
            instance.latency = instance.latency.map { $0 * 0.8 + seconds * 0.2 } ?? seconds
            return instance.breaker.record(success: success, at: now, state.definition.breaker)
        }
        if let change { reportBreaker(lease.service, lease.id, change) }
    }

    private func reportBreaker(_ service: String, _ instance: String, _ state: CircuitBreaker.State) {
        let metadata: Logger.Metadata = ["service": "\(service)", "instance": "\(instance)", "breaker": "\(state.rawValue)"]
        if state == .open {
            logger.warning("circuit breaker opened", metadata: metadata)
        } else {
            logger.notice("circuit breaker \(state == .closed ? "closed" : "half-open")", metadata: metadata)
        }
        if let metrics {
            Counter(label: "switchboard_breaker_transitions_total", dimensions: [("service", service), ("instance", instance), ("state", state.rawValue)], factory: metrics).increment()
            Meter(label: "switchboard_breaker_open", dimensions: [("service", service), ("instance", instance)], factory: metrics).set(state == .open ? 1 : 0)
        }
    }

    // MARK: Health checks

    struct HealthTarget: Sendable {
        let service: String
        let id: String
        let url: String
        let check: ServiceDefinition.HealthCheck
    }

    /// Instances whose health check is due now; marks them checked.
    func dueHealthChecks() -> [HealthTarget] {
        let now = clock.now
        return services.withLock { services in
            var due: [HealthTarget] = []
            for (name, var state) in services {
                state.prune(at: now)
                services[name] = state
                guard let check = state.definition.health else { continue }
                for id in state.order {
                    guard var instance = state.instances[id] else { continue }
                    if let last = instance.lastCheck, now - last < check.every { continue }
                    instance.lastCheck = now
                    state.instances[id] = instance
                    due.append(HealthTarget(service: name, id: id, url: instance.definition.url + check.path, check: check))
                }
                services[name] = state
            }
            return due
        }
    }

    /// Records a health check's result: `unhealthy` failures in a row take the instance
    /// out, `healthy` successes in a row bring it back.
    func reportHealth(service name: String, id: String, ok: Bool) {
        let change = services.withLock { services -> Bool? in
            guard var state = services[name], var instance = state.instances[id], let check = state.definition.health else { return nil }
            defer {
                state.instances[id] = instance
                services[name] = state
            }
            instance.healthStreak = ok ? max(1, instance.healthStreak + 1) : min(-1, instance.healthStreak - 1)
            if instance.healthy, instance.healthStreak <= -check.unhealthy {
                instance.healthy = false
                return false
            }
            if !instance.healthy, instance.healthStreak >= check.healthy {
                instance.healthy = true
                return true
            }
            return nil
        }
        if let change {
            let metadata: Logger.Metadata = ["service": "\(name)", "instance": "\(id)"]
            if change { logger.notice("instance healthy again", metadata: metadata) } else { logger.warning("instance unhealthy; taken out", metadata: metadata) }
        }
    }

    // MARK: Status

    public struct InstanceStatus: Sendable, Codable {
        public var id: String
        public var url: String
        public var version: String?
        public var zone: String?
        public var weight: Int
        public var registered: Bool
        /// Seconds until a registration lapses.
        public var expiresIn: Double?
        public var healthy: Bool
        public var breaker: String
        public var inFlight: Int
        public var calls: Int
        public var failures: Int
        public var latencyMillis: Double?
    }

    public struct ServiceStatus: Sendable, Codable {
        public var name: String
        public var balance: String
        public var failover: Int
        public var instances: [InstanceStatus]
    }

    /// Every service and instance, for `switchboard services` and the admin API.
    public func status() -> [ServiceStatus] {
        let now = clock.now
        return services.withLock { services in
            services.values.sorted { $0.definition.name < $1.definition.name }.map { state in
                ServiceStatus(
                    name: state.definition.name,
                    balance: state.definition.balance.rawValue,
                    failover: state.definition.failover,
                    instances: state.order.compactMap { id in
                        guard let instance = state.instances[id] else { return nil }
                        if let expiresAt = instance.expiresAt, expiresAt <= now { return nil }
                        let left = instance.expiresAt.map { $0 - now }
                        return InstanceStatus(
                            id: id, url: instance.definition.url, version: instance.definition.version, zone: instance.definition.zone,
                            weight: instance.definition.weight, registered: instance.expiresAt != nil,
                            expiresIn: left.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 },
                            healthy: instance.healthy, breaker: instance.breaker.state.rawValue, inFlight: instance.inFlight,
                            calls: instance.calls, failures: instance.failures, latencyMillis: instance.latency.map { $0 * 1000 }
                        )
                    }
                )
            }
        }
    }
}
