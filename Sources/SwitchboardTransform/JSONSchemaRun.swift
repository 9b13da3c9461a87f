// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

// Evaluates an instance against compiled nodes.

/// What a schema evaluated in one instance, for `unevaluatedProperties` / `unevaluatedItems`.
struct SchemaAnnotations {
    var properties: Set<String> = []
    var items = 0
    var allItems = false
    var contained: Set<Int> = []

    mutating func merge(_ other: SchemaAnnotations) {
        properties.formUnion(other.properties)
        items = max(items, other.items)
        allItems = allItems || other.allItems
        contained.formUnion(other.contained)
    }
}

/// One validation: the violations found, and the instance path being visited.
final class SchemaRun {
    /// References followed one after another at one place in the value: more means a cycle.
    /// (Recursion that follows the value is bounded by the value's depth, which the JSON
    /// parser limits.)
    static let maximumReferenceChain = 64
    let limit: Int
    var quiet: Int
    var violations: [JSONSchema.Violation] = []
    var path: [String] = []
    var referenceChain = 0
    /// The dynamic scope: the resources entered, outermost first (kept only when a
    /// `$dynamicRef` needs it).
    let tracksDynamicScope: Bool
    var scope: [Int] = []

    init(limit: Int, quiet: Bool, tracksDynamicScope: Bool) {
        self.limit = limit
        self.quiet = quiet ? 1 : 0
        self.tracksDynamicScope = tracksDynamicScope
    }

    func fail(_ node: SchemaNode, _ keyword: String, _ message: @autoclosure () -> String, child: String? = nil) {
        guard quiet == 0, violations.count < limit else { return }
        var pointer = path.map { "/" + SchemaCompiler.escape($0) }.joined()
        if let child { pointer += "/" + SchemaCompiler.escape(child) }
        violations.append(JSONSchema.Violation(
            instancePath: pointer, keyword: keyword, schemaPath: node.location + "/" + keyword, message: message()
        ))
    }

    /// Evaluates without reporting (inside anyOf, oneOf, not, if, contains).
    func silently<T>(_ body: () -> T) -> T {
        quiet += 1
        defer { quiet -= 1 }
        return body()
    }

    func child<T>(_ token: String, _ body: () -> T) -> T {
        path.append(token)
        defer { path.removeLast() }
        return body()
    }

    func evaluate(_ node: SchemaNode, _ value: JSONValue, _ out: inout SchemaAnnotations?) -> Bool {
        if let boolean = node.boolean {
            if !boolean, quiet == 0, violations.count < limit {
                let pointer = path.map { "/" + SchemaCompiler.escape($0) }.joined()
                let keyword = node.location.split(separator: "/").last.map(String.init) ?? "false"
                violations.append(JSONSchema.Violation(
                    instancePath: pointer, keyword: keyword, schemaPath: node.location, message: "no value is allowed here (the schema is false)"
                ))
            }
            return boolean
        }
        // Entering another resource widens the dynamic scope until this node is done.
        let entered = tracksDynamicScope && scope.last != node.resource
        if entered { scope.append(node.resource) }
        defer { if entered { scope.removeLast() } }
        var own: SchemaAnnotations? = out != nil || node.needsAnnotations ? SchemaAnnotations() : nil
        var valid = true
        for keyword in node.keywords {
            if !apply(keyword, node, value, &own) {
                valid = false
                if quiet > 0 { return false }
            }
        }
        if valid, let own, out != nil { out?.merge(own) }
        return valid
    }

    /// The keywords that look at the value alone, apart from `apply` so that the frames of
    /// the recursion through subschemas stay small (deep values recurse deeply).
    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private func check(_ keyword: SchemaKeyword, _ node: SchemaNode, _ value: JSONValue) -> Bool {
        let name = keyword.name
        switch keyword.check {
        case .type(let types):
            guard types.accepts(value) else {
                fail(node, name, "expected \(types.description), found \(SchemaTypes.name(of: value))")
                return false
            }
        case .enumeration(let allowed):
            guard allowed.contains(value) else {
                fail(node, name, "\(SchemaRun.brief(value)) is not one of \(allowed.prefix(10).map(SchemaRun.brief).joined(separator: ", "))\(allowed.count > 10 ? ", …" : "")")
                return false
            }
        case .constant(let constant):
            guard value == constant else {
                fail(node, name, "\(SchemaRun.brief(value)) is not the required value \(SchemaRun.brief(constant))")
                return false
            }
        case .multipleOf(let divisor):
            guard case .number(let number) = value else { return true }
            guard number.isMultiple(of: divisor) else {
                fail(node, name, "\(number) is not a multiple of \(divisor)")
                return false
            }
        case .maximum(let limit):
            guard case .number(let number) = value, number > limit else { return true }
            fail(node, name, "\(number) is greater than the maximum \(limit)")
            return false
        case .exclusiveMaximum(let limit):
            guard case .number(let number) = value, number >= limit else { return true }
            fail(node, name, "\(number) is not less than \(limit)")
            return false
        case .minimum(let limit):
            guard case .number(let number) = value, number < limit else { return true }
            fail(node, name, "\(number) is less than the minimum \(limit)")
            return false
        case .exclusiveMinimum(let limit):
            guard case .number(let number) = value, number <= limit else { return true }
            fail(node, name, "\(number) is not greater than \(limit)")
            return false
        case .maxLength(let limit):
            guard case .string(let string) = value else { return true }
            let length = string.unicodeScalars.count
            guard length <= limit else {
                fail(node, name, "the string has \(length) characters, more than \(limit)")
                return false
            }
        case .minLength(let limit):
            guard case .string(let string) = value else { return true }
            let length = string.unicodeScalars.count
            guard length >= limit else {
                fail(node, name, "the string has \(length) character\(length == 1 ? "" : "s"), fewer than \(limit)")
                return false
            }
        case .pattern(let pattern):
            guard case .string(let string) = value, !pattern.matches(string) else { return true }
            fail(node, name, "\(SchemaRun.brief(value)) does not match \(pattern.source)")
            return false
        case .maxItems(let limit):
            guard case .array(let items) = value, items.count > limit else { return true }
            fail(node, name, "the array has \(items.count) items, more than \(limit)")
            return false
        case .minItems(let limit):
            guard case .array(let items) = value, items.count < limit else { return true }
            fail(node, name, "the array has \(items.count) item\(items.count == 1 ? "" : "s"), fewer than \(limit)")
            return false
        case .uniqueItems:
            guard case .array(let items) = value, let (first, second) = SchemaRun.duplicate(in: items) else { return true }
            fail(node, name, "items \(first) and \(second) are equal")
            return false
        case .maxProperties(let limit):
            guard case .object = value else { return true }
            let count = SchemaRun.propertyCount(value)
            guard count > limit else { return true }
            fail(node, name, "the object has \(count) properties, more than \(limit)")
            return false
        case .minProperties(let limit):
            guard case .object = value else { return true }
            let count = SchemaRun.propertyCount(value)
            guard count < limit else { return true }
            fail(node, name, "the object has \(count) propert\(count == 1 ? "y" : "ies"), fewer than \(limit)")
            return false
        case .required(let names):
            guard case .object = value else { return true }
            var valid = true
            for property in names where value[property] == nil {
                fail(node, name, "required property '\(property)' is missing")
                valid = false
                if quiet > 0 { break }
            }
            return valid
        case .dependentRequired(let dependencies):
            guard case .object = value else { return true }
            var valid = true
            for (property, needed) in dependencies where value[property] != nil {
                for other in needed where value[other] == nil {
                    fail(node, name, "property '\(other)' is required when '\(property)' is present")
                    valid = false
                }
            }
            return valid
        default:
            break
        }
        return true
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private func apply(_ keyword: SchemaKeyword, _ node: SchemaNode, _ value: JSONValue, _ annotations: inout SchemaAnnotations?) -> Bool {
        let name = keyword.name
        switch keyword.check {
        case .contains(let schema, let minimum, let maximum):
            guard case .array(let items) = value else { return true }
            var matched: [Int] = []
            silently {
                for (index, item) in items.enumerated() {
                    var none: SchemaAnnotations?
                    if evaluate(schema, item, &none) { matched.append(index) }
                }
            }
            if matched.count < minimum {
                fail(node, minimum == 1 && maximum == nil ? name : "minContains", "\(matched.count) item\(matched.count == 1 ? "" : "s") match 'contains', at least \(minimum) must")
                return false
            }
            if let maximum, matched.count > maximum {
                fail(node, "maxContains", "\(matched.count) items match 'contains', at most \(maximum) may")
                return false
            }
            annotations?.contained.formUnion(matched)
        case .type, .enumeration, .constant, .multipleOf, .maximum, .exclusiveMaximum, .minimum, .exclusiveMinimum,
             .maxLength, .minLength, .pattern, .maxItems, .minItems, .uniqueItems, .maxProperties, .minProperties,
             .required, .dependentRequired:
            return check(keyword, node, value)
        case .allOf(let schemas):
            var valid = true
            for schema in schemas where !evaluate(schema, value, &annotations) {
                valid = false
                if quiet > 0 { break }
            }
            return valid
        case .anyOf(let schemas):
            var valid = false
            var collected = annotations
            silently {
                for schema in schemas where evaluate(schema, value, &collected) {
                    valid = true
                    if collected == nil { break }
                }
            }
            annotations = collected
            guard valid else {
                fail(node, name, "\(SchemaRun.brief(value)) matches none of the \(schemas.count) schemas")
                return false
            }
        case .oneOf(let schemas):
            var matched: [Int] = []
            var collected = annotations
            silently {
                for (index, schema) in schemas.enumerated() {
                    var attempt: SchemaAnnotations? = annotations == nil ? nil : SchemaAnnotations()
                    if evaluate(schema, value, &attempt) {
                        matched.append(index)
                        if let attempt { collected?.merge(attempt) }
                        if matched.count > 1 { break }
                    }
                }
            }
            guard matched.count == 1 else {
                let why = matched.isEmpty
                    ? "matches none of the \(schemas.count) schemas"
                    : "matches more than one of the \(schemas.count) schemas (\(matched.map(String.init).joined(separator: " and ")))"
                fail(node, name, "\(SchemaRun.brief(value)) \(why); exactly one must match")
                return false
            }
            annotations = collected
        case .not(let schema):
            var none: SchemaAnnotations?
            let matched = silently { evaluate(schema, value, &none) }
            guard !matched else {
                fail(node, name, "\(SchemaRun.brief(value)) must not match the schema in 'not'")
                return false
            }
        case .conditional(let condition, let thenSchema, let elseSchema):
            var conditionAnnotations: SchemaAnnotations? = annotations == nil ? nil : SchemaAnnotations()
            let holds = silently { evaluate(condition, value, &conditionAnnotations) }
            if holds {
                if let conditionAnnotations { annotations?.merge(conditionAnnotations) }
                if let thenSchema { return evaluate(thenSchema, value, &annotations) }
            } else if let elseSchema {
                return evaluate(elseSchema, value, &annotations)
            }
        case .members(let properties, let patterns, let additional):
            guard case .object(let members) = value else { return true }
            var valid = true
            for member in members {
                var known = false
                if let schema = properties[member.key] {
                    known = true
                    if !evaluateChild(schema, member.value, member.key) { valid = false }
                }
                for (pattern, schema) in patterns where pattern.matches(member.key) {
                    known = true
                    if !evaluateChild(schema, member.value, member.key) { valid = false }
                }
                if !known, let additional {
                    if additional.boolean == false {
                        fail(node, "additionalProperties", "property '\(member.key)' is not allowed", child: member.key)
                        valid = false
                    } else if !evaluateChild(additional, member.value, member.key) {
                        valid = false
                    }
                    known = true
                }
                if known { annotations?.properties.insert(member.key) }
                if !valid, quiet > 0 { return false }
            }
            return valid
        case .propertyNames(let schema):
            guard case .object(let members) = value else { return true }
            var valid = true
            for member in members where !evaluateChild(schema, .string(member.key), member.key) {
                valid = false
                if quiet > 0 { break }
            }
            return valid
        case .dependentSchemas(let dependencies):
            guard case .object = value else { return true }
            var valid = true
            for (property, schema) in dependencies where value[property] != nil {
                if !evaluate(schema, value, &annotations) { valid = false }
            }
            return valid
        case .items(let prefix, let rest):
            guard case .array(let items) = value else { return true }
            var valid = true
            for (index, item) in items.enumerated() {
                let schema: SchemaNode
                if index < prefix.count {
                    schema = prefix[index]
                } else if let rest {
                    if rest.boolean == false {
                        fail(node, name, "at most \(prefix.count) item\(prefix.count == 1 ? " is" : "s are") allowed, found \(items.count)", child: String(index))
                        valid = false
                        break
                    }
                    schema = rest
                } else {
                    break
                }
                if !evaluateChild(schema, item, String(index)) {
                    valid = false
                    if quiet > 0 { return false }
                }
            }
            if valid {
                let covered = min(prefix.count, items.count)
                if let before = annotations?.items, before < covered { annotations?.items = covered }
                if rest != nil { annotations?.allItems = true }
            }
            return valid
        case .reference(let reference):
            guard let target = reference.dynamicName == nil ? reference.target : dynamicTarget(reference) else { return false }
            guard referenceChain < SchemaRun.maximumReferenceChain else {
                fail(node, name, "references lead in a circle here without reaching deeper into the value")
                return false
            }
            referenceChain += 1
            defer { referenceChain -= 1 }
            return evaluate(target, value, &annotations)
        case .unevaluatedProperties(let schema):
            guard case .object(let members) = value else { return true }
            var valid = true
            let evaluated = annotations?.properties ?? []
            for member in members where !evaluated.contains(member.key) {
                if schema.boolean == false {
                    fail(node, name, "property '\(member.key)' is not allowed", child: member.key)
                    valid = false
                } else if !evaluateChild(schema, member.value, member.key) {
                    valid = false
                }
                if !valid, quiet > 0 { return false }
                annotations?.properties.insert(member.key)
            }
            return valid
        case .unevaluatedItems(let schema):
            guard case .array(let items) = value else { return true }
            let evaluated = annotations ?? SchemaAnnotations()
            guard !evaluated.allItems else { return true }
            var valid = true
            for index in evaluated.items..<max(evaluated.items, items.count) where !evaluated.contained.contains(index) {
                if schema.boolean == false {
                    fail(node, name, "item \(index) is not allowed", child: String(index))
                    valid = false
                } else if !evaluateChild(schema, items[index], String(index)) {
                    valid = false
                }
                if !valid, quiet > 0 { return false }
            }
            if valid { annotations?.allItems = true }
            return valid
        }
        return true
    }

    /// A `$dynamicRef`'s target: the node with its `$dynamicAnchor` in the outermost
    /// resource of the dynamic scope that has one, else its static target.
    private func dynamicTarget(_ reference: SchemaReference) -> SchemaNode? {
        guard tracksDynamicScope else { return reference.target }
        for resource in scope {
            if let node = reference.dynamicTargets[resource] { return node.takeUnretainedValue() }
        }
        return reference.target
    }

    private func evaluateChild(_ schema: SchemaNode, _ value: JSONValue, _ token: String) -> Bool {
        // A step into the value: references followed from here on start a new chain.
        let chain = referenceChain
        referenceChain = 0
        defer { referenceChain = chain }
        return child(token) {
            var none: SchemaAnnotations?
            return evaluate(schema, value, &none)
        }
    }

    static func propertyCount(_ value: JSONValue) -> Int {
        guard case .object(let members) = value else { return 0 }
        return Set(members.map(\.key)).count
    }

    /// The first pair of equal items (1 and 1.0 are equal; false and 0 are not).
    static func duplicate(in items: [JSONValue]) -> (Int, Int)? {
        // Keys as bytes, not String: Swift compares strings by canonical equivalence.
        var scalars: [[UInt8]: Int] = [:]
        var composite: [Int] = []
        for (index, item) in items.enumerated() {
            let key: [UInt8]
            switch item {
            case .null: key = [0]
            case .bool(let flag): key = [flag ? 1 : 2]
            case .number(let number): key = [3] + Array(number.canonical.utf8)
            case .string(let string): key = [4] + Array(string.utf8)
            case .array, .object:
                if let earlier = composite.first(where: { items[$0] == item }) { return (earlier, index) }
                composite.append(index)
                continue
            }
            if let earlier = scalars[key] { return (earlier, index) }
            scalars[key] = index
        }
        return nil
    }

    /// A value as a message shows it: JSON, cut short when long.
    static func brief(_ value: JSONValue) -> String {
        let text = value.serialized()
        return text.count > 60 ? String(text.prefix(57)) + "…" : text
    }
}
