// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// Which of a message's headers a `to` sends (`headers: { include: [...], exclude: [...] }`,
/// Camel's header filter strategy): names compared without case, `*` standing for any run of
/// characters. The node's own dotted headers are never sent whatever the filter says, and
/// stay on the message for the producer to read.
struct HeaderFilter: Sendable {
    let include: [String]
    let exclude: [String]

    /// Whether the header `name` goes to the endpoint.
    func sends(_ name: String) -> Bool {
        if name.utf8.contains(UInt8(ascii: ".")) { return true }
        if !include.isEmpty, !include.contains(where: { Self.matches($0, name) }) { return false }
        return !exclude.contains { Self.matches($0, name) }
    }

    /// A glob with `*`, without regard to ASCII case.
    static func matches(_ pattern: String, _ name: String) -> Bool {
        let pattern = Array(pattern.lowercased().utf8), name = Array(name.lowercased().utf8)
        // Classic two-pointer glob match with backtracking to the last `*`.
        var p = 0, n = 0, star = -1, mark = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = n
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                n = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// Reads `{ include: [names], exclude: [names] }`.
    static func parse(_ node: ConfigNode, key: String, log: inout DiagnosticLog) -> HeaderFilter? {
        guard let entries = node.mapping else {
            log.error(node.location, "'\(key)' expects { include: [names], exclude: [names] }, found \(node.kindDescription)")
            return nil
        }
        var include: [String] = []
        var exclude: [String] = []
        for entry in entries {
            let names = (entry.value.sequence ?? [entry.value]).compactMap { item -> String? in
                guard let name = item.scalar, !name.isEmpty else {
                    log.error(item.location, "'\(key).\(entry.key)' lists header names (with * for any characters), found \(item.kindDescription)")
                    return nil
                }
                return name
            }
            switch entry.key {
            case "include": include = names
            case "exclude": exclude = names
            default: log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "\(key) key", known: ["include", "exclude"]))
            }
        }
        return HeaderFilter(include: include, exclude: exclude)
    }
}

/// A producer that sends only the headers its filter lets through; the reply gets the others
/// back, so the route goes on with them.
struct FilteredProducer: Producer {
    let producer: any Producer
    let filter: HeaderFilter

    func send(_ exchange: Exchange) async throws -> Exchange {
        var outgoing = exchange
        var held: [Headers.Field] = []
        outgoing.message.headers.removeAll { field in
            guard !filter.sends(field.name) else { return false }
            held.append(field)
            return true
        }
        var reply = try await producer.send(outgoing)
        for field in held where !reply.message.headers.contains(field.name) {
            reply.message.headers.add(field.name, field.value)
        }
        return reply
    }

    func describeReply(_ reply: Exchange) -> String? {
        producer.describeReply(reply)
    }
}
