// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
@testable import SwitchboardRegistry
import SwitchboardCore
import SwitchboardRouting
import Testing

/// Balancing, breakers and TTLs on the registry itself, under a manual clock.
struct ServiceRegistryTests {
    static let logger = Logger(label: "registry") { _ in SwiftLogNoOpLogHandler() }

    static func registry(_ service: ServiceDefinition, clock: ManualRegistryClock = ManualRegistryClock()) throws -> ServiceRegistry {
        let registry = ServiceRegistry(clock: clock, logger: logger)
        try registry.define([service])
        return registry
    }

    static func service(_ balance: ServiceDefinition.Balance, weights: [Int] = [1, 1, 1]) -> ServiceDefinition {
        var service = ServiceDefinition(name: "orders", instances: weights.enumerated().map {
            .init(id: "i\($0.offset)", url: "http://127.0.0.1:900\($0.offset)", weight: $0.element)
        })
        service.balance = balance
        return service
    }

    /// Takes `calls` leases, giving each back at once, and counts them by instance.
    static func spread(_ registry: ServiceRegistry, calls: Int, version: String? = nil) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<calls {
            let lease = try registry.lease("orders", version: version, excluding: [])
            counts[lease.id, default: 0] += 1
            registry.finish(lease, success: true, latency: .milliseconds(1))
        }
        return counts
    }

    @Test func roundRobinTakesEachInstanceInTurn() throws {
        let registry = try Self.registry(Self.service(.roundRobin))
        #expect(try Self.spread(registry, calls: 300) == ["i0": 100, "i1": 100, "i2": 100])
        let order = try (0..<6).map { _ in try registry.lease("orders", version: nil, excluding: []).id }
        #expect(order == ["i0", "i1", "i2", "i0", "i1", "i2"])
    }

    @Test func weightedSpreadsInProportionAndEvenly() throws {
        let registry = try Self.registry(Self.service(.weighted, weights: [1, 3]))
        #expect(try Self.spread(registry, calls: 400) == ["i0": 100, "i1": 300])
        // Smooth: the light instance is not starved for long runs.
        let order = try (0..<8).map { _ -> String in
            let lease = try registry.lease("orders", version: nil, excluding: [])
            registry.finish(lease, success: true, latency: .zero)
            return lease.id
        }
        #expect(order.filter { $0 == "i0" }.count == 2)
        #expect(!order.joined().contains("i1i1i1i1"))
    }

    @Test func leastOutstandingPrefersTheInstanceWithFewestCallsInFlight() throws {
        let registry = try Self.registry(Self.service(.leastOutstanding))
        let a = try registry.lease("orders", version: nil, excluding: [])
        let b = try registry.lease("orders", version: nil, excluding: [])
        #expect(Set([a.id, b.id]).count == 2)
        let c = try registry.lease("orders", version: nil, excluding: [])
        #expect(Set([a.id, b.id, c.id]) == ["i0", "i1", "i2"])
        registry.finish(b, success: true, latency: .zero)
        #expect(try registry.lease("orders", version: nil, excluding: []).id == b.id)
    }

    @Test func theBreakerOpensHalfOpensAndClosesUnderTheClock() throws {
        let clock = ManualRegistryClock()
        var service = Self.service(.roundRobin, weights: [1])
        service.breaker.failures = 3
        service.breaker.open = .seconds(30)
        service.breaker.trials = 1
        let registry = try Self.registry(service, clock: clock)
        for _ in 0..<3 {
            let lease = try registry.lease("orders", version: nil, excluding: [])
            registry.finish(lease, success: false, latency: .zero)
        }
        #expect(registry.status()[0].instances[0].breaker == "open")
        #expect(throws: ProcessingError.self) { try registry.lease("orders", version: nil, excluding: []) }
        do {
            _ = try registry.lease("orders", version: nil, excluding: [])
        } catch let error as ProcessingError {
            #expect(error.message == "service 'orders' has no available instance (i0: breaker open)")
        }
        clock.advance(by: .seconds(29))
        #expect(throws: ProcessingError.self) { try registry.lease("orders", version: nil, excluding: []) }
        clock.advance(by: .seconds(1))
        // Half-open: one trial at a time.
        let trial = try registry.lease("orders", version: nil, excluding: [])
        #expect(registry.status()[0].instances[0].breaker == "half-open")
        #expect(throws: ProcessingError.self) { try registry.lease("orders", version: nil, excluding: []) }
        // The trial fails: open again, for another pause.
        registry.finish(trial, success: false, latency: .zero)
        #expect(registry.status()[0].instances[0].breaker == "open")
        clock.advance(by: .seconds(30))
        let second = try registry.lease("orders", version: nil, excluding: [])
        registry.finish(second, success: true, latency: .zero)
        #expect(registry.status()[0].instances[0].breaker == "closed")
        #expect(try Self.spread(registry, calls: 5) == ["i0": 5])
    }

    /// One instance whose breaker opens when half the calls of 10 s fail (10 calls at least).
    static func ratioBreaker(_ clock: ManualRegistryClock) throws -> ServiceRegistry {
        var service = service(.roundRobin, weights: [1])
        service.breaker.failures = 100
        service.breaker.ratio = 0.5
        service.breaker.minimumCalls = 10
        service.breaker.window = .seconds(10)
        return try registry(service, clock: clock)
    }

    @Test func theBreakerOpensOnAFailureRatioInItsWindow() throws {
        let clock = ManualRegistryClock()
        let registry = try Self.ratioBreaker(clock)
        for index in 0..<10 {
            let lease = try registry.lease("orders", version: nil, excluding: [])
            registry.finish(lease, success: index % 2 == 0, latency: .zero)
            clock.advance(by: .milliseconds(100))
        }
        #expect(registry.status()[0].instances[0].breaker == "open")
    }

    @Test func failuresOlderThanTheWindowNoLongerCount() throws {
        let clock = ManualRegistryClock()
        let registry = try Self.ratioBreaker(clock)
        func call(_ ok: Bool) throws {
            let lease = try registry.lease("orders", version: nil, excluding: [])
            registry.finish(lease, success: ok, latency: .zero)
            clock.advance(by: .milliseconds(100))
        }
        for _ in 0..<5 { try call(false) }
        clock.advance(by: .seconds(20))
        // 4 failures in the last 10 calls: 40%, under the ratio (with the old five, 60%).
        for index in 0..<10 { try call(index < 6) }
        #expect(registry.status()[0].instances[0].breaker == "closed")
        try call(false)
        try call(false)
        #expect(registry.status()[0].instances[0].breaker == "open", "6 of 12 failed")
    }

    @Test func registeredInstancesLapseWithoutAHeartbeat() throws {
        let clock = ManualRegistryClock()
        let registry = ServiceRegistry(clock: clock, logger: Self.logger)
        registry.register(service: "billing", .init(id: "a", url: "http://127.0.0.1:9100", version: "v2"), ttl: .seconds(10))
        registry.register(service: "billing", .init(id: "b", url: "http://127.0.0.1:9101", version: "v1"), ttl: .seconds(10))
        #expect(try registry.lease("billing", version: "v2", excluding: []).id == "a")
        #expect(try registry.lease("billing", version: "v1", excluding: []).id == "b")
        clock.advance(by: .seconds(8))
        // A heartbeat renews a.
        registry.register(service: "billing", .init(id: "a", url: "http://127.0.0.1:9100", version: "v2"), ttl: .seconds(10))
        clock.advance(by: .seconds(3))
        #expect(registry.status()[0].instances.map(\.id) == ["a"])
        #expect(throws: ProcessingError.self) { try registry.lease("billing", version: "v1", excluding: []) }
        clock.advance(by: .seconds(8))
        #expect(registry.status()[0].instances.isEmpty)
        #expect(registry.deregister(service: "billing", id: "a") == false)
    }

    @Test func healthChecksTakeInstancesOutAndBringThemBack() throws {
        let clock = ManualRegistryClock()
        var service = Self.service(.roundRobin, weights: [1, 1])
        var health = ServiceDefinition.HealthCheck()
        health.every = .seconds(5)
        health.unhealthy = 2
        health.healthy = 2
        service.health = health
        let registry = try Self.registry(service, clock: clock)
        #expect(registry.dueHealthChecks().map(\.url) == ["http://127.0.0.1:9000/health", "http://127.0.0.1:9001/health"])
        #expect(registry.dueHealthChecks().isEmpty, "not due again before 'every'")
        registry.reportHealth(service: "orders", id: "i1", ok: false)
        #expect(try Self.spread(registry, calls: 4) == ["i0": 2, "i1": 2], "one failure is not enough")
        registry.reportHealth(service: "orders", id: "i1", ok: false)
        #expect(try Self.spread(registry, calls: 4) == ["i0": 4])
        registry.reportHealth(service: "orders", id: "i1", ok: true)
        #expect(try Self.spread(registry, calls: 2) == ["i0": 2])
        registry.reportHealth(service: "orders", id: "i1", ok: true)
        #expect(try Self.spread(registry, calls: 4) == ["i0": 2, "i1": 2])
        clock.advance(by: .seconds(5))
        #expect(registry.dueHealthChecks().count == 2)
    }

    @Test func aServiceDefinedTwiceIsRefused() throws {
        let registry = ServiceRegistry(logger: Self.logger)
        try registry.define([Self.service(.roundRobin)])
        #expect(throws: ConfigurationError.self) { try registry.define([Self.service(.weighted)]) }
    }
}
