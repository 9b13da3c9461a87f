// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardTransform
import SwitchboardCore

/// The JSON Schema (draft 2020-12) of route files, generated from ``StepSpec`` so that it
/// always matches what the loader accepts. Editors use it to complete and check routes.
public enum RouteSchema {
    public static func document() -> JSONValue {
        var definitions: [(key: String, value: JSONValue)] = [
            ("route", route()),
            ("steps", .object([("type", .string("array")), ("items", ref("step"))])),
            ("step", .object([
                ("description", .string("One step: a mapping with a single key, the step kind.")),
                ("oneOf", .array(StepSpec.all.map { spec in
                    .object([
                        ("type", .string("object")),
                        ("properties", .object([(spec.name, ref("step-\(spec.name)"))])),
                        ("required", .array([.string(spec.name)])),
                        ("additionalProperties", .bool(false)),
                    ])
                })),
            ])),
            ("predicate", predicate()),
            ("endpoint", .object([
                ("description", .string("An endpoint URI, or a mapping with 'uri' and endpoint options.")),
                ("anyOf", .array([
                    .object([("type", .string("string")), ("pattern", .string("^[A-Za-z][A-Za-z0-9+.-]*:"))]),
                    .object([
                        ("type", .string("object")),
                        ("properties", .object([("uri", .object([("type", .string("string"))]))])),
                        ("required", .array([.string("uri")])),
                        ("additionalProperties", .object([("type", .array([.string("string"), .string("number"), .string("boolean")]))])),
                    ]),
                ])),
            ])),
        ]
        for spec in StepSpec.all {
            definitions.append(("step-\(spec.name)", step(spec)))
        }
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("$id", .string("https://switchboard.invalid/schemas/routes.json")),
            ("title", .string("Switchboard route file")),
            ("type", .string("object")),
            ("properties", .object([
                ("routes", .object([("type", .string("array")), ("items", ref("route"))])),
            ])),
            ("required", .array([.string("routes")])),
            ("additionalProperties", .bool(false)),
            ("$defs", .object(definitions)),
        ])
    }

    private static func ref(_ name: String) -> JSONValue {
        .object([("$ref", .string("#/$defs/\(name)"))])
    }

    private static func route() -> JSONValue {
        var properties: [(key: String, value: JSONValue)] = []
        for field in StepSpec.routeFields {
            switch field.name {
            case "from": properties.append((field.name, described(ref("endpoint"), field.doc)))
            case "namespaces":
                properties.append((field.name, .object([
                    ("description", .string(field.doc)),
                    ("type", .string("object")),
                    ("additionalProperties", .object([("type", .string("string"))])),
                ])))
            default: properties.append((field.name, schema(for: field)))
            }
        }
        return .object([
            ("type", .string("object")),
            ("properties", .object(properties)),
            ("required", .array(StepSpec.routeFields.filter(\.required).map { .string($0.name) })),
            ("additionalProperties", .bool(false)),
        ])
    }

    private static func described(_ schema: JSONValue, _ doc: String) -> JSONValue {
        guard case .object(var members) = schema else { return schema }
        members.insert(("description", .string(doc)), at: 0)
        return .object(members)
    }

    private static func schema(for field: StepSpec.Field) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [("description", .string(field.doc))]
        switch field.type {
        case .string, .template, .xpath, .jsonpath: members.append(("type", .string("string")))
        case .uri: return described(ref("endpoint"), field.doc)
        case .boolean: members.append(("type", .string("boolean")))
        case .duration:
            members.append(("type", .array([.string("string"), .string("integer")])))
            members.append(("pattern", .string("^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$|^[0-9]+$")))
        case .choice(let words): members.append(("enum", .array(words.map { .string($0) })))
        case .steps: return described(ref("steps"), field.doc)
        case .mapping:
            members.append(("type", .string("object")))
        case .stringList:
            members.append(("type", .string("array")))
            members.append(("items", .object([("type", .string("string"))])))
        case .templateMap:
            members.append(("type", .string("object")))
            members.append(("additionalProperties", .object([("type", .string("string"))])))
        case .sla:
            let text: JSONValue = .object([("type", .string("string"))])
            members.append(("type", .string("object")))
            members.append(("patternProperties", .object([("^p[0-9]+(\\.[0-9]+)?$", text)])))
            members.append(("properties", .object([
                ("errors", text), ("throughput", text), ("max-age", text), ("window", text), ("alert", text),
            ])))
            members.append(("additionalProperties", .bool(false)))
        case .onError:
            let text: JSONValue = .object([("type", .array([.string("string"), .string("number"), .string("boolean")]))])
            members.append(("type", .string("object")))
            members.append(("properties", .object([
                ("retry", .object([
                    ("type", .string("object")),
                    ("properties", .object([
                        ("attempts", text), ("backoff", text), ("factor", text), ("max-backoff", text), ("jitter", text),
                        ("on", .object([("type", .string("array")), ("items", .object([("enum", .array(ErrorKind.all.map { .string($0) }))]))])),
                    ])),
                    ("additionalProperties", .bool(false)),
                ])),
                ("dead-letter", .object([("type", .array([.string("boolean"), .string("string")]))])),
            ])))
            members.append(("additionalProperties", .bool(false)))
        case .branches:
            members.append(("type", .string("array")))
            members.append(("items", .object([("oneOf", .array([
                .object([
                    ("type", .string("object")),
                    ("properties", .object([("when", ref("predicate")), ("steps", ref("steps"))])),
                    ("required", .array([.string("when"), .string("steps")])),
                    ("additionalProperties", .bool(false)),
                ]),
                .object([
                    ("type", .string("object")),
                    ("properties", .object([("otherwise", ref("steps"))])),
                    ("required", .array([.string("otherwise")])),
                    ("additionalProperties", .bool(false)),
                ]),
            ]))])))
        }
        if let defaultValue = field.defaultValue {
            switch field.type {
            case .boolean: members.append(("default", .bool(defaultValue == "true")))
            default: members.append(("default", .string(defaultValue)))
            }
        }
        return .object(members)
    }

    private static func step(_ spec: StepSpec) -> JSONValue {
        var properties = spec.fields.map { (key: $0.name, value: schema(for: $0)) }
        if spec.inlinePredicate {
            properties += predicateProperties()
        }
        var mapping: [(key: String, value: JSONValue)] = [
            ("type", .string("object")),
            ("properties", .object(properties)),
        ]
        let required = spec.fields.filter(\.required).map { JSONValue.string($0.name) }
        if !required.isEmpty { mapping.append(("required", .array(required))) }
        if !spec.oneOf.isEmpty {
            mapping.append(("oneOf", .array(spec.oneOf.map { .object([("required", .array([.string($0)]))]) })))
        }
        if spec.endpointOptions {
            mapping.append(("additionalProperties", .object([("type", .array([.string("string"), .string("number"), .string("boolean")]))])))
        } else {
            mapping.append(("additionalProperties", .bool(false)))
        }
        var forms: [JSONValue] = [.object(mapping)]
        if let scalar = spec.scalarField, let field = spec.field(scalar) {
            forms.insert(field.type == .uri ? .object([("type", .string("string"))]) : schema(for: field), at: 0)
        }
        if let list = spec.listField, let field = spec.field(list) {
            forms.insert(schema(for: field), at: 0)
        }
        if spec.fields.isEmpty {
            forms.append(.object([("type", .array([.string("null"), .string("boolean")]))]))
        }
        return .object([
            ("description", .string(spec.summary)),
            ("anyOf", .array(forms)),
        ])
    }

    private static func predicateProperties() -> [(key: String, value: JSONValue)] {
        let string = JSONValue.object([("type", .string("string"))])
        let scalar = JSONValue.object([("type", .array([.string("string"), .string("number"), .string("boolean")]))])
        let number = JSONValue.object([("type", .array([.string("number"), .string("string")]))])
        return [
            ("header", described(string, "Header name to test.")),
            ("xpath", described(string, "XPath 1.0 expression on an XML body.")),
            ("jsonpath", described(string, "JSONPath query on a JSON body.")),
            ("equals", described(scalar, "The value equals this.")),
            ("not-equals", described(scalar, "The value differs from this.")),
            ("in", .object([("description", .string("The value is one of these.")), ("type", .string("array")), ("items", scalar)])),
            ("matches", described(string, "The whole value matches this regular expression.")),
            ("exists", .object([("description", .string("The subject is present (true) or absent (false).")), ("type", .string("boolean"))])),
            ("gt", described(number, "The value is a number greater than this.")),
            ("gte", described(number, "The value is a number greater than or equal to this.")),
            ("lt", described(number, "The value is a number less than this.")),
            ("lte", described(number, "The value is a number less than or equal to this.")),
            ("all", .object([("description", .string("Every predicate holds.")), ("type", .string("array")), ("items", ref("predicate"))])),
            ("any", .object([("description", .string("At least one predicate holds.")), ("type", .string("array")), ("items", ref("predicate"))])),
            ("not", described(ref("predicate"), "The predicate does not hold.")),
        ]
    }

    private static func predicate() -> JSONValue {
        .object([
            ("description", .string("A condition: a subject (header, xpath, jsonpath) with one test, or all / any / not.")),
            ("type", .string("object")),
            ("properties", .object(predicateProperties())),
            ("additionalProperties", .bool(false)),
            ("minProperties", .number(JSONNumber(1))),
        ])
    }
}
