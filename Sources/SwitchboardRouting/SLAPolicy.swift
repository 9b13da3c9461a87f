// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
/// A route's service level, from `sla:` in its route file.
///
/// ```yaml
/// sla: { p95: 150ms, p99: 400ms, errors: 1%, throughput: 10/s, max-age: 15m, window: 5m, alert: route:alerts }
/// ```
public struct SLAPolicy: Sendable, Equatable {
    /// A latency percentile target: `p95: 150ms` is (95, 150ms).
    public struct Percentile: Sendable, Equatable {
        public var percentile: Double
        public var target: Duration
        /// As written: `p95`, `p99.9`.
        public var name: String

        public init(percentile: Double, target: Duration, name: String) {
            self.percentile = percentile
            self.target = target
            self.name = name
        }
    }

    public var latency: [Percentile] = []
    /// Largest share of failed exchanges in the window, 0…1.
    public var errorRate: Double?
    /// Fewest exchanges per second over the window.
    public var minThroughput: Double?
    /// Longest time from arrival (a file's modification time, a row's insert) to delivery.
    public var maxAge: Duration?
    /// The sliding window the objectives are measured over (default 5 minutes).
    public var window: Duration = .seconds(300)
    /// Where breach and recovery alerts go: an endpoint URI (`http://…`) or `route:ID`.
    public var alert: String?

    public init() {}

    public var isEmpty: Bool { latency.isEmpty && errorRate == nil && minThroughput == nil && maxAge == nil }

    /// The message property a consumer sets to the arrival time of what it took in, for
    /// `max-age` (see ``Message/arrivedAtProperty``).
    public static let arrivalProperty = Message.arrivedAtProperty

    /// Parses `1%`, `0.5%` or a fraction such as `0.01`.
    public static func parseRate(_ text: String) -> Double? {
        if text.hasSuffix("%"), let percent = Double(text.dropLast()), (0...100).contains(percent) { return percent / 100 }
        if let fraction = Double(text), (0...1).contains(fraction) { return fraction }
        return nil
    }

    /// Parses `10/s`, `600/m`, `1000/h` (exchanges per second, minute, hour) or a plain per-second number.
    public static func parseThroughput(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let count = Double(parts[0]), count >= 0 else { return nil }
        guard parts.count == 2 else { return count }
        switch parts[1] {
        case "s": return count
        case "m", "min": return count / 60
        case "h": return count / 3600
        default: return nil
        }
    }

    /// Parses `p95`, `p99.9` to the percentile.
    public static func parsePercentileKey(_ key: String) -> Double? {
        guard key.hasPrefix("p"), let value = Double(key.dropFirst()), value > 0, value < 100 else { return nil }
        return value
    }
}
