// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
import Synchronization

/// The per-route and per-step series (`switchboard_route_*`, `switchboard_step_*`,
/// `switchboard_sla_*`), kept apart from the node's Prometheus registry and written in the
/// same text format after it.
///
/// swift-prometheus copies a metric family's table of label sets each time a labelled series
/// joins it, so registering the series of n routes took time growing with n²: most of a
/// node's start with thousands of routes (docs/architecture.md). Here a series joins its
/// family in place. Counters and gauges are atomics; a histogram takes a lock per sample, as
/// swift-prometheus's does.
public final class SeriesRegistry: MetricsFactory, Sendable {
    private struct Family {
        let type: String
        var series: [String: any Series] = [:]
        var order: [String] = []
    }

    private struct State {
        var families: [String: Family] = [:]
        var order: [String] = []
    }

    private let state = Mutex(State())
    /// Upper bounds of timers' buckets, in seconds.
    private let durationBuckets: [Double]
    /// Upper bounds of aggregating recorders' buckets.
    private let valueBuckets: [Double]

    /// - Parameters: The buckets swift-prometheus uses by default, so histograms read the same.
    public init(
        durationBuckets: [Duration] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ],
        valueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
    ) {
        self.durationBuckets = durationBuckets.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        self.valueBuckets = valueBuckets
    }

    /// The series `label` with `dimensions`, made by `make` the first time.
    private func series<S: Series>(_ label: String, _ dimensions: [(String, String)], type: String, make: (String) -> S) -> S {
        let labels = Self.render(dimensions)
        return state.withLock { state in
            if let existing = state.families[label]?.series[labels] as? S { return existing }
            let made = make(labels)
            if state.families[label] == nil { state.order.append(label) }
            if state.families[label, default: Family(type: type)].series.updateValue(made, forKey: labels) == nil {
                state.families[label, default: Family(type: type)].order.append(labels)
            }
            return made
        }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        series(label, dimensions, type: "counter") { CounterSeries(name: label, labels: $0) }
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        series(label, dimensions, type: "gauge") { GaugeSeries(name: label, labels: $0) }
    }

    /// A recorder that aggregates is a histogram of its values; one that does not, a gauge.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            return series(label, dimensions, type: "histogram") { HistogramSeries(name: label, labels: $0, bounds: valueBuckets, divisor: 1) }
        }
        return series(label, dimensions, type: "gauge") { GaugeSeries(name: label, labels: $0) }
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        series(label, dimensions, type: "histogram") { HistogramSeries(name: label, labels: $0, bounds: durationBuckets, divisor: 1e9) }
    }

    public func destroyCounter(_ handler: any CounterHandler) { remove(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { remove(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { remove(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { remove(handler) }

    private func remove(_ handler: Any) {
        guard let series = handler as? any Series else { return }
        state.withLock { state in
            guard state.families[series.name]?.series.removeValue(forKey: series.labels) != nil else { return }
            state.families[series.name]?.order.removeAll { $0 == series.labels }
        }
    }

    /// Appends every series in the Prometheus text format (0.0.4), families in the order they
    /// were first made.
    public func emit(into buffer: inout [UInt8]) {
        let families = state.withLock { state in state.order.compactMap { name in state.families[name].map { (name, $0) } } }
        for (name, family) in families where !family.order.isEmpty {
            buffer.append(contentsOf: "# TYPE \(name) \(family.type)\n".utf8)
            for labels in family.order {
                family.series[labels]?.emit(into: &buffer)
            }
        }
    }

    /// `name="value",…` with values escaped as the format asks (backslash, quote, newline).
    static func render(_ dimensions: [(String, String)]) -> String {
        dimensions.map { name, value in
            var escaped = ""
            for character in value {
                switch character {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return "\(name)=\"\(escaped)\""
        }.joined(separator: ",")
    }
}

/// One series of a family.
private protocol Series: AnyObject, Sendable {
    var name: String { get }
    var labels: String { get }
    func emit(into buffer: inout [UInt8])
}

extension Series {
    /// `name{labels}` or `name`, with `suffix` after the name and `extra` after the labels.
    func writeName(into buffer: inout [UInt8], suffix: String = "", extra: String? = nil) {
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: suffix.utf8)
        let all = [labels.isEmpty ? nil : labels, extra].compactMap { $0 }.joined(separator: ",")
        if !all.isEmpty { buffer.append(contentsOf: "{\(all)}".utf8) }
        buffer.append(UInt8(ascii: " "))
    }
}

/// A value as the text format writes it: whole numbers without a fraction.
private func formatSample(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 9.0e15 { return String(Int64(value)) }
    return "\(value)"
}

private final class CounterSeries: Series, CounterHandler {
    let name: String
    let labels: String
    private let value = Atomic<Int64>(0)

    init(name: String, labels: String) {
        self.name = name
        self.labels = labels
    }

    func increment(by amount: Int64) { value.wrappingAdd(amount, ordering: .relaxed) }
    func reset() { value.store(0, ordering: .relaxed) }

    func emit(into buffer: inout [UInt8]) {
        writeName(into: &buffer)
        buffer.append(contentsOf: "\(value.load(ordering: .relaxed))\n".utf8)
    }
}

private final class GaugeSeries: Series, MeterHandler, RecorderHandler {
    let name: String
    let labels: String
    /// The value's bits.
    private let bits = Atomic<UInt64>(0)

    init(name: String, labels: String) {
        self.name = name
        self.labels = labels
    }

    func set(_ value: Int64) { set(Double(value)) }
    func set(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }
    func record(_ value: Int64) { set(Double(value)) }
    func record(_ value: Double) { set(value) }
    func increment(by amount: Double) { add(amount) }
    func decrement(by amount: Double) { add(-amount) }

    private func add(_ amount: Double) {
        var current = bits.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = bits.compareExchange(
                expected: current, desired: (Double(bitPattern: current) + amount).bitPattern, ordering: .relaxed
            )
            if exchanged { return }
            current = original
        }
    }

    func emit(into buffer: inout [UInt8]) {
        writeName(into: &buffer)
        buffer.append(contentsOf: "\(formatSample(Double(bitPattern: bits.load(ordering: .relaxed))))\n".utf8)
    }
}

private final class HistogramSeries: Series, TimerHandler, RecorderHandler {
    let name: String
    let labels: String
    private let bounds: [Double]
    /// What a recorded value is divided by for the histogram's unit (nanoseconds to seconds
    /// for timers).
    private let divisor: Double
    private let counts: Mutex<(buckets: [Int64], count: Int64, sum: Double)>

    init(name: String, labels: String, bounds: [Double], divisor: Double) {
        self.name = name
        self.labels = labels
        self.bounds = bounds
        self.divisor = divisor
        self.counts = Mutex((Array(repeating: 0, count: bounds.count), 0, 0))
    }

    func recordNanoseconds(_ duration: Int64) { add(Double(duration) / divisor) }
    func record(_ value: Int64) { add(Double(value) / divisor) }
    func record(_ value: Double) { add(value / divisor) }

    private func add(_ value: Double) {
        let first = bounds.firstIndex { value <= $0 }
        counts.withLock { counts in
            if let first {
                for index in first..<counts.buckets.count { counts.buckets[index] += 1 }
            }
            counts.count += 1
            counts.sum += value
        }
    }

    func emit(into buffer: inout [UInt8]) {
        let (buckets, count, sum) = counts.withLock { $0 }
        for (bound, total) in zip(bounds, buckets) {
            writeName(into: &buffer, suffix: "_bucket", extra: "le=\"\(bound)\"")
            buffer.append(contentsOf: "\(total)\n".utf8)
        }
        writeName(into: &buffer, suffix: "_bucket", extra: "le=\"+Inf\"")
        buffer.append(contentsOf: "\(count)\n".utf8)
        writeName(into: &buffer, suffix: "_sum")
        buffer.append(contentsOf: "\(sum)\n".utf8)
        writeName(into: &buffer, suffix: "_count")
        buffer.append(contentsOf: "\(count)\n".utf8)
    }
}
