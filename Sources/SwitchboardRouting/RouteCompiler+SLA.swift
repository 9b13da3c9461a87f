// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore

// A route's `sla:`: objectives, window and alert target.
extension RouteCompiler {
    /// `sla: { p95: 150ms, errors: 1%, throughput: 10/s, max-age: 15m, window: 5m, alert: … }`.
    func compileSLA(_ node: ConfigNode) -> (SLAPolicy?, SLAAlertTarget?) {
        guard let entries = node.mapping else {
            log.error(node.location, "'sla' must be a mapping such as { p95: 150ms, errors: 1% }, found \(node.kindDescription)")
            return (nil, nil)
        }
        var policy = SLAPolicy()
        var alert: SLAAlertTarget?
        let diagnosticsBefore = log.diagnostics.count
        for entry in entries {
            guard let text = entry.value.scalar, !entry.value.isNull else {
                log.error(entry.value.location, "'sla.\(entry.key)' expects a single value, found \(entry.value.kindDescription)")
                continue
            }
            let at = entry.value.contentLocation
            switch entry.key {
            case "errors":
                if let rate = SLAPolicy.parseRate(text) {
                    policy.errorRate = rate
                } else {
                    log.error(at, "'sla.errors' expects a share of failed exchanges such as 1% or 0.01, found '\(text)'")
                }
            case "throughput":
                if let rate = SLAPolicy.parseThroughput(text) {
                    policy.minThroughput = rate
                } else {
                    log.error(at, "'sla.throughput' expects a minimum rate such as 10/s, 600/m or 1000/h, found '\(text)'")
                }
            case "max-age":
                if let duration = parseDuration(text) {
                    policy.maxAge = duration
                } else {
                    log.error(at, "'sla.max-age' expects a duration such as 15m, found '\(text)'")
                }
            case "window":
                if let duration = parseDuration(text), duration >= .seconds(10) {
                    policy.window = duration
                } else {
                    log.error(at, "'sla.window' expects a duration of at least 10s such as 5m, found '\(text)'")
                }
            case "alert":
                policy.alert = text
                if text.hasPrefix("route:") {
                    let target = String(text.dropFirst("route:".count))
                    routeCalls.append((target, at))
                    alert = .route(target)
                } else if let (endpoint, adapter) = resolveEndpoint(entry.value, role: .producer, what: "sla.alert") {
                    do {
                        alert = .producer(try adapter.makeProducer(endpoint), endpoint.description)
                    } catch {
                        log.error(at, "\(error)")
                    }
                }
            default:
                if let percentile = SLAPolicy.parsePercentileKey(entry.key) {
                    if let duration = parseDuration(text) {
                        policy.latency.append(.init(percentile: percentile, target: duration, name: entry.key))
                    } else {
                        log.error(at, "'sla.\(entry.key)' expects a latency such as 150ms, found '\(text)'")
                    }
                } else {
                    let known = ["p50", "p95", "p99", "errors", "throughput", "max-age", "window", "alert"]
                    log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "sla key", known: known))
                }
            }
        }
        if policy.isEmpty, log.diagnostics.count == diagnosticsBefore {
            log.error(node.location, "'sla' sets no objective; give at least one of pNN (p95: 150ms), errors, throughput or max-age")
            return (nil, nil)
        }
        return (policy, alert)
    }
}
