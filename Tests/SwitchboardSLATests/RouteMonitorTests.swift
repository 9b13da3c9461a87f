// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import Prometheus
import SwitchboardCore
import SwitchboardRouting
import SwitchboardSLA
import Synchronization
import Testing

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let now = Mutex<Int64>(1_800_000_000_000_000)

    var micros: Int64 { now.withLock { $0 } }

    func advance(_ duration: Duration) {
        now.withLock { $0 += duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000 }
    }
}

@Suite struct RouteMonitorTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func policy(_ yaml: String) throws -> SLAPolicy {
        let engine = try RouteLoader(catalog: AdapterCatalog([]), logger: logger, environment: [:]).load(sources: [("""
        routes:
          - id: r
            from: direct:r
            sla: \(yaml)
          - id: alerts
            from: direct:alerts
        """, "routes.yaml")])
        return try #require(engine.route("r")?.sla)
    }

    /// Reports one finished exchange of route `r` at the clock's time.
    static func finish(_ monitor: RouteMonitor, clock: TestClock, latency: Duration, failed: Bool = false, arrivedAgo: Duration? = nil) async {
        var message = Message()
        if let arrivedAgo {
            message.properties[SLAPolicy.arrivalProperty] = String(clock.micros - arrivedAgo.components.seconds * 1_000_000)
        }
        await monitor.record(ExchangeEvent(phase: .started, message: message, routeID: "r", step: nil, timestampMicros: clock.micros))
        await monitor.record(ExchangeEvent(
            phase: failed ? .failed : .completed, message: message, routeID: "r", step: nil,
            timestampMicros: clock.micros, duration: latency, error: failed ? "boom" : nil
        ))
    }

    @Test func slaKeysParse() throws {
        let sla = try Self.policy("{ p95: 150ms, p99.9: 2s, errors: 1.5%, throughput: 600/m, max-age: 15m, window: 1m, alert: 'direct:alerts' }")
        #expect(sla.latency.map(\.name) == ["p95", "p99.9"])
        #expect(sla.latency.map(\.percentile) == [95, 99.9])
        #expect(sla.latency[0].target == .milliseconds(150))
        #expect(sla.errorRate == 0.015)
        #expect(sla.minThroughput == 10)
        #expect(sla.maxAge == .seconds(900))
        #expect(sla.window == .seconds(60))
        #expect(sla.alert == "direct:alerts")
    }

    @Test func aLatencyBreachIsDetectedUnderATestClockAndRecovers() async throws {
        let clock = TestClock()
        let registry = PrometheusCollectorRegistry()
        let sla = try Self.policy("{ p95: 100ms, window: 1m }")
        let monitor = RouteMonitor(
            routes: [.init(id: "r", source: "direct:r", sla: sla)],
            metrics: PrometheusMetricsFactory(registry: registry), clock: { clock.micros }, logger: Self.logger
        )
        #expect(monitor.evaluate().isEmpty, "no traffic is no breach")
        #expect(monitor.status().first?.state == "no data")
        // 20 fast, then 80 slow: p95 is slow.
        for _ in 0..<20 { await Self.finish(monitor, clock: clock, latency: .milliseconds(20)) }
        for _ in 0..<80 {
            clock.advance(.milliseconds(100))
            await Self.finish(monitor, clock: clock, latency: .milliseconds(250))
        }
        let breach = monitor.evaluate()
        #expect(breach.count == 1)
        #expect(breach.first?.objective == "p95")
        #expect(breach.first?.state == "breached")
        #expect(breach.first?.target == "≤ 100ms")
        let value = try #require(breach.first?.value)
        #expect(value.hasPrefix("24") || value.hasPrefix("25"), "p95 of 250ms samples reads \(value)")
        #expect(monitor.evaluate().isEmpty, "a breach is reported once")
        let status = try #require(monitor.status().first)
        #expect(status.state == "breached")
        #expect(status.breachedSince == breach.first?.at)
        #expect(registry.emitToString().contains(#"switchboard_sla_breached{route="r",objective="p95"} 1"#))

        // A minute later the slow ones have left the window; fast traffic brings it back.
        clock.advance(.seconds(61))
        for _ in 0..<50 { await Self.finish(monitor, clock: clock, latency: .milliseconds(30)) }
        let recovery = monitor.evaluate()
        #expect(recovery.map(\.state) == ["recovered"])
        #expect(monitor.status().first?.state == "ok")
        #expect(registry.emitToString().contains(#"switchboard_sla_breached{route="r",objective="p95"} 0"#))
        #expect(registry.emitToString().contains(#"switchboard_sla_breaches_total{route="r",objective="p95"} 1"#))
    }

    @Test func errorRateThroughputAndAgeObjectives() async throws {
        let clock = TestClock()
        let sla = try Self.policy("{ errors: 10%, throughput: 1/s, max-age: 5m, window: 1m }")
        let monitor = RouteMonitor(
            routes: [.init(id: "r", source: "direct:r", sla: sla)],
            metrics: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()), clock: { clock.micros }, logger: Self.logger
        )
        // 3 of 10 fail; one message arrived 10 minutes before it was delivered.
        for n in 0..<10 {
            await Self.finish(monitor, clock: clock, latency: .milliseconds(5), failed: n < 3, arrivedAgo: n == 9 ? .seconds(600) : nil)
        }
        // Throughput is not judged before a whole window has passed.
        var changes = monitor.evaluate()
        #expect(Set(changes.map(\.objective)) == ["errors", "max-age"])
        #expect(changes.first { $0.objective == "errors" }?.value == "30%")
        #expect(changes.first { $0.objective == "max-age" }?.value == "10m")
        // After the window: 10 in a minute is below 1/s.
        clock.advance(.seconds(30))
        changes = monitor.evaluate()
        #expect(changes.isEmpty)
        clock.advance(.seconds(31))
        changes = monitor.evaluate()
        // The old exchanges are out of the window: errors and age recover, throughput breaches.
        #expect(changes.map { "\($0.objective) \($0.state)" }.sorted() == ["errors recovered", "max-age recovered", "throughput breached"])
    }

    @Test func routeSummariesCountMessagesFailuresAndP95() async throws {
        let clock = TestClock()
        let monitor = RouteMonitor(
            routes: [.init(id: "r", source: "direct:r", sla: nil)],
            metrics: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()), clock: { clock.micros }, logger: Self.logger
        )
        for n in 0..<100 { await Self.finish(monitor, clock: clock, latency: .milliseconds(n < 95 ? 10 : 500), failed: n == 0) }
        let summary = try #require(monitor.summaries().first)
        #expect(summary.messages == 100)
        #expect(summary.failures == 1)
        #expect(summary.inFlight == 0)
        let p95 = try #require(summary.p95Micros)
        #expect((9_500...10_500).contains(p95), "p95 \(p95)µs")
        #expect(summary.sla == "-")
    }
}
