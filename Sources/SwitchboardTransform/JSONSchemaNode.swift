// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

// The compiled form of a JSON Schema: nodes, keywords and their checks.

/// One subschema: a boolean schema, or the keywords of an object schema in evaluation order
/// (the `unevaluated*` keywords last, as they depend on the others).
final class SchemaNode {
    let boolean: Bool?
    /// Where this subschema is, for messages (`#/properties/total`).
    let location: String
    var keywords: [SchemaKeyword] = []
    /// Whether the node itself needs to know what its other keywords evaluated.
    var needsAnnotations = false
    /// The schema resource (`$id` scope) the node belongs to, numbered by the compiler.
    let resource: Int
    /// The node's `$dynamicAnchor`, if it has one.
    var dynamicAnchor: String?

    init(boolean: Bool?, location: String, resource: Int) {
        self.boolean = boolean
        self.location = location
        self.resource = resource
    }
}

struct SchemaKeyword {
    let name: String
    let check: SchemaCheck
}

struct SchemaTypes: OptionSet {
    let rawValue: UInt8
    static let null = SchemaTypes(rawValue: 1)
    static let boolean = SchemaTypes(rawValue: 2)
    static let object = SchemaTypes(rawValue: 4)
    static let array = SchemaTypes(rawValue: 8)
    static let number = SchemaTypes(rawValue: 16)
    static let string = SchemaTypes(rawValue: 32)
    static let integer = SchemaTypes(rawValue: 64)

    static let names: [(String, SchemaTypes)] = [
        ("null", .null), ("boolean", .boolean), ("object", .object), ("array", .array),
        ("number", .number), ("string", .string), ("integer", .integer),
    ]

    func accepts(_ value: JSONValue) -> Bool {
        switch value {
        case .null: contains(.null)
        case .bool: contains(.boolean)
        case .object: contains(.object)
        case .array: contains(.array)
        case .string: contains(.string)
        case .number(let number): contains(.number) || (contains(.integer) && SchemaTypes.isInteger(number))
        }
    }

    static func isInteger(_ number: JSONNumber) -> Bool {
        number.isInteger
    }

    var description: String {
        SchemaTypes.names.filter { contains($0.1) }.map(\.0).joined(separator: " or ")
    }

    static func name(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .number(let number): isInteger(number) ? "integer" : "number"
        }
    }
}

/// An ECMA-262 style pattern as JSON Schema uses it: unanchored, matched on Unicode
/// scalars, `\d` and `\w` ASCII only.
struct SchemaPattern {
    let source: String
    private let regex: Regex<AnyRegexOutput>

    init(_ source: String) throws {
        self.source = source
        regex = try Regex(source).matchingSemantics(.unicodeScalar).asciiOnlyDigits().asciiOnlyWordCharacters()
    }

    func matches(_ subject: String) -> Bool {
        (try? regex.firstMatch(in: subject)) != nil
    }
}

/// A `$ref` (or `$dynamicRef`) target, filled in once every schema is compiled.
final class SchemaReference {
    let uri: String
    unowned(unsafe) var target: SchemaNode?
    /// For a `$dynamicRef` whose static target has the `$dynamicAnchor` it names: that name,
    /// and the node with that anchor in each resource, to be chosen from the dynamic scope.
    var dynamicName: String?
    var dynamicTargets: [Int: Unmanaged<SchemaNode>] = [:]
    let isDynamic: Bool

    init(uri: String, isDynamic: Bool) {
        self.uri = uri
        self.isDynamic = isDynamic
    }
}

enum SchemaCheck {
    case type(SchemaTypes)
    case enumeration([JSONValue])
    case constant(JSONValue)
    case multipleOf(JSONNumber)
    case maximum(JSONNumber)
    case exclusiveMaximum(JSONNumber)
    case minimum(JSONNumber)
    case exclusiveMinimum(JSONNumber)
    case maxLength(Int)
    case minLength(Int)
    case pattern(SchemaPattern)
    case maxItems(Int)
    case minItems(Int)
    case uniqueItems
    case contains(SchemaNode, min: Int, max: Int?)
    case maxProperties(Int)
    case minProperties(Int)
    case required([String])
    case dependentRequired([(String, [String])])
    case allOf([SchemaNode])
    case anyOf([SchemaNode])
    case oneOf([SchemaNode])
    case not(SchemaNode)
    case conditional(SchemaNode, then: SchemaNode?, else: SchemaNode?)
    case members(properties: [String: SchemaNode], patterns: [(SchemaPattern, SchemaNode)], additional: SchemaNode?)
    case propertyNames(SchemaNode)
    case dependentSchemas([(String, SchemaNode)])
    case items(prefix: [SchemaNode], rest: SchemaNode?)
    case reference(SchemaReference)
    case unevaluatedProperties(SchemaNode)
    case unevaluatedItems(SchemaNode)
}
