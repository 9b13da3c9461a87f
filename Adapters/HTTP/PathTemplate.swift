// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// A consumer path such as `/orders/{id}/items`: literal segments and `{name}` captures.
struct PathTemplate: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
    }

    let segments: [Segment]
    let text: String
    /// The template with capture names erased: `/orders/{}` for `/orders/{id}`, so that two
    /// templates that match the same requests have the same shape.
    let shape: String
    /// Whether the template has no captures (and can be looked up by exact path); decided
    /// at load, read for every request.
    let isStatic: Bool

    /// Parses a path template.
    ///
    /// - Throws: ``EndpointError`` for a path that does not start with `/`, or a malformed capture.
    init(_ text: String) throws {
        guard text.hasPrefix("/") else {
            throw EndpointError("an HTTP consumer path must start with '/', as in http:/orders; got '\(text)'", offset: 5)
        }
        var segments: [Segment] = []
        var names: Set<String> = []
        for part in PathTemplate.split(text) {
            if part.hasPrefix("{") || part.hasSuffix("}") || part.contains("{") {
                guard part.hasPrefix("{"), part.hasSuffix("}"), part.count > 2 else {
                    throw EndpointError("'\(part)' in path '\(text)': a capture is a whole segment such as {id}")
                }
                let name = String(part.dropFirst().dropLast())
                guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw EndpointError("'\(part)' in path '\(text)': capture names are letters, digits, '_' or '-'")
                }
                guard names.insert(name).inserted else {
                    throw EndpointError("capture '{\(name)}' appears twice in path '\(text)'")
                }
                segments.append(.parameter(name))
            } else {
                segments.append(.literal(String(part)))
            }
        }
        self.segments = segments
        self.text = text
        self.isStatic = segments.allSatisfy { if case .literal = $0 { true } else { false } }
        self.shape = "/" + segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter: "{}"
            }
        }.joined(separator: "/")
    }

    /// The captures if `path` matches, else nil.
    func match(_ pathSegments: [Substring]) -> [(String, String)]? {
        guard pathSegments.count == segments.count else { return nil }
        var captures: [(String, String)] = []
        for (segment, part) in zip(segments, pathSegments) {
            switch segment {
            case .literal(let text):
                guard part == text else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                captures.append((name, percentDecoded(part) ?? String(part)))
            }
        }
        return captures
    }

    /// Splits a path into segments, ignoring a trailing slash (`/orders/` is `/orders`).
    static func split(_ path: some StringProtocol) -> [Substring] {
        var parts = Substring(path).split(separator: "/", omittingEmptySubsequences: false)
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "", !parts.isEmpty { parts.removeLast() }
        return parts
    }

    /// A path with any trailing slash removed, as the exact-match table keys it.
    static func normalize(_ path: Substring) -> Substring {
        if path.utf8.count > 1, path.utf8.last == UInt8(ascii: "/") { return path.dropLast() }
        return path
    }
}
