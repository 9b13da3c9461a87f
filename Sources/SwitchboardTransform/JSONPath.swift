// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// A JSONPath query (RFC 9535), compiled once and evaluated many times.
///
/// Supports names, wildcards, indexes, slices, descendants, filters with comparisons and
/// logic, and the functions `length`, `count`, `match`, `search` and `value`, with the
/// RFC's well-typedness rules checked at compile time.
public struct JSONPath: Sendable, CustomStringConvertible {
    public let text: String
    let query: JSONPathQuery

    /// Compiles a query.
    ///
    /// - Throws: ``JSONPathError`` naming the problem and its character offset.
    public init(_ text: String) throws {
        self.text = text
        var parser = JSONPathParser(text)
        self.query = try parser.parseWholeQuery()
    }

    /// The values the query selects from `document`, in document order.
    public func select(_ document: JSONValue) -> [JSONValue] {
        query.evaluate(root: document, current: document)
    }

    /// Whether the query can select at most one node (only names and indexes, no
    /// wildcards, slices, filters or descendants).
    public var isSingular: Bool { query.isSingular }

    public var description: String { text }
}

/// A JSONPath that does not compile.
public struct JSONPathError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Character offset of the problem in the query text.
    public var offset: Int

    public var description: String { "\(message) at offset \(offset)" }
}

// MARK: - Syntax tree

struct JSONPathQuery: Sendable {
    var relative: Bool
    var segments: [JSONPathSegment]

    var isSingular: Bool {
        segments.allSatisfy { segment in
            guard !segment.descendant, segment.selectors.count == 1 else { return false }
            switch segment.selectors[0] {
            case .name, .index: return true
            default: return false
            }
        }
    }

    func evaluate(root: JSONValue, current: JSONValue) -> [JSONValue] {
        var nodes = [relative ? current : root]
        for segment in segments {
            var next: [JSONValue] = []
            for node in nodes {
                if segment.descendant {
                    node.forEachDescendantOrSelf { descendant in
                        for selector in segment.selectors {
                            selector.select(from: descendant, root: root, into: &next)
                        }
                    }
                } else {
                    for selector in segment.selectors {
                        selector.select(from: node, root: root, into: &next)
                    }
                }
            }
            nodes = next
            if nodes.isEmpty { break }
        }
        return nodes
    }
}

struct JSONPathSegment: Sendable {
    var descendant: Bool
    var selectors: [JSONPathSelector]
}

enum JSONPathSelector: Sendable {
    case name(String)
    case wildcard
    case index(Int)
    case slice(start: Int?, end: Int?, step: Int?)
    case filter(JSONPathFilter)

    func select(from node: JSONValue, root: JSONValue, into output: inout [JSONValue]) {
        switch self {
        case .name(let name):
            if let value = node[name] { output.append(value) }
        case .wildcard:
            switch node {
            case .array(let items): output.append(contentsOf: items)
            case .object(let members): output.append(contentsOf: members.map(\.value))
            default: break
            }
        case .index(let index):
            guard case .array(let items) = node else { return }
            let resolved = index < 0 ? items.count + index : index
            if resolved >= 0, resolved < items.count { output.append(items[resolved]) }
        case .slice(let start, let end, let step):
            guard case .array(let items) = node else { return }
            for index in sliceIndices(count: items.count, start: start, end: end, step: step) {
                output.append(items[index])
            }
        case .filter(let filter):
            switch node {
            case .array(let items):
                for item in items where filter.test(item, root: root) { output.append(item) }
            case .object(let members):
                for member in members where filter.test(member.value, root: root) { output.append(member.value) }
            default: break
            }
        }
    }
}

/// The indexes a slice selects (RFC 9535 section 2.3.4.2.2).
func sliceIndices(count: Int, start: Int?, end: Int?, step: Int?) -> [Int] {
    let step = step ?? 1
    guard step != 0 else { return [] }
    func normalize(_ value: Int) -> Int { value >= 0 ? value : count + value }
    var indices: [Int] = []
    if step > 0 {
        let lower = min(max(normalize(start ?? 0), 0), count)
        let upper = min(max(normalize(end ?? count), 0), count)
        var index = lower
        while index < upper {
            indices.append(index)
            index += step
        }
    } else {
        let upper = min(max(normalize(start ?? count - 1), -1), count - 1)
        let lower = min(max(normalize(end ?? -count - 1), -1), count - 1)
        var index = upper
        while lower < index {
            indices.append(index)
            index += step
        }
    }
    return indices
}

extension JSONValue {
    /// Visits the value and then its descendants, depth-first, in document order.
    func forEachDescendantOrSelf(_ visit: (JSONValue) -> Void) {
        visit(self)
        switch self {
        case .array(let items): for item in items { item.forEachDescendantOrSelf(visit) }
        case .object(let members): for member in members { member.value.forEachDescendantOrSelf(visit) }
        default: break
        }
    }
}

indirect enum JSONPathFilter: Sendable {
    case or([JSONPathFilter])
    case and([JSONPathFilter])
    case not(JSONPathFilter)
    /// A query used as a test: true when it selects at least one node.
    case exists(JSONPathQuery)
    /// A function used as a test (returns a logical or a node list).
    case function(JSONPathFunctionCall)
    case comparison(JSONPathComparable, JSONPathComparison, JSONPathComparable)

    func test(_ current: JSONValue, root: JSONValue) -> Bool {
        switch self {
        case .or(let terms): return terms.contains { $0.test(current, root: root) }
        case .and(let terms): return terms.allSatisfy { $0.test(current, root: root) }
        case .not(let inner): return !inner.test(current, root: root)
        case .exists(let query): return !query.evaluate(root: root, current: current).isEmpty
        case .function(let call):
            switch call.evaluate(current: current, root: root) {
            case .logical(let value): return value
            case .nodes(let nodes): return !nodes.isEmpty
            case .value(let value): return value != nil
            }
        case .comparison(let lhs, let op, let rhs):
            return op.compare(lhs.value(current: current, root: root), rhs.value(current: current, root: root))
        }
    }
}

enum JSONPathComparable: Sendable {
    case literal(JSONValue)
    case query(JSONPathQuery)
    case function(JSONPathFunctionCall)

    /// The value, or nil for "Nothing" (an empty node list).
    func value(current: JSONValue, root: JSONValue) -> JSONValue? {
        switch self {
        case .literal(let value): return value
        case .query(let query): return query.evaluate(root: root, current: current).first
        case .function(let call):
            if case .value(let value) = call.evaluate(current: current, root: root) { return value }
            return nil
        }
    }
}

enum JSONPathComparison: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="

    func compare(_ lhs: JSONValue?, _ rhs: JSONValue?) -> Bool {
        switch self {
        case .equal: return JSONPathComparison.equal(lhs, rhs)
        case .notEqual: return !JSONPathComparison.equal(lhs, rhs)
        case .less: return JSONPathComparison.less(lhs, rhs)
        case .lessOrEqual: return JSONPathComparison.less(lhs, rhs) || JSONPathComparison.equal(lhs, rhs)
        case .greater: return JSONPathComparison.less(rhs, lhs)
        case .greaterOrEqual: return JSONPathComparison.less(rhs, lhs) || JSONPathComparison.equal(lhs, rhs)
        }
    }

    private static func equal(_ lhs: JSONValue?, _ rhs: JSONValue?) -> Bool {
        switch (lhs, rhs) {
        case (nil, nil): return true
        case (let a?, let b?): return a == b
        default: return false
        }
    }

    private static func less(_ lhs: JSONValue?, _ rhs: JSONValue?) -> Bool {
        switch (lhs, rhs) {
        case (.number(let a)?, .number(let b)?): return a < b
        case (.string(let a)?, .string(let b)?): return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        default: return false
        }
    }
}

/// The three types of RFC 9535's function type system.
enum JSONPathType: Sendable {
    case value
    case logical
    case nodes
}

enum JSONPathFunctionResult {
    /// A JSON value or nil for Nothing.
    case value(JSONValue?)
    case logical(Bool)
    case nodes([JSONValue])
}

enum JSONPathArgument: Sendable {
    case literal(JSONValue)
    case query(JSONPathQuery)
    case logical(JSONPathFilter)
    case function(JSONPathFunctionCall)
}

struct JSONPathFunctionCall: Sendable {
    enum Name: String, Sendable {
        case length, count, match, search, value

        var parameters: [JSONPathType] {
            switch self {
            case .length: [.value]
            case .count, .value: [.nodes]
            case .match, .search: [.value, .value]
            }
        }

        var result: JSONPathType {
            switch self {
            case .length, .count, .value: .value
            case .match, .search: .logical
            }
        }
    }

    var name: Name
    var arguments: [JSONPathArgument]
    /// For `match` and `search` with a literal pattern: the pattern compiled once.
    var compiledPattern: IRegexp?

    func evaluate(current: JSONValue, root: JSONValue) -> JSONPathFunctionResult {
        switch name {
        case .length:
            guard let value = valueArgument(0, current: current, root: root) else { return .value(nil) }
            switch value {
            case .string(let string): return .value(.number(JSONNumber(string.unicodeScalars.count)))
            case .array(let items): return .value(.number(JSONNumber(items.count)))
            case .object(let members): return .value(.number(JSONNumber(Set(members.map(\.key)).count)))
            default: return .value(nil)
            }
        case .count:
            return .value(.number(JSONNumber(nodesArgument(0, current: current, root: root).count)))
        case .value:
            let nodes = nodesArgument(0, current: current, root: root)
            return .value(nodes.count == 1 ? nodes[0] : nil)
        case .match, .search:
            guard case .string(let subject)? = valueArgument(0, current: current, root: root) else { return .logical(false) }
            let pattern: IRegexp
            if let compiledPattern {
                pattern = compiledPattern
            } else {
                guard case .string(let text)? = valueArgument(1, current: current, root: root),
                      let compiled = try? IRegexp(text)
                else { return .logical(false) }
                pattern = compiled
            }
            return .logical(name == .match ? pattern.matchesWhole(subject) : pattern.matchesPart(subject))
        }
    }

    private func valueArgument(_ index: Int, current: JSONValue, root: JSONValue) -> JSONValue? {
        switch arguments[index] {
        case .literal(let value): return value
        case .query(let query): return query.evaluate(root: root, current: current).first
        case .function(let call):
            if case .value(let value) = call.evaluate(current: current, root: root) { return value }
            return nil
        case .logical: return nil
        }
    }

    private func nodesArgument(_ index: Int, current: JSONValue, root: JSONValue) -> [JSONValue] {
        switch arguments[index] {
        case .query(let query): return query.evaluate(root: root, current: current)
        case .function(let call):
            if case .nodes(let nodes) = call.evaluate(current: current, root: root) { return nodes }
            return []
        default: return []
        }
    }
}
