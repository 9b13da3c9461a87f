// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore

/// How a failed step is tried again: `on-error.retry`.
///
/// `attempts` counts every run of the step, the first included: `attempts: 3` is one run and
/// at most two retries. The wait before retry n (from 1) is `backoff × factor^(n-1)`, capped
/// at `max-backoff`; with `jitter` it is a random time between half of that and all of it.
public struct RetryPolicy: Sendable, Equatable {
    public var attempts = 3
    public var backoff: Duration = .milliseconds(200)
    public var factor = 2.0
    public var maxBackoff: Duration = .seconds(30)
    public var jitter = true
    /// The failure kinds (``ErrorKind``) retried; others fail at once.
    public var on: Set<String> = ErrorKind.retriedByDefault

    public init() {}

    /// The wait before retry number `retry` (1 for the first retry).
    public func delay(beforeRetry retry: Int) -> Duration {
        var seconds = Double(backoff.components.seconds) + Double(backoff.components.attoseconds) / 1e18
        seconds *= pow(factor, Double(max(0, retry - 1)))
        let cap = Double(maxBackoff.components.seconds) + Double(maxBackoff.components.attoseconds) / 1e18
        seconds = min(seconds, cap)
        if jitter {
            seconds *= Double.random(in: 0.5...1.0)
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// Whether a failure of `kind` after `attempt` runs is run again.
    func retries(_ kind: String, after attempt: Int) -> Bool {
        attempt < attempts && on.contains(kind)
    }
}

/// A route's (or the node's default) `on-error`, as written: retry, then the dead letter
/// channel.
public struct ErrorPolicy: Sendable {
    public enum DeadLetter: Sendable, Equatable {
        /// The failure goes back to the source (the HTTP caller, the file's `.error/` folder).
        case none
        /// The node's durable dead letter store (`dead-letter: true`).
        case store
        /// Hand the failed message to this endpoint instead.
        case endpoint(String, SourceLocation)
    }

    public var retry: RetryPolicy?
    public var deadLetter: DeadLetter = .none
    /// The kinds of failure that go to the dead letter channel (`dead-letter: { on: […] }`);
    /// nil: every kind, but a `validation` failure of a request-reply exchange, whose caller
    /// already has its answer (400).
    public var deadLetterOn: Set<String>?

    public init(retry: RetryPolicy? = nil, deadLetter: DeadLetter = .none, deadLetterOn: Set<String>? = nil) {
        self.retry = retry
        self.deadLetter = deadLetter
        self.deadLetterOn = deadLetterOn
    }

    /// Whether a failure of `kind` goes to the dead letter channel under `on`.
    static func deadLetters(_ kind: String, pattern: ExchangePattern, on: Set<String>?) -> Bool {
        if let on { return on.contains(kind) }
        return !(pattern == .inOut && kind == ErrorKind.validation)
    }

    static let keys = ["retry", "dead-letter"]
    static let retryKeys = ["attempts", "backoff", "factor", "max-backoff", "jitter", "on"]

    /// Reads `on-error: { retry: { attempts, backoff, factor, max-backoff, jitter, on }, dead-letter }`.
    ///
    /// - Parameter key: How the mapping is named in errors (`on-error`).
    /// - Returns: nil when the node has errors, which are added to `log`.
    public static func parse(_ node: ConfigNode, key: String = "on-error", log: inout DiagnosticLog) -> ErrorPolicy? {
        guard let entries = node.mapping else {
            log.error(node.location, "'\(key)' must be a mapping such as { retry: { attempts: 3, backoff: 200ms }, dead-letter: true }, found \(node.kindDescription)")
            return nil
        }
        let before = log.diagnostics.count
        var policy = ErrorPolicy()
        for entry in entries {
            switch entry.key {
            case "retry":
                policy.retry = parseRetry(entry.value, key: "\(key).retry", log: &log)
            case "dead-letter":
                var target = entry.value
                if let fields = entry.value.mapping {
                    // { to: true | URI, on: [kinds] }
                    guard let to = entry.value["to"] else {
                        log.error(entry.value.location, "'\(key).dead-letter' as a mapping needs 'to': true (the node's dead letter store) or an endpoint URI")
                        continue
                    }
                    target = to
                    for field in fields where field.key != "to" {
                        guard field.key == "on" else {
                            log.error(field.keyNode.location, unknownKeyMessage(field.key, what: "\(key).dead-letter key", known: ["to", "on"]))
                            continue
                        }
                        let items = field.value.sequence ?? [field.value]
                        var kinds = Set<String>()
                        for item in items {
                            guard let kind = item.scalar, ErrorKind.all.contains(kind) else {
                                log.error(item.contentLocation, "'\(key).dead-letter.on' lists kinds of failure: \(ErrorKind.all.joined(separator: ", ")), found \(item.kindDescription)")
                                continue
                            }
                            kinds.insert(kind)
                        }
                        policy.deadLetterOn = kinds
                    }
                }
                guard let text = target.scalar, !target.isNull else {
                    log.error(target.location, "'\(key).dead-letter' expects true, false, an endpoint URI, or { to, on }, found \(target.kindDescription)")
                    continue
                }
                switch parseBool(text) {
                case true?: policy.deadLetter = .store
                case false?: policy.deadLetter = .none
                case nil:
                    if EndpointURI.scheme(of: text) != nil {
                        policy.deadLetter = .endpoint(text, target.contentLocation)
                    } else {
                        log.error(target.contentLocation, "'\(key).dead-letter' expects true (the node's dead letter store), false, or an endpoint URI such as file:var/dead, found '\(text)'")
                    }
                }
            default:
                log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "\(key) key", known: keys))
            }
        }
        return log.diagnostics.count == before ? policy : nil
    }

    private static func parseRetry(_ node: ConfigNode, key: String, log: inout DiagnosticLog) -> RetryPolicy? {
        guard let entries = node.mapping else {
            log.error(node.location, "'\(key)' must be a mapping such as { attempts: 3, backoff: 200ms, factor: 2, jitter: true }, found \(node.kindDescription)")
            return nil
        }
        var retry = RetryPolicy()
        for entry in entries {
            let at = entry.value.contentLocation
            if entry.key == "on" {
                let items = entry.value.sequence ?? [entry.value]
                var kinds: Set<String> = []
                for item in items {
                    guard let kind = item.scalar, !item.isNull else {
                        log.error(item.location, "'\(key).on' lists failure kinds, found \(item.kindDescription)")
                        continue
                    }
                    if !ErrorKind.all.contains(kind) {
                        log.error(item.contentLocation, unknownKeyMessage(kind, what: "failure kind", known: ErrorKind.all))
                    }
                    kinds.insert(kind)
                }
                retry.on = kinds
                continue
            }
            guard let text = entry.value.scalar, !entry.value.isNull else {
                log.error(entry.value.location, "'\(key).\(entry.key)' expects a single value, found \(entry.value.kindDescription)")
                continue
            }
            switch entry.key {
            case "attempts":
                if let count = Int(text), (1...100).contains(count) {
                    retry.attempts = count
                } else {
                    log.error(at, "'\(key).attempts' expects the number of runs in all, 1 to 100, found '\(text)'")
                }
            case "backoff", "max-backoff":
                if let duration = parseDuration(text), duration >= .zero {
                    if entry.key == "backoff" { retry.backoff = duration } else { retry.maxBackoff = duration }
                } else {
                    log.error(at, "'\(key).\(entry.key)' expects a duration such as 200ms, found '\(text)'")
                }
            case "factor":
                if let factor = Double(text), factor >= 1, factor <= 10 {
                    retry.factor = factor
                } else {
                    log.error(at, "'\(key).factor' expects a number from 1 to 10, found '\(text)'")
                }
            case "jitter":
                if let flag = parseBool(text) {
                    retry.jitter = flag
                } else {
                    log.error(at, "'\(key).jitter' expects true or false, found '\(text)'")
                }
            default:
                log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "\(key) key", known: retryKeys))
            }
        }
        return retry
    }
}

/// A route's `on-error`, compiled: its retry policy and where dead letters go.
enum DeadLetterTarget: Sendable {
    case store(any DeadLetterStore)
    case producer(any Producer, String)
}
