// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
import SwitchboardSLA
import Testing

/// The per-route series registry writes Prometheus text as swift-prometheus does, and takes
/// tens of thousands of series.
struct SeriesRegistryTests {
    static func text(_ registry: SeriesRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func countersGaugesAndHistogramsAreWrittenAsPrometheusText() {
        let registry = SeriesRegistry()
        Counter(label: "messages_total", dimensions: [("route", "a"), ("outcome", "ok")], factory: registry).increment(by: 3)
        Counter(label: "messages_total", dimensions: [("route", "b\"\\\n"), ("outcome", "ok")], factory: registry).increment()
        // The same label set is the same series.
        Counter(label: "messages_total", dimensions: [("route", "a"), ("outcome", "ok")], factory: registry).increment()
        let gauge = Meter(label: "inflight", dimensions: [("route", "a")], factory: registry)
        gauge.set(4)
        gauge.decrement(by: 1.5)
        let timer = Timer(label: "duration_seconds", dimensions: [("route", "a")], factory: registry)
        timer.recordNanoseconds(7_812_500)
        timer.recordSeconds(3)
        timer.recordSeconds(60)
        #expect(Self.text(registry) == """
        # TYPE messages_total counter
        messages_total{route="a",outcome="ok"} 4
        messages_total{route="b\\"\\\\\\n",outcome="ok"} 1
        # TYPE inflight gauge
        inflight{route="a"} 2.5
        # TYPE duration_seconds histogram
        duration_seconds_bucket{route="a",le="0.005"} 0
        duration_seconds_bucket{route="a",le="0.01"} 1
        duration_seconds_bucket{route="a",le="0.025"} 1
        duration_seconds_bucket{route="a",le="0.05"} 1
        duration_seconds_bucket{route="a",le="0.1"} 1
        duration_seconds_bucket{route="a",le="0.25"} 1
        duration_seconds_bucket{route="a",le="0.5"} 1
        duration_seconds_bucket{route="a",le="1.0"} 1
        duration_seconds_bucket{route="a",le="2.5"} 1
        duration_seconds_bucket{route="a",le="5.0"} 2
        duration_seconds_bucket{route="a",le="10.0"} 2
        duration_seconds_bucket{route="a",le="+Inf"} 3
        duration_seconds_sum{route="a"} 63.0078125
        duration_seconds_count{route="a"} 3

        """)
    }

    @Test func destroyedSeriesAreNoLongerWritten() {
        let registry = SeriesRegistry()
        let kept = Counter(label: "c", dimensions: [("k", "1")], factory: registry)
        let gone = Counter(label: "c", dimensions: [("k", "2")], factory: registry)
        kept.increment()
        gone.destroy()
        #expect(Self.text(registry) == "# TYPE c counter\nc{k=\"1\"} 1\n")
    }

    @Test func twentyThousandRoutesOfSeriesAreAllKept() {
        let registry = SeriesRegistry()
        for index in 0..<20_000 {
            Counter(label: "switchboard_route_messages_total", dimensions: [("route", "r\(index)"), ("outcome", "ok")], factory: registry).increment()
            Meter(label: "switchboard_inflight_exchanges", dimensions: [("route", "r\(index)")], factory: registry).set(index)
        }
        let lines = Self.text(registry).split(separator: "\n")
        #expect(lines.count == 2 + 40_000)
        #expect(lines.contains(#"switchboard_route_messages_total{route="r19999",outcome="ok"} 1"#))
        #expect(lines.contains(#"switchboard_inflight_exchanges{route="r12345"} 12345"#))
    }
}
