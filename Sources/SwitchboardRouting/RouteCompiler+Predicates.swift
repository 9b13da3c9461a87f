// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

// Values (templates, header names, XPath, JSONPath) and predicates.
extension RouteCompiler {
    // MARK: Values

    func template(_ node: ConfigNode?, scope: RouteScope) -> Template? {
        guard let node, let text = node.scalar else { return nil }
        return Template.compile(text, at: node.contentLocation, namespaces: scope.namespaces, environment: environment, log: &log)
    }

    func headerName(_ node: ConfigNode?, allowPrefix: Bool = false) -> String? {
        guard let node, let name = node.scalar else { return nil }
        let body = allowPrefix && name.hasSuffix("*") ? String(name.dropLast()) : name
        let valid = !body.isEmpty && body.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && scalar.value > 0x20 && scalar.value < 0x7F && !"()<>@,;:\\\"/[]?={}".unicodeScalars.contains(scalar)
        }
        guard valid else {
            log.error(node.contentLocation, "'\(name)' is not a valid header name (letters, digits and -._~!#$%&'*+^`| only)")
            return nil
        }
        return name
    }

    func xpath(_ node: ConfigNode, scope: RouteScope) -> XPathExpression? {
        guard let text = node.scalar else { return nil }
        do {
            return try XPathExpression(text, namespaces: scope.namespaces)
        } catch {
            log.error(node.contentLocation, "\(error)")
            return nil
        }
    }

    func jsonpath(_ node: ConfigNode) -> JSONPath? {
        guard let text = node.scalar else { return nil }
        do {
            return try JSONPath(text)
        } catch let error as JSONPathError {
            log.error(node.contentLocation.advanced(by: error.offset), "invalid JSONPath '\(text)': \(error.message)")
        } catch {
            log.error(node.contentLocation, "invalid JSONPath '\(text)': \(error)")
        }
        return nil
    }

    // MARK: Predicates

    func compilePredicate(node: ConfigNode, scope: RouteScope) -> PredicateNode? {
        guard let entries = node.mapping, !entries.isEmpty else {
            log.error(node.location, "expected a predicate such as { header: X-Region, equals: EU }, found \(node.kindDescription)")
            return nil
        }
        var failed = false
        for entry in entries where !StepSpec.predicateKeys.contains(entry.key) {
            log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "predicate key", known: StepSpec.predicateKeys))
            failed = true
        }
        let valid = entries.filter { StepSpec.predicateKeys.contains($0.key) }
        guard let predicate = compilePredicate(entries: valid, at: node.location, scope: scope), !failed else { return nil }
        return predicate
    }

    func compilePredicate(
        entries: [(key: String, keyNode: ConfigNode, value: ConfigNode)],
        at location: SourceLocation,
        scope: RouteScope
    ) -> PredicateNode? {
        let subjects = entries.filter { StepSpec.predicateSubjects.contains($0.key) }
        let tests = entries.filter { StepSpec.predicateTests.contains($0.key) }
        let combinators = entries.filter { StepSpec.predicateCombinators.contains($0.key) }

        if let combinator = combinators.first {
            guard combinators.count == 1, subjects.isEmpty, tests.isEmpty else {
                log.error(location, "a predicate with '\(combinator.key)' has nothing else beside it; nest the other checks inside it")
                return nil
            }
            if combinator.key == "not" {
                return compilePredicate(node: combinator.value, scope: scope).map { .not($0) }
            }
            guard let items = combinator.value.sequence, !items.isEmpty else {
                log.error(combinator.value.location, "'\(combinator.key)' expects a list of predicates, found \(combinator.value.kindDescription)")
                return nil
            }
            let terms = items.map { compilePredicate(node: $0, scope: scope) }
            guard terms.allSatisfy({ $0 != nil }) else { return nil }
            let compiled = terms.compactMap { $0 }
            return combinator.key == "all" ? .all(compiled) : .any(compiled)
        }

        guard let subjectEntry = subjects.first else {
            let test = tests.first.map { "'\($0.key)' needs something to test: " } ?? "a predicate needs "
            log.error(tests.first?.keyNode.location ?? location, test + "one of 'header', 'xpath' or 'jsonpath' (or 'all', 'any', 'not')")
            return nil
        }
        guard subjects.count == 1 else {
            log.error(subjects[1].keyNode.location, "a predicate tests one subject; combine several with 'all: [ … ]' or 'any: [ … ]'")
            return nil
        }
        guard tests.count <= 1 else {
            log.error(tests[1].keyNode.location, "a predicate has one test; found \(tests.map { "'\($0.key)'" }.joined(separator: ", ")); combine with 'all: [ … ]'")
            return nil
        }
        let subject: PredicateSubject
        switch subjectEntry.key {
        case "header":
            guard let name = headerName(subjectEntry.value) else { return nil }
            subject = .header(name)
        case "xpath":
            guard let expression = xpath(subjectEntry.value, scope: scope) else { return nil }
            subject = .xpath(expression)
        default:
            guard let path = jsonpath(subjectEntry.value) else { return nil }
            subject = .jsonpath(path)
        }
        guard let testEntry = tests.first else {
            if case .header = subject { return .check(subject, .exists(true)) }
            return .check(subject, .truthy)
        }
        let value = testEntry.value
        switch testEntry.key {
        case "in":
            guard let items = value.sequence, items.allSatisfy({ $0.scalar != nil }) else {
                log.error(value.location, "'in' expects a list of values, as in [EU, UK], found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .oneOf(items.compactMap(\.scalar)))
        case "exists":
            guard let flag = parseBool(value.scalar) else {
                log.error(value.contentLocation, "'exists' expects true or false, found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .exists(flag))
        default:
            break
        }
        guard let text = value.scalar else {
            log.error(value.location, "'\(testEntry.key)' expects a single value, found \(value.kindDescription)")
            return nil
        }
        switch testEntry.key {
        case "equals":
            return .check(subject, .equals(text))
        case "not-equals":
            return .check(subject, .notEquals(text))
        case "matches":
            do {
                return .check(subject, .matches(try Pattern(text)))
            } catch {
                log.error(value.contentLocation, "invalid regular expression '\(text)': \(error)")
                return nil
            }
        default:
            guard let number = JSONNumber(loose: text), let comparison = PredicateTest.NumericComparison(rawValue: testEntry.key) else {
                log.error(value.contentLocation, "'\(testEntry.key)' expects a number, found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .compare(comparison, number))
        }
    }
}
