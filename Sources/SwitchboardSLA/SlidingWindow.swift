// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// Exchanges of one route over a sliding window: counts, failures, a latency histogram and
/// the largest arrival-to-delivery age, kept in 30 time slices so old slices drop out as
/// time moves on. Not thread-safe; the monitor guards it.
struct SlidingWindow {
    struct Slice {
        /// Start of the slice (microseconds since the epoch), or -1 when unused.
        var start: Int64 = -1
        var count = 0
        var failures = 0
        var maxAge: Int64 = 0
        var histogram = LatencyHistogram()
    }

    static let sliceCount = 30
    let window: Int64
    let sliceLength: Int64
    private var slices: [Slice]

    init(window: Duration) {
        let micros = max(10_000_000, window.microseconds)
        self.window = micros
        self.sliceLength = max(1_000_000, micros / Int64(Self.sliceCount))
        self.slices = Array(repeating: Slice(), count: Self.sliceCount + 1)
    }

    /// Adds one finished exchange.
    mutating func add(at time: Int64, latency: Int64, failed: Bool, age: Int64) {
        let start = time - time % sliceLength
        let index = Int((start / sliceLength) % Int64(slices.count))
        if slices[index].start != start {
            slices[index] = Slice(start: start)
        }
        slices[index].count += 1
        if failed { slices[index].failures += 1 }
        slices[index].maxAge = max(slices[index].maxAge, age)
        slices[index].histogram.add(latency)
    }

    /// What the window holds at `now`: the slices that started within the last `window`.
    func summary(at now: Int64) -> Summary {
        var summary = Summary()
        for slice in slices where slice.start >= 0 && slice.start > now - window && slice.start <= now {
            summary.count += slice.count
            summary.failures += slice.failures
            summary.maxAge = max(summary.maxAge, slice.maxAge)
            summary.histogram.merge(slice.histogram)
        }
        return summary
    }

    struct Summary {
        var count = 0
        var failures = 0
        var maxAge: Int64 = 0
        var histogram = LatencyHistogram()
    }
}

/// Latencies in log-spaced buckets (5% apart, from 10µs to about an hour): percentiles to
/// within 2.5% in constant space.
struct LatencyHistogram {
    static let bucketCount = 400
    static let base = 10.0
    static let factor = 1.05
    private(set) var counts: [UInt32] = []
    private(set) var total = 0
    private(set) var maximum: Int64 = 0

    static func bucket(_ micros: Int64) -> Int {
        guard Double(micros) > base else { return 0 }
        return min(bucketCount - 1, Int((log(Double(micros) / base) / log(factor)).rounded(.up)))
    }

    /// The middle of a bucket, in microseconds.
    static func value(ofBucket index: Int) -> Int64 {
        guard index > 0 else { return Int64(base) }
        let upper = base * pow(factor, Double(index))
        return Int64((upper / factor + upper) / 2)
    }

    mutating func add(_ micros: Int64) {
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
        counts[Self.bucket(micros)] &+= 1
        total += 1
        maximum = max(maximum, micros)
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard other.total > 0 else { return }
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
        for index in 0..<Self.bucketCount { counts[index] &+= other.counts[index] }
        total += other.total
        maximum = max(maximum, other.maximum)
    }

    /// The latency below which `percentile` percent of the samples fall; nil without samples.
    func percentile(_ percentile: Double) -> Int64? {
        guard total > 0 else { return nil }
        let rank = max(1, Int((percentile / 100 * Double(total)).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += Int(count)
            if seen >= rank { return min(maximum, Self.value(ofBucket: index)) }
        }
        return maximum
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif


