// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Prints a trace as a tree: the entry route, each step with its offset from the start,
/// duration, outcome and sizes, the branch a choice took, the reply a `to` got, what a step
/// changed, the error of a failed step, routes called on the way, and split children
/// (collapsed to counts unless expanded).
public struct TraceRenderer: Sendable {
    public var color: Bool
    public var expand: Bool

    public init(color: Bool = false, expand: Bool = false) {
        self.color = color
        self.expand = expand
    }

    /// A node of the tree: a route invocation or a step.
    final class Node {
        let record: AuditRecord
        /// The route's start row (input snapshot), for route nodes.
        var started: AuditRecord?
        var children: [Node] = []

        init(record: AuditRecord) {
            self.record = record
        }

        var start: Int64 { record.startedAt }
        var end: Int64 { record.durationMicros.map { record.startedAt + $0 } ?? Int64.max }
    }

    /// Builds the tree of one message's events: the entry route at the root.
    static func tree(_ events: [AuditRecord]) -> [Node] {
        let ordered = timelineOrder(events)
        // Route invocations: pair each end row with the start row of the same route that
        // began closest to it (the two clocks differ by microseconds).
        var invocations: [Node] = []
        var openStarts = ordered.filter { $0.isRoute && $0.phase == "started" }
        for record in ordered where record.isRoute && record.phase != "started" {
            let node = Node(record: record)
            let match = openStarts.indices
                .filter { openStarts[$0].routeID == record.routeID && abs(openStarts[$0].startedAt - record.startedAt) < 5_000 }
                .min { abs(openStarts[$0].startedAt - record.startedAt) < abs(openStarts[$1].startedAt - record.startedAt) }
            if let match {
                node.started = openStarts.remove(at: match)
            }
            invocations.append(node)
        }
        for started in openStarts {
            // Still running (or the node stopped mid-route).
            let node = Node(record: started)
            node.started = started
            invocations.append(node)
        }
        invocations.sort { $0.start < $1.start }
        // Steps go to the invocation of their route that was running when they started,
        // nested by step path (`0.when[1].0` sits under `0`).
        var stepNodes: [Node] = []
        var byInvocation: [ObjectIdentifier?: [Node]] = [:]
        var orphans: [Node] = []
        for record in ordered where !record.isRoute {
            let node = Node(record: record)
            stepNodes.append(node)
            let candidates = invocations.filter { $0.record.routeID == record.routeID }
            // A split child has step rows only: its steps are roots of its own tree.
            let owner = candidates.last(where: { $0.start <= record.startedAt + 1 }) ?? candidates.first
            let key = owner.map(ObjectIdentifier.init)
            let siblings = byInvocation[key, default: []]
            let path = record.stepPath ?? ""
            if let parent = siblings.last(where: { path.hasPrefix(($0.record.stepPath ?? "") + ".") }) {
                parent.children.append(node)
            } else if let owner {
                owner.children.append(node)
            } else {
                orphans.append(node)
            }
            byInvocation[key, default: []].append(node)
        }
        // A route called on the way sits under the step that called it.
        var roots: [Node] = orphans
        for invocation in invocations {
            if invocation.record.entry || invocation === invocations.first {
                roots.append(invocation)
                continue
            }
            let callers = stepNodes.filter { ($0.record.stepKind == "route" || $0.record.stepKind == "to" || $0.record.stepKind == "wire-tap" || $0.record.stepKind == "multicast")
                && $0.start <= invocation.start + 1 && $0.end + 1 >= invocation.end }
            if let caller = callers.max(by: { $0.start < $1.start }) {
                caller.children.append(invocation)
            } else if let root = roots.first {
                root.children.append(invocation)
            } else {
                roots.append(invocation)
            }
        }
        return roots
    }

    /// The text of a trace, one line per event, ending with a newline.
    public func render(_ trace: Trace) -> String {
        var out = ""
        let origin = ([trace.startedAt] + trace.children.map(\.startedAt)).compactMap { $0 }.min() ?? 0
        header(trace, into: &out)
        body(trace, origin: origin, indent: "", into: &out)
        return out
    }

    private func header(_ trace: Trace, into out: inout String) {
        let status = trace.status
        out += bold("message \(trace.messageID)")
        if let route = trace.routeID { out += "  route \(route)" }
        out += "  " + paint(status, status == "failed" ? "31" : status == "ok" ? "32" : "33")
        if let duration = trace.durationMicros { out += "  " + formatMicros(duration) }
        out += "\n"
        var facts: [String] = []
        if let start = trace.startedAt { facts.append("at \(formatTimestamp(start))") }
        if let correlation = trace.correlationID, correlation != trace.messageID { facts.append("correlation \(correlation)") }
        if let parent = trace.parentID { facts.append("parent \(parent)") }
        if let traceID = trace.traceID { facts.append("trace \(traceID)") }
        if !facts.isEmpty { out += dim("  " + facts.joined(separator: "  ")) + "\n" }
    }

    private func body(_ trace: Trace, origin: Int64, indent: String, into out: inout String) {
        let roots = Self.tree(trace.events)
        let snapshots = Self.headerSnapshots(trace.events)
        for (index, root) in roots.enumerated() {
            line(root, origin: origin, snapshots: snapshots, prefix: indent, isLast: index == roots.count - 1 && trace.children.isEmpty, into: &out)
        }
        guard !trace.children.isEmpty else { return }
        let failed = trace.children.filter { $0.status == "failed" }.count
        var summary = "\(trace.children.count) child message\(trace.children.count == 1 ? "" : "s")"
        summary += failed == 0 ? " (all ok)" : " (\(paint("\(failed) failed", "31")), \(trace.children.count - failed) ok)"
        if !expand { summary += dim("  --expand to show") }
        out += indent + "└─ " + summary + "\n"
        guard expand else { return }
        for child in trace.children {
            out += indent + "   " + dim("child \(child.messageID)") + "  " + paint(child.status, child.status == "failed" ? "31" : "32") + "\n"
            body(child, origin: origin, indent: indent + "     ", into: &out)
        }
    }

    /// The message's headers over time: (when, pairs), from route starts and from the ends
    /// of steps that changed them.
    static func headerSnapshots(_ events: [AuditRecord]) -> [(at: Int64, pairs: [[String]])] {
        events.compactMap { record -> (Int64, [[String]])? in
            guard let pairs = record.headerPairs else { return nil }
            let at = record.isRoute ? record.startedAt : record.startedAt + (record.durationMicros ?? 0)
            return (at, pairs)
        }.sorted { $0.0 < $1.0 }
    }

    /// What a step did to the headers: `+Name=value` added, `~Name=value` changed, `-Name` removed.
    static func headerChanges(_ record: AuditRecord, snapshots: [(at: Int64, pairs: [[String]])]) -> String? {
        guard let after = record.headerPairs else { return nil }
        let before = snapshots.last { $0.at <= record.startedAt }?.pairs ?? []
        func value(_ name: String, in pairs: [[String]]) -> String? {
            pairs.first { $0.first?.lowercased() == name.lowercased() }.flatMap { $0.count > 1 ? $0[1] : nil }
        }
        func shown(_ text: String) -> String { text.count > 40 ? text.prefix(40) + "…" : text }
        var changes: [String] = []
        for pair in after where pair.count == 2 {
            switch value(pair[0], in: before) {
            case nil: changes.append("+\(pair[0])=\(shown(pair[1]))")
            case let old? where old != pair[1]: changes.append("~\(pair[0])=\(shown(pair[1]))")
            default: break
            }
        }
        for pair in before where pair.count == 2 && value(pair[0], in: after) == nil {
            changes.append("-\(pair[0])")
        }
        return changes.isEmpty ? nil : changes.joined(separator: " ")
    }

    private func line(_ node: Node, origin: Int64, snapshots: [(at: Int64, pairs: [[String]])], prefix: String, isLast: Bool, into out: inout String) {
        let record = node.record
        let connector = prefix.isEmpty && record.isRoute ? "" : (isLast ? "└─ " : "├─ ")
        var text = dim(String(format: "+%@", formatMicros(max(0, record.startedAt - origin)))) + "  "
        if record.isRoute {
            text += bold("route \(record.routeID)")
        } else {
            text += "\(record.stepPath ?? "?") " + bold(record.stepKind ?? "step")
            if let endpoint = record.endpoint { text += " \(endpoint)" }
        }
        switch record.phase {
        case "failed": text += "  " + paint("FAILED", "31")
        case "started": text += "  " + paint("in flight", "33")
        default: text += "  " + paint("ok", "32")
        }
        if let duration = record.durationMicros { text += "  " + formatMicros(duration) }
        if let sizeIn = record.bodySizeIn, record.phase != "failed" {
            text += dim("  \(formatBytes(sizeIn)) → \(formatBytes(record.bodySize))")
        } else if record.phase == "started" || node.started != nil && record.bodySizeIn == nil {
            text += dim("  \(formatBytes(record.bodySize))")
        }
        if let detail = record.detail { text += "  " + paint(detail, "36") }
        var notes: [String] = []
        if let input = node.started, input.headers != nil {
            notes.append("received \(input.headerPairs?.count ?? 0) headers, body \(bodyNote(input))")
        }
        if !record.isRoute {
            if let changes = Self.headerChanges(record, snapshots: snapshots) { notes.append("headers \(changes)") }
            if record.bodyChanged { notes.append("body changed: \(bodyNote(record))") }
        }
        out += prefix + connector + text + "\n"
        let childPrefix = prefix + (connector.isEmpty ? "" : (isLast ? "   " : "│  "))
        for note in notes {
            out += childPrefix + (node.children.isEmpty ? "   " : "│  ") + dim(note) + "\n"
        }
        if let error = record.error {
            out += childPrefix + (node.children.isEmpty ? "   " : "│  ") + paint("error: \(error)", "31") + "\n"
        }
        for (index, child) in node.children.enumerated() {
            line(child, origin: origin, snapshots: snapshots, prefix: childPrefix, isLast: index == node.children.count - 1, into: &out)
        }
    }

    private func bodyNote(_ record: AuditRecord) -> String {
        var parts = [formatBytes(record.bodySize)]
        if let hash = record.bodyHash { parts.append("sha256:\(hash.prefix(12))…") }
        if let prefix = record.bodyPrefix, !prefix.isEmpty {
            var preview = String(decoding: prefix.prefix(60), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "⏎").replacingOccurrences(of: "\r", with: "")
            if prefix.count > 60 || record.bodySize > prefix.count { preview += "…" }
            parts.append("\"\(preview)\"")
        }
        return parts.joined(separator: " ")
    }

    private func paint(_ text: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private func bold(_ text: String) -> String { paint(text, "1") }
    private func dim(_ text: String) -> String { paint(text, "2") }
}

/// `850µs`, `12.4ms`, `3.20s`.
public func formatMicros(_ micros: Int64) -> String {
    if micros < 1000 { return "\(micros)µs" }
    if micros < 1_000_000 { return String(format: "%.1fms", Double(micros) / 1000) }
    return String(format: "%.2fs", Double(micros) / 1_000_000)
}

/// `512 B`, `4.0 KiB`, `12.5 MiB`.
public func formatBytes(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1 << 20 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
    return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
}

/// `2026-11-21 10:15:02.123 UTC`.
public func formatTimestamp(_ micros: Int64) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
    return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000)) + " UTC"
}
