// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import SwitchboardTransform

/// A predicate compiled from a route file: a tree of checks on headers and body content.
struct CompiledPredicate: Predicate {
    let root: PredicateNode

    func matches(_ exchange: Exchange) throws -> Bool {
        var view = BodyView(exchange.message)
        return try root.evaluate(&view)
    }

    /// Evaluates against a body view shared with other predicates of the same step.
    func matches(_ view: inout BodyView) throws -> Bool {
        try root.evaluate(&view)
    }

    var description: String { root.description }
}

/// What a predicate looks at.
enum PredicateSubject: Sendable, CustomStringConvertible {
    case header(String)
    case xpath(XPathExpression)
    case jsonpath(JSONPath)

    var description: String {
        switch self {
        case .header(let name): "header \(name)"
        case .xpath(let expression): "xpath \(expression.text)"
        case .jsonpath(let path): "jsonpath \(path.text)"
        }
    }
}

/// What a predicate checks about its subject.
enum PredicateTest: Sendable, CustomStringConvertible {
    /// The subject is there (a header is set, a query selects something), or not.
    case exists(Bool)
    /// No test written: XPath `boolean()`, or a JSONPath selecting a value other than false/null.
    case truthy
    case equals(String)
    case notEquals(String)
    case oneOf([String])
    case matches(Pattern)
    case compare(NumericComparison, JSONNumber)

    enum NumericComparison: String, Sendable {
        case gt, gte, lt, lte

        func holds(_ lhs: JSONNumber, _ rhs: JSONNumber) -> Bool {
            switch self {
            case .gt: lhs > rhs
            case .gte: lhs >= rhs
            case .lt: lhs < rhs
            case .lte: lhs <= rhs
            }
        }
    }

    func holds(for value: String) -> Bool {
        switch self {
        case .exists(let expected): return expected
        case .truthy: return true
        case .equals(let expected): return value == expected
        case .notEquals(let expected): return value != expected
        case .oneOf(let candidates): return candidates.contains(value)
        case .matches(let pattern): return pattern.matches(value)
        case .compare(let comparison, let bound):
            // Exactly, as decimals: 9007199254740993 is more than 9007199254740992.
            guard let number = JSONNumber(loose: String(value.trimmingASCIIWhitespace())) else { return false }
            return comparison.holds(number, bound)
        }
    }

    var description: String {
        switch self {
        case .exists(let expected): expected ? "exists" : "does not exist"
        case .truthy: "is true"
        case .equals(let value): "equals '\(value)'"
        case .notEquals(let value): "not-equals '\(value)'"
        case .oneOf(let values): "in [\(values.joined(separator: ", "))]"
        case .matches(let pattern): "matches /\(pattern.text)/"
        case .compare(let comparison, let bound): "\(comparison.rawValue) \(bound)"
        }
    }
}

/// A regular expression compiled once; `matches` is a whole-value match, as in Camel.
struct Pattern: @unchecked Sendable {
    // Regex values are immutable after construction and safe to share for matching.
    let regex: Regex<AnyRegexOutput>
    let text: String

    init(_ text: String) throws {
        self.text = text
        self.regex = try Regex(text)
    }

    func matches(_ value: String) -> Bool {
        (try? regex.wholeMatch(in: value)) != nil
    }
}

indirect enum PredicateNode: Sendable, CustomStringConvertible {
    case all([PredicateNode])
    case any([PredicateNode])
    case not(PredicateNode)
    case check(PredicateSubject, PredicateTest)

    func evaluate(_ view: inout BodyView) throws -> Bool {
        switch self {
        case .all(let terms):
            for term in terms where try !term.evaluate(&view) { return false }
            return true
        case .any(let terms):
            for term in terms where try term.evaluate(&view) { return true }
            return false
        case .not(let inner):
            return try !inner.evaluate(&view)
        case .check(let subject, let test):
            return try PredicateNode.check(subject, test, &view)
        }
    }

    private static func check(_ subject: PredicateSubject, _ test: PredicateTest, _ view: inout BodyView) throws -> Bool {
        switch subject {
        case .header(let name):
            if case .exists(let expected) = test { return view.message.headers.contains(name) == expected }
            return view.message.headers.contains(name) { test.holds(for: $0) }
        case .xpath(let expression):
            let document = try view.xmlDocument()
            switch test {
            case .truthy:
                return try expression.evaluateBoolean(in: document)
            case .exists(let expected):
                return try expression.evaluateBoolean(in: document) == expected
            default:
                return test.holds(for: try expression.evaluateString(in: document))
            }
        case .jsonpath(let path):
            let values = path.select(try view.jsonValue())
            switch test {
            case .truthy:
                return values.contains { $0.isTruthy }
            case .exists(let expected):
                return values.isEmpty != expected
            default:
                return values.contains { test.holds(for: $0.text) }
            }
        }
    }

    var description: String {
        switch self {
        case .all(let terms): "all(\(terms.map(\.description).joined(separator: "; ")))"
        case .any(let terms): "any(\(terms.map(\.description).joined(separator: "; ")))"
        case .not(let inner): "not(\(inner))"
        case .check(let subject, let test): "\(subject) \(test)"
        }
    }
}
