// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

#if canImport(Glibc)
import Glibc
#endif
import CoreMetrics
import Synchronization

/// How many connections the listener keeps open when the config does not say.
enum ListenerLimits {
    /// The process's soft limit on open descriptors.
    static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return 65_536 }
        return Int(clamping: limit.rlim_cur)
    }

    /// Three quarters of the descriptor limit, leaving at least 256 descriptors to backends,
    /// the audit and state stores and files; at least 16 and at most 65,536 (each connection
    /// also costs memory).
    static func defaultMaxConnections(openFiles: Int = openFileLimit()) -> Int {
        let headroom = max(256, openFiles / 4)
        return min(65_536, max(16, openFiles - headroom))
    }
}

/// Why the listener turned a connection or request away, as counted in
/// `switchboard_http_rejected_total{reason}`.
enum RejectionReason: String, CaseIterable, Sendable {
    /// The listener had `http.max-connections` open: closed at once.
    case connectionLimit = "connection-limit"
    /// The head did not arrive within `http.header-timeout`: 408.
    case headerTimeout = "header-timeout"
    /// The body did not arrive within `http.body-timeout`: 408.
    case bodyTimeout = "body-timeout"
    /// More header fields or bytes than `http.max-header-count` / `http.max-header-size`: 431.
    case headerTooLarge = "header-too-large"
    /// `http.max-buffered-bodies` was reached: 503.
    case bodyBuffersFull = "body-buffers-full"
    /// Not HTTP/1.x, or framing that cannot be trusted: 400.
    case malformed = "malformed"
}

/// The listener's counts of what it turned away, kept for tests and logs and reported as metrics.
final class ListenerCounters: Sendable {
    private let counts = Mutex<[RejectionReason: Int]>([:])
    private let counters: [RejectionReason: Counter]
    private let openGauge: Meter

    init(metrics: (any MetricsFactory)?) {
        let factory = metrics ?? NOOPMetricsHandler.instance
        var counters: [RejectionReason: Counter] = [:]
        for reason in RejectionReason.allCases {
            counters[reason] = Counter(label: "switchboard_http_rejected_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.counters = counters
        openGauge = Meter(label: "switchboard_http_open_connections", factory: factory)
    }

    /// Counts one rejection; returns how many of this reason there have been, this one included.
    @discardableResult
    func count(_ reason: RejectionReason) -> Int {
        counters[reason]?.increment()
        return counts.withLock { counts in
            counts[reason, default: 0] += 1
            return counts[reason, default: 0]
        }
    }

    /// How many of `reason` there have been.
    func total(_ reason: RejectionReason) -> Int {
        counts.withLock { $0[reason, default: 0] }
    }

    func setOpenConnections(_ count: Int) {
        openGauge.set(count)
    }
}
