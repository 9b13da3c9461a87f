// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
import Logging
import SwitchboardCore
import SwitchboardRouting
import Synchronization

/// Watches every route: counts and latencies for metrics and `switchboard routes`, and each
/// route's `sla:` objectives over a sliding window, reporting breach and recovery.
///
/// An exchange observer: it sees the end of each exchange (the entry route's end event)
/// and of each step. ``evaluate(at:)`` compares the window with the targets; the node
/// calls it every second, tests call it with a clock of their own.
public final class RouteMonitor: InlineExchangeObserver {
    /// One route to watch.
    public struct RouteInfo: Sendable {
        public var id: String
        public var source: String
        public var sla: SLAPolicy?

        public init(id: String, source: String, sla: SLAPolicy?) {
            self.id = id
            self.source = source
            self.sla = sla
        }
    }

    /// An objective changed state.
    public struct Change: Sendable, Equatable {
        public var routeID: String
        public var objective: String
        /// `breached` or `recovered`.
        public var state: String
        public var value: String
        public var target: String
        public var at: Int64
    }

    /// The state of one objective, for `switchboard sla`.
    public struct ObjectiveStatus: Sendable, Equatable, Codable {
        public var route: String
        public var objective: String
        public var target: String
        /// The current value, or nil when the window holds nothing to measure.
        public var value: String?
        public var window: String
        /// `ok`, `breached`, or `no data`.
        public var state: String
        /// Since when it has been breached (microseconds since the epoch).
        public var breachedSince: Int64?
        public var samples: Int
    }

    /// Counters of one route, for `switchboard routes`.
    public struct RouteSummary: Sendable, Equatable, Codable {
        public var id: String
        public var source: String
        public var messages: Int
        public var failures: Int
        public var inFlight: Int
        /// 95th percentile latency over the last five minutes (microseconds), nil without traffic.
        public var p95Micros: Int64?
        public var sla: String
    }

    private struct RouteState {
        let info: RouteInfo
        var window: SlidingWindow
        /// Five-minute window for routes without an SLA (for the p95 `switchboard routes` shows).
        var messages = 0
        var failures = 0
        var inFlight = 0
        var breached: [String: Int64] = [:]
        let handles: RouteHandles
    }

    private struct RouteHandles {
        let ok: Counter
        let failed: Counter
        let duration: Timer
        let inFlight: Meter
    }

    private struct StepHandles {
        let ok: Counter
        let failed: Counter
        let duration: Timer
    }

    private let routes = Mutex<[String: RouteState]>([:])
    private let order = Mutex<[String]>([])
    /// A step by route and position: no string is built per event to find its handles.
    private struct StepKey: Hashable {
        let routeID: String
        let index: Int
    }

    private let steps = Mutex<[StepKey: StepHandles]>([:])
    private let metrics: any MetricsFactory
    private let clock: @Sendable () -> Int64
    private let started: Int64
    let logger: Logger

    /// - Parameters:
    ///   - metrics: Where counters and histograms go (the node's Prometheus registry).
    ///   - clock: Microseconds since the epoch; tests pass their own.
    public init(routes: [RouteInfo] = [], metrics: any MetricsFactory, clock: @escaping @Sendable () -> Int64 = wallClockMicroseconds, logger: Logger) {
        self.metrics = metrics
        self.clock = clock
        self.started = clock()
        self.logger = logger
        install(routes)
    }

    /// Starts watching `routes` (the node calls it once the routes are compiled, since the
    /// monitor must exist before, as an observer).
    public func install(_ routes: [RouteInfo]) {
        var table: [String: RouteState] = [:]
        for route in routes {
            let handles = RouteHandles(
                ok: Counter(label: "switchboard_route_messages_total", dimensions: [("route", route.id), ("outcome", "ok")], factory: metrics),
                failed: Counter(label: "switchboard_route_messages_total", dimensions: [("route", route.id), ("outcome", "failed")], factory: metrics),
                duration: Timer(label: "switchboard_route_duration_seconds", dimensions: [("route", route.id)], factory: metrics),
                inFlight: Meter(label: "switchboard_inflight_exchanges", dimensions: [("route", route.id)], factory: metrics)
            )
            handles.inFlight.set(0)
            table[route.id] = RouteState(info: route, window: SlidingWindow(window: route.sla?.window ?? .seconds(300)), handles: handles)
            for objective in Self.objectives(route.sla) {
                Meter(label: "switchboard_sla_breached", dimensions: [("route", route.id), ("objective", objective)], factory: metrics).set(0)
            }
        }
        self.routes.withLock { $0.merge(table) { _, new in new } }
        self.order.withLock { $0 += routes.map(\.id).filter { !$0.isEmpty } }
    }

    static func objectives(_ sla: SLAPolicy?) -> [String] {
        guard let sla else { return [] }
        var names = sla.latency.map(\.name)
        if sla.errorRate != nil { names.append("errors") }
        if sla.minThroughput != nil { names.append("throughput") }
        if sla.maxAge != nil { names.append("max-age") }
        return names
    }

    public func record(_ event: ExchangeEvent) async {
        _ = recordWithoutWaiting(event)
    }

    /// Steps are measured by their ends.
    public var wantsStepStarts: Bool { false }

    /// Counts the event; never waits.
    package func recordWithoutWaiting(_ event: ExchangeEvent) -> Bool {
        if let step = event.step {
            guard event.phase != .started, let duration = event.duration else { return true }
            let handles = stepHandles(step)
            (event.phase == .failed ? handles.failed : handles.ok).increment()
            handles.duration.recordNanoseconds(duration.nanoseconds)
            return true
        }
        // Only the route a consumer delivered to counts as the exchange, once: a refused
        // acknowledgement after the route completed is in the audit trail and the log.
        guard event.callDepth == 0, event.detail != ExchangeEvent.notAcknowledged else { return true }
        routes.withLock { table in
            // Changed where it lies: a copy taken out of the table would share the window's
            // arrays with it, and the first change would copy them whole.
            guard let slot = table.index(forKey: event.routeID) else { return }
            Self.count(event, in: &table.values[slot])
        }
        return true
    }

    private static func count(_ event: ExchangeEvent, in state: inout RouteState) {
        switch event.phase {
        case .started:
            state.inFlight += 1
            state.handles.inFlight.set(state.inFlight)
        case .completed, .failed:
            let failed = event.phase == .failed
            let latency = event.duration?.microseconds ?? 0
            let arrived = event.message.properties[SLAPolicy.arrivalProperty].flatMap { Int64($0) } ?? (event.timestampMicros - latency)
            state.window.add(at: event.timestampMicros, latency: latency, failed: failed, age: event.timestampMicros - arrived)
            state.messages += 1
            if failed { state.failures += 1 }
            state.inFlight = max(0, state.inFlight - 1)
            state.handles.inFlight.set(state.inFlight)
            (failed ? state.handles.failed : state.handles.ok).increment()
            state.handles.duration.recordMicroseconds(latency)
        }
    }

    private func stepHandles(_ step: StepInfo) -> StepHandles {
        let key = StepKey(routeID: step.routeID, index: step.index)
        if let handles = steps.withLock({ $0[key] }) { return handles }
        let dimensions = [("route", step.routeID), ("step", step.path), ("kind", step.kind)]
        let handles = StepHandles(
            ok: Counter(label: "switchboard_step_total", dimensions: dimensions + [("outcome", "ok")], factory: metrics),
            failed: Counter(label: "switchboard_step_total", dimensions: dimensions + [("outcome", "failed")], factory: metrics),
            duration: Timer(label: "switchboard_step_duration_seconds", dimensions: dimensions, factory: metrics)
        )
        return steps.withLock { table in
            if let existing = table[key] { return existing }
            table[key] = handles
            return handles
        }
    }

    /// Measures every objective at `now` and returns the ones whose state changed.
    public func evaluate(at now: Int64? = nil) -> [Change] {
        let now = now ?? clock()
        var changes: [Change] = []
        let order = self.order.withLock { $0 }
        routes.withLock { table in
            for id in order {
                guard var state = table[id] else { continue }
                for status in Self.measure(state, now: now, started: started) {
                    let wasBreached = state.breached[status.objective] != nil
                    let isBreached = status.state == "breached"
                    guard wasBreached != isBreached else { continue }
                    if isBreached {
                        state.breached[status.objective] = now
                    } else {
                        state.breached[status.objective] = nil
                    }
                    changes.append(Change(
                        routeID: id, objective: status.objective, state: isBreached ? "breached" : "recovered",
                        value: status.value ?? "no data", target: status.target, at: now
                    ))
                }
                table[id] = state
            }
        }
        for change in changes {
            Meter(label: "switchboard_sla_breached", dimensions: [("route", change.routeID), ("objective", change.objective)], factory: metrics)
                .set(change.state == "breached" ? 1 : 0)
            if change.state == "breached" {
                Counter(label: "switchboard_sla_breaches_total", dimensions: [("route", change.routeID), ("objective", change.objective)], factory: metrics)
                    .increment()
            }
        }
        return changes
    }

    /// Every objective of every route with an SLA, as it stands at `now`.
    public func status(at now: Int64? = nil) -> [ObjectiveStatus] {
        let now = now ?? clock()
        let order = self.order.withLock { $0 }
        return routes.withLock { table in
            order.flatMap { id -> [ObjectiveStatus] in
                guard let state = table[id] else { return [] }
                return Self.measure(state, now: now, started: started).map { status in
                    var status = status
                    status.breachedSince = state.breached[status.objective]
                    return status
                }
            }
        }
    }

    /// Counts and the recent p95 of every route.
    public func summaries(at now: Int64? = nil) -> [RouteSummary] {
        let now = now ?? clock()
        let order = self.order.withLock { $0 }
        return routes.withLock { table in
            order.compactMap { id in
                guard let state = table[id] else { return nil }
                let window = state.window.summary(at: now)
                let breached = state.breached.keys.sorted()
                let sla = state.info.sla == nil ? "-" : (breached.isEmpty ? "ok" : "breached: " + breached.joined(separator: ", "))
                return RouteSummary(
                    id: id, source: state.info.source, messages: state.messages, failures: state.failures,
                    inFlight: state.inFlight, p95Micros: window.histogram.percentile(95), sla: sla
                )
            }
        }
    }

    private static func measure(_ state: RouteState, now: Int64, started: Int64) -> [ObjectiveStatus] {
        guard let sla = state.info.sla else { return [] }
        let summary = state.window.summary(at: now)
        let window = formatDuration(sla.window)
        var result: [ObjectiveStatus] = []
        func add(_ objective: String, target: String, value: String?, breached: Bool?) {
            result.append(ObjectiveStatus(
                route: state.info.id, objective: objective, target: target, value: value, window: window,
                state: breached.map { $0 ? "breached" : "ok" } ?? "no data", breachedSince: nil, samples: summary.count
            ))
        }
        for target in sla.latency {
            let value = summary.histogram.percentile(target.percentile)
            add(target.name, target: "≤ " + formatDuration(target.target), value: value.map(formatMicros), breached: value.map { $0 > target.target.microseconds })
        }
        if let limit = sla.errorRate {
            let rate = summary.count == 0 ? nil : Double(summary.failures) / Double(summary.count)
            add("errors", target: "≤ " + formatPercent(limit), value: rate.map(formatPercent), breached: rate.map { $0 > limit })
        }
        if let minimum = sla.minThroughput {
            // Judged only once a whole window has passed since the node started.
            let full = now - started >= sla.window.microseconds
            let rate = Double(summary.count) / (Double(sla.window.microseconds) / 1_000_000)
            add("throughput", target: "≥ " + formatRate(minimum), value: formatRate(rate), breached: full ? rate < minimum : nil)
        }
        if let maxAge = sla.maxAge {
            let value: Int64? = summary.count == 0 ? nil : summary.maxAge
            add("max-age", target: "≤ " + formatDuration(maxAge), value: value.map(formatMicros), breached: value.map { $0 > maxAge.microseconds })
        }
        return result
    }
}

func formatMicros(_ micros: Int64) -> String {
    formatDuration(.microseconds(micros))
}

func formatPercent(_ fraction: Double) -> String {
    let percent = fraction * 100
    return percent == percent.rounded() ? "\(Int(percent))%" : "\((percent * 100).rounded() / 100)%"
}

func formatRate(_ perSecond: Double) -> String {
    perSecond >= 1 || perSecond == 0 ? "\((perSecond * 100).rounded() / 100)/s" : "\((perSecond * 6000).rounded() / 100)/m"
}

