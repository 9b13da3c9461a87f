// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore

/// Where audit records live: SQLite by default, PostgreSQL for a cluster.
public protocol AuditStore: Sendable {
    /// Stores `batch` in one transaction (group commit), assigning sequence numbers.
    func append(_ batch: AuditBatch) async throws

    /// The messages that match `query`, newest first, each with its events in order and
    /// its split, multicast and wire-tap children.
    func traces(_ query: TraceQuery) async throws -> [Trace]

    /// Deletes records older than `before` (microseconds since the epoch) and, oldest first,
    /// enough others to bring the store under `maxBytes`.
    ///
    /// - Returns: How many records were deleted.
    func prune(before: Int64?, maxBytes: Int64?) async throws -> Int

    /// Stores an SLA state change.
    func append(_ change: SLAEventRecord) async throws

    /// SLA state changes, newest first.
    func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord]

    /// Releases connections. The store is not used after.
    func close() async throws
}

/// A store that can write from the trail's own writer thread, blocking it, rather than
/// through async calls (SQLite), and that makes what it wrote searchable in a step of its
/// own: the trail acknowledges exchanges once their events are written, and indexes them
/// in larger batches after.
public protocol BlockingAuditStore: AuditStore {
    /// Writes the batch so that none of it is lost once this returns (it is indexed later,
    /// by this node or by whoever opens the store next).
    func appendBlocking(_ batch: AuditBatch) throws

    /// Makes everything written so far searchable, `limit` records per transaction.
    func indexBlocking(limit: Int) throws

    /// Whether this store wrote records it has not indexed since.
    var hasUnindexedRecords: Bool { get }

    /// Whether enough records wait for an index transaction to be worth it now.
    var indexDue: Bool { get }

    /// Whether ``appendBlocking(_:)`` waits for the disk (`audit.sync: full`). One that only
    /// hands the bytes to the kernel is quick enough to run on an event loop.
    var waitsForDisk: Bool { get }
}

extension AuditStore {
    /// Stores `records` in one transaction, grouped by message as the trail groups events.
    public func append(_ records: [AuditRecord]) async throws {
        try await append(AuditBatch(records: records))
    }
}

/// A change of a route's SLA state, kept in the audit trail.
public struct SLAEventRecord: Sendable, Equatable, Codable {
    public var routeID: String
    /// The objective: `p95`, `errors`, `throughput`, `max-age`.
    public var objective: String
    /// `breached` or `recovered`.
    public var state: String
    /// The measured value and the target, in the objective's unit, as text (`212ms`, `1.5%`).
    public var value: String
    public var target: String
    /// Microseconds since the Unix epoch.
    public var at: Int64

    public init(routeID: String, objective: String, state: String, value: String, target: String, at: Int64) {
        self.routeID = routeID
        self.objective = objective
        self.state = state
        self.value = value
        self.target = target
        self.at = at
    }
}

/// What `switchboard trace` asks for. Every filter is optional; they combine with AND.
public struct TraceQuery: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case ok
        case failed
    }

    /// One message by id; the other filters are ignored.
    public var messageID: String?
    public var correlationID: String?
    public var routeID: String?
    public var status: Status?
    /// Entered at or after, microseconds since the epoch.
    public var since: Int64?
    /// Entered before, microseconds since the epoch.
    public var until: Int64?
    /// A header the message arrived with (name compared without case, value exactly).
    public var header: (name: String, value: String)?
    public var limit: Int
    /// Only messages finished after this sequence number (for `--follow`).
    public var afterSequence: Int64?

    public init(
        messageID: String? = nil, correlationID: String? = nil, routeID: String? = nil, status: Status? = nil,
        since: Int64? = nil, until: Int64? = nil, header: (name: String, value: String)? = nil, limit: Int = 20,
        afterSequence: Int64? = nil
    ) {
        self.messageID = messageID
        self.correlationID = correlationID
        self.routeID = routeID
        self.status = status
        self.since = since
        self.until = until
        self.header = header
        self.limit = limit
        self.afterSequence = afterSequence
    }

    public static func == (lhs: TraceQuery, rhs: TraceQuery) -> Bool {
        lhs.messageID == rhs.messageID && lhs.correlationID == rhs.correlationID && lhs.routeID == rhs.routeID
            && lhs.status == rhs.status && lhs.since == rhs.since && lhs.until == rhs.until
            && lhs.header?.name == rhs.header?.name && lhs.header?.value == rhs.header?.value
            && lhs.limit == rhs.limit && lhs.afterSequence == rhs.afterSequence
    }
}

/// One message's trace: its events and its children's.
public struct Trace: Sendable, Equatable, Codable {
    public var messageID: String
    public var events: [AuditRecord]
    public var children: [Trace]

    public init(messageID: String, events: [AuditRecord], children: [Trace] = []) {
        self.messageID = messageID
        self.events = events
        self.children = children
    }

    /// The entry route's end row, or the last route row.
    private var outcomeRow: AuditRecord? {
        events.last { $0.isRoute && $0.entry && $0.phase != "started" } ?? events.last { $0.isRoute && $0.phase != "started" }
    }

    public var correlationID: String? { events.first?.correlationID }
    public var parentID: String? { events.first?.parentID }
    public var traceID: String? { events.first { $0.traceID != nil }?.traceID }
    /// The route the message entered by.
    public var routeID: String? { (events.first { $0.isRoute && $0.entry } ?? events.first)?.routeID }
    /// Whether the source was refused its acknowledgement although the route completed
    /// (its events were not stored in time): in whatever order the events were stored.
    public var notAcknowledged: Bool {
        events.contains { $0.isRoute && $0.entry && $0.detail == ExchangeEvent.notAcknowledged }
    }

    /// `ok`, `failed` (also when the source was not acknowledged), or `in-flight` while the
    /// entry route has not ended.
    public var status: String {
        if notAcknowledged { return "failed" }
        guard let row = outcomeRow else {
            return events.contains { $0.phase == "failed" } ? "failed" : (events.contains { $0.isRoute } ? "in-flight" : "ok")
        }
        return row.phase == "failed" ? "failed" : "ok"
    }
    public var startedAt: Int64? { events.map(\.startedAt).min() }
    public var durationMicros: Int64? { outcomeRow?.durationMicros }
    /// Sequence of the entry route's end row, which `--follow` pages by.
    public var entrySequence: Int64? { events.last { $0.isRoute && $0.entry && $0.phase != "started" }?.sequence }
}

/// The order a trace's events are shown in: by start time, a route's start before its end
/// and its steps, and a parent (route, choice) before the steps inside it.
func timelineOrder(_ events: [AuditRecord]) -> [AuditRecord] {
    // A route's end row carries a start computed from its duration, which can fall a few
    // microseconds either side of the start row's own time: sort it by the start row's.
    var keys = events.map(\.startedAt)
    var starts = events.indices.filter { events[$0].isRoute && events[$0].phase == "started" }
    for index in events.indices where events[index].isRoute && events[index].phase != "started" {
        let end = events[index]
        let match = starts
            .filter { events[$0].routeID == end.routeID && abs(events[$0].startedAt - end.startedAt) < 5_000 }
            .min { abs(events[$0].startedAt - end.startedAt) < abs(events[$1].startedAt - end.startedAt) }
        if let match {
            keys[index] = events[match].startedAt
            starts.removeAll { $0 == match }
        }
    }
    func rank(_ record: AuditRecord) -> Int {
        guard record.isRoute else { return 2 + (record.stepPath?.split(separator: ".").count ?? 0) }
        return record.phase == "started" ? 0 : 1
    }
    return events.indices.sorted { a, b in
        if keys[a] != keys[b] { return keys[a] < keys[b] }
        let rankA = rank(events[a]), rankB = rank(events[b])
        if rankA != rankB { return rankA < rankB }
        return (events[a].sequence ?? 0, a) < (events[b].sequence ?? 0, b)
    }.map { events[$0] }
}

extension TraceQuery {
    /// The query the admin API's `GET /admin/traces` parameters describe, as the CLI sends
    /// them: `id`, `correlation`, `route`, `status`, `since`, `until`, `header` (`K=V`),
    /// `limit`, `after`. Times are durations back from `now` (`10m`) or RFC 3339 timestamps.
    ///
    /// - Throws: ``TraceQueryError`` naming the parameter that is wrong.
    public init(parameters: [String: String], now: Int64 = wallClockMicroseconds()) throws {
        self.init()
        for (name, value) in parameters {
            switch name {
            case "id": messageID = value
            case "correlation": correlationID = value
            case "route": routeID = value
            case "status":
                guard let status = Status(rawValue: value) else { throw TraceQueryError("status must be ok or failed, found '\(value)'") }
                self.status = status
            case "since": since = try parseTimeBound(value, name: name, now: now)
            case "until": until = try parseTimeBound(value, name: name, now: now)
            case "header":
                guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                    throw TraceQueryError("header must be NAME=VALUE, found '\(value)'")
                }
                header = (String(value[..<equals]), String(value[value.index(after: equals)...]))
            case "limit":
                guard let count = Int(value), count > 0 else { throw TraceQueryError("limit must be a positive integer, found '\(value)'") }
                limit = min(count, 10_000)
            case "after":
                guard let sequence = Int64(value) else { throw TraceQueryError("after must be a sequence number, found '\(value)'") }
                afterSequence = sequence
            default:
                throw TraceQueryError("unknown parameter '\(name)'; expected id, correlation, route, status, since, until, header, limit or after")
            }
        }
    }
}

/// Parses `10m` (that long before `now`) or an RFC 3339 timestamp, to microseconds since the epoch.
public func parseTimeBound(_ text: String, name: String, now: Int64 = wallClockMicroseconds()) throws -> Int64 {
    if let duration = parseDuration(text) {
        return now - Int64(duration.components.seconds) * 1_000_000 - duration.components.attoseconds / 1_000_000_000_000
    }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) {
        return Int64(date.timeIntervalSince1970 * 1_000_000)
    }
    throw TraceQueryError("\(name) must be a duration such as 10m or a time such as 2026-11-21T10:00:00Z, found '\(text)'")
}

/// A trace query parameter is wrong.
extension TraceQuery {
    /// The traces a listing shows: a message that was not acknowledged has a second end row
    /// (failed) beside its route's (completed), so rows found by status are checked against
    /// the whole trace.
    func keep(_ traces: [Trace]) -> [Trace] {
        guard messageID == nil, let status else { return traces }
        return traces.filter { $0.status == status.rawValue }
    }
}

extension Array where Element == String {
    /// The ids once each, in their first place.
    func uniqued() -> [String] {
        var seen = Set<String>()
        return filter { seen.insert($0).inserted }
    }
}

public struct TraceQueryError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
