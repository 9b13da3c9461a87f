// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import Testing

/// What the official suite files leave out: references, unevaluated*, draft-07 spellings,
/// the wording and places of errors, and schema problems.
struct JSONSchemaTests {
    static func schema(_ text: String) throws -> JSONSchema {
        try JSONSchema(try JSONValue(parsing: text))
    }

    static func json(_ text: String) throws -> JSONValue {
        try JSONValue(parsing: text)
    }

    static func folder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-json-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/common", withIntermediateDirectories: true)
        return folder
    }

    @Test func violationsNameTheInstancePathTheKeywordAndTheSchemaPlace() throws {
        let schema = try Self.schema("""
        {"type": "object", "required": ["id", "lines"],
         "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/line"}}},
         "$defs": {"line": {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}, "additionalProperties": false}}}
        """)
        let violations = schema.validate(try Self.json(##"{"lines": [{"amount": 1}, {"amount": -2, "note": "x"}]}"##))
        #expect(violations.map(\.description) == [
            "/: required: required property 'id' is missing",
            "/lines/1/amount: minimum: -2 is less than the minimum 0",
            "/lines/1/note: additionalProperties: property 'note' is not allowed",
        ])
        #expect(violations.map(\.schemaPath) == ["#/required", "#/$defs/line/properties/amount/minimum", "#/$defs/line/additionalProperties"])
        #expect(schema.validate(try Self.json(##"{"id": 1, "lines": []}"##)).isEmpty)
        #expect(schema.validate(try Self.json(##"{"lines": 3}"##), limit: 1).count == 1)
    }

    @Test func referencesByPointerAnchorAndID() throws {
        let schema = try Self.schema("""
        {"$id": "https://example.com/root.json",
         "properties": {
           "a": {"$ref": "#/$defs/positive"},
           "b": {"$ref": "#code"},
           "c": {"$ref": "item.json"},
           "d": {"$ref": "#/$defs/with~1slash"},
           "e": {"$ref": "#/$defs/percent%25"},
           "f": {"$ref": "#/properties/a"}
         },
         "$defs": {
           "positive": {"type": "integer", "exclusiveMinimum": 0},
           "code": {"$anchor": "code", "type": "string", "pattern": "^[A-Z]{3}$"},
           "item": {"$id": "item.json", "type": "object", "required": ["sku"], "properties": {"sku": {"$ref": "#/$defs/sku"}},
                    "$defs": {"sku": {"type": "string", "minLength": 4}}},
           "with/slash": {"const": "slash"},
           "percent%": {"const": "percent"}
         }}
        """)
        #expect(schema.isValid(try Self.json(##"{"a": 1, "b": "EUR", "c": {"sku": "ABCD"}, "d": "slash", "e": "percent", "f": 2}"##)))
        let violations = schema.validate(try Self.json(##"{"a": 0, "b": "eur", "c": {"sku": "AB"}, "d": "x", "e": "x", "f": -1}"##))
        #expect(Set(violations.map(\.instancePath)) == ["/a", "/b", "/c/sku", "/d", "/e", "/f"], "\(violations)")
    }

    @Test func numericKeywordsCompareExactly() throws {
        let schema = try Self.schema(#"{"type": "array", "items": {"type": "number", "maximum": 9007199254740992, "multipleOf": 0.01}, "uniqueItems": true}"#)
        #expect(schema.isValid(try Self.json("[9007199254740992, 12.30, 1e-2]")))
        #expect(!schema.isValid(try Self.json("[9007199254740993]")), "one past 2^53 is past the maximum")
        #expect(!schema.isValid(try Self.json("[12.305]")), "not a multiple of 0.01")
        #expect(!schema.isValid(try Self.json("[12.3, 12.30]")), "12.3 and 12.30 are the same number")
        let integer = try Self.schema(#"{"type": "integer"}"#)
        #expect(integer.isValid(try Self.json("12345678901234567890")))
        #expect(integer.isValid(try Self.json("1.0e3")))
        #expect(!integer.isValid(try Self.json("1.5")))
    }

    @Test func recursiveSchemasFollowTheInstanceAndCyclesEndWithAnError() throws {
        let tree = try Self.schema("""
        {"type": "object", "properties": {"value": {"type": "number"}, "children": {"type": "array", "items": {"$ref": "#"}}}}
        """)
        var nested = ##"{"value": 1}"##
        for _ in 0..<250 { nested = ##"{"value": 1, "children": [\##(nested)]}"## }
        #expect(tree.isValid(try Self.json(nested)))
        let broken = nested.replacingOccurrences(of: ##"{"value": 1}"##, with: ##"{"value": "one"}"##)
        let deepest = try #require(tree.validate(try Self.json(broken)).first)
        #expect(deepest.instancePath.hasPrefix(String(repeating: "/children/0", count: 250)))
        #expect(deepest.keyword == "type")

        let cycle = try Self.schema(##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##)
        let violations = cycle.validate(.number(1))
        #expect(violations.count == 1)
        #expect(violations.first?.message.contains("references lead in a circle") == true)
    }

    @Test func unevaluatedPropertiesAndItemsSeeWhatSubschemasEvaluated() throws {
        let closed = try Self.schema("""
        {"allOf": [{"properties": {"id": {"type": "string"}}}],
         "if": {"properties": {"kind": {"const": "card"}}, "required": ["kind"]},
         "then": {"properties": {"pan": {"type": "string"}}},
         "properties": {"kind": {"type": "string"}},
         "unevaluatedProperties": false}
        """)
        #expect(closed.isValid(try Self.json(##"{"id": "1", "kind": "card", "pan": "4111"}"##)))
        #expect(closed.validate(try Self.json(##"{"id": "1", "kind": "cash", "pan": "4111"}"##)).map(\.description)
            == ["/pan: unevaluatedProperties: property 'pan' is not allowed"])
        // A failed subschema evaluates nothing.
        let anyOf = try Self.schema(##"{"anyOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"b": true}}], "unevaluatedProperties": false}"##)
        #expect(anyOf.isValid(try Self.json(##"{"a": "x", "b": 1}"##)))
        #expect(anyOf.validate(try Self.json(##"{"a": 1, "b": 1}"##)).map(\.description) == ["/a: unevaluatedProperties: property 'a' is not allowed"])
        #expect(anyOf.validate(try Self.json(##"{"a": 1, "c": 1}"##)).map(\.instancePath).sorted() == ["/a", "/c"])

        let tuple = try Self.schema(##"{"prefixItems": [{"type": "string"}], "contains": {"type": "number"}, "unevaluatedItems": {"type": "boolean"}}"##)
        #expect(tuple.isValid(try Self.json(##"["a", 1, true, 2]"##)))
        #expect(tuple.validate(try Self.json(##"["a", 1, "late"]"##)).map(\.description) == [#"/2: type: expected boolean, found string"#])
    }

    @Test func draft07SpellingsAreUnderstood() throws {
        let schema = try Self.schema("""
        {"definitions": {"name": {"type": "string"}},
         "properties": {"pair": {"items": [{"$ref": "#/definitions/name"}, {"type": "integer"}], "additionalItems": false}},
         "dependencies": {"card": ["expiry"], "iban": {"required": ["bic"]}}}
        """)
        #expect(schema.isValid(try Self.json(##"{"pair": ["a", 1], "card": 1, "expiry": 2}"##)))
        #expect(schema.validate(try Self.json(##"{"pair": ["a", 1, 2]}"##)).map(\.description) == ["/pair/2: additionalItems: at most 2 items are allowed, found 3"])
        #expect(schema.validate(try Self.json(##"{"card": 1}"##)).map(\.keyword) == ["dependentRequired"])
        #expect(schema.validate(try Self.json(##"{"iban": 1}"##)).map(\.keyword) == ["required"])
    }

    @Test func referencedFilesAreReadOnlyInsideTheAllowedFolder() throws {
        let folder = try Self.folder()
        try ##"{"$defs": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}"##.write(toFile: folder + "/common/types.json", atomically: true, encoding: .utf8)
        try ##"{"properties": {"currency": {"$ref": "common/types.json#/$defs/currency"}}}"##.write(toFile: folder + "/order.json", atomically: true, encoding: .utf8)
        let order = try JSONSchema(path: folder + "/order.json")
        #expect(order.isValid(try Self.json(##"{"currency": "EUR"}"##)))
        #expect(order.validate(try Self.json(##"{"currency": "euro"}"##)).first?.schemaPath == "types.json#/$defs/currency/pattern")

        try ##"{"$ref": "../outside.json"}"##.write(toFile: folder + "/common/escape.json", atomically: true, encoding: .utf8)
        try "{}".write(toFile: folder + "/outside.json", atomically: true, encoding: .utf8)
        #expect {
            try JSONSchema(path: folder + "/common/escape.json")
        } throws: { error in
            "\(error)".contains("outside the folder schemas may be read from")
        }
        // Widening the folder lets it through.
        #expect(throws: Never.self) { try JSONSchema(path: folder + "/common/escape.json", allowedRoot: folder) }

        #expect {
            try Self.schema(##"{"$ref": "https://example.com/schemas/order.json"}"##)
        } throws: { error in
            "\(error)".contains("never fetched from the network")
        }
        #expect {
            try Self.schema(##"{"$ref": "#nowhere"}"##)
        } throws: { error in
            "\(error)".contains("no '$anchor' named 'nowhere'")
        }
        #expect {
            try Self.schema(##"{"$ref": "#/$defs/missing"}"##)
        } throws: { error in
            "\(error)".contains("'urn:switchboard:schema#/$defs/missing' points at nothing")
        }
    }

    @Test func theBundledMetaSchemaValidatesSchemasOffline() throws {
        let meta = try Self.schema(##"{"$ref": "https://json-schema.org/draft/2020-12/schema"}"##)
        #expect(meta.isValid(try Self.json(##"{"type": "object", "properties": {"a": {"minLength": 1}}}"##)))
        #expect(meta.validate(try Self.json(##"{"minLength": -1}"##)).map(\.keyword) == ["minimum"])
        // Deep inside: reached through the applicator's `$dynamicRef: "#meta"`, which only the
        // dynamic scope resolves to the whole meta-schema.
        let deep = meta.validate(try Self.json(##"{"properties": {"a": {"items": {"minLength": -1}}}}"##))
        #expect(deep.map(\.instancePath) == ["/properties/a/items/minLength"], "\(deep)")
        #expect(!meta.isValid(try Self.json(##"{"properties": {"a": {"type": "text"}}}"##)))
        // `$schema` naming it is the standard dialect.
        #expect(try Self.schema(##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "minimum": 3}"##).isValid(try Self.json("2")) == false)
    }

    @Test func remoteURIsMapToFilesInsideTheirFolder() throws {
        let folder = try Self.folder()
        try FileManager.default.createDirectory(atPath: folder + "/remote/types", withIntermediateDirectories: true)
        try ##"{"$id": "http://example.com/types/money.json", "type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"}"##.write(toFile: folder + "/remote/types/money.json", atomically: true, encoding: .utf8)
        try ##"{"properties": {"total": {"$ref": "http://example.com/types/money.json"}}}"##.write(toFile: folder + "/order.json", atomically: true, encoding: .utf8)
        let resources = ["http://example.com/": folder + "/remote"]
        let order = try JSONSchema(path: folder + "/order.json", resources: resources)
        #expect(order.isValid(try Self.json(##"{"total": "12.30"}"##)))
        #expect(order.validate(try Self.json(##"{"total": "12.3"}"##)).first?.schemaPath == "http://example.com/types/money.json#/pattern")
        // Without the mapping the URI is refused, naming it; a mapped URI cannot leave its folder.
        #expect {
            try JSONSchema(path: folder + "/order.json")
        } throws: { error in
            "\(error)".contains("cannot resolve 'http://example.com/types/money.json'") && "\(error)".contains("never fetched from the network")
        }
        try "{}".write(toFile: folder + "/secret.json", atomically: true, encoding: .utf8)
        #expect {
            try JSONSchema(Self.json(##"{"$ref": "http://example.com/../secret.json"}"##), resources: resources)
        } throws: { error in
            "\(error)".contains("outside")
        }
        #expect {
            try JSONSchema(Self.json(##"{"$ref": "http://example.com/types/%2e%2e/%2e%2e/secret.json"}"##), resources: resources)
        } throws: { error in
            "\(error)".contains("outside \(folder)/remote")
        }
        #expect {
            try JSONSchema(Self.json(##"{"$ref": "http://example.com/types/absent.json"}"##), resources: resources)
        } throws: { error in
            "\(error)".contains("cannot read referenced schema \(folder)/remote/types/absent.json")
        }
    }

    @Test func aMetaSchemasVocabulariesDecideWhichKeywordsCount() throws {
        let folder = try Self.folder()
        try ##"{"$id": "http://example.com/meta/structure-only", "$vocabulary": {"https://json-schema.org/draft/2020-12/vocab/core": true, "https://json-schema.org/draft/2020-12/vocab/applicator": true}}"##.write(toFile: folder + "/structure-only", atomically: true, encoding: .utf8)
        try ##"{"$id": "http://example.com/meta/strange", "$vocabulary": {"https://json-schema.org/draft/2020-12/vocab/core": true, "http://example.com/vocab/strange": true}}"##.write(toFile: folder + "/strange", atomically: true, encoding: .utf8)
        let resources = ["http://example.com/meta/": folder]
        let schema = try JSONSchema(Self.json(##"{"$schema": "http://example.com/meta/structure-only", "properties": {"n": {"minimum": 10}, "x": false}}"##), resources: resources)
        #expect(schema.isValid(try Self.json(##"{"n": 1}"##)))  // `minimum` is not in use
        #expect(!schema.isValid(try Self.json(##"{"x": 1}"##)))  // `properties` is
        #expect {
            try JSONSchema(Self.json(##"{"$schema": "http://example.com/meta/strange", "type": "string"}"##), resources: resources)
        } throws: { error in
            "\(error)".contains("requires the vocabulary http://example.com/vocab/strange, which is not implemented")
        }
        #expect {
            try JSONSchema(Self.json(##"{"$schema": "http://example.com/elsewhere/meta", "type": "string"}"##), resources: resources)
        } throws: { error in
            "\(error)".contains("#/$schema") && "\(error)".contains("cannot resolve 'http://example.com/elsewhere/meta'")
        }
    }

    @Test func schemaProblemsNameTheirPlace() throws {
        let cases: [(String, String)] = [
            (##"{"properties": {"a": {"type": "strin"}}}"##, "at #/properties/a/type: 'type' must be one of"),
            (##"{"minLength": -1}"##, "at #/minLength: 'minLength' must be a non-negative integer"),
            (##"{"pattern": "(unclosed"}"##, "at #/pattern: '(unclosed' is not a valid regular expression"),
            (##"{"items": 3}"##, "at #/items: a schema must be an object or a boolean, found integer"),
            (##"{"anyOf": []}"##, "at #/anyOf: 'anyOf' must be a non-empty array of schemas"),
            (##"{"multipleOf": 0}"##, "at #/multipleOf: 'multipleOf' must be greater than 0"),
        ]
        for (text, expected) in cases {
            #expect {
                try Self.schema(text)
            } throws: { error in
                "\(error)".hasPrefix(expected)
            }
        }
        let folder = try Self.folder()
        try "{ nope".write(toFile: folder + "/bad.json", atomically: true, encoding: .utf8)
        #expect {
            try JSONSchema(path: folder + "/bad.json")
        } throws: { error in
            "\(error)".hasPrefix("\(folder)/bad.json: not valid JSON: ")
        }
    }

    @Test func oneCompiledSchemaServesConcurrentValidations() async throws {
        let schema = try JSONSchema(path: "\(SourceTree.repository)/Mappings/canonical/invoice.schema.json")
        let good = try Self.json("""
        {"invoice": {"@id": "1", "@issued": "2026-01-02", "@currency": "EUR", "seller": {"@name": "S"}, "buyer": {"@name": "B"},
         "lines": {"line": [{"@id": "1", "@quantity": "2", "@amount": "3.50", "#text": "x"}]}, "totals": {"@payable": "3.50"}}}
        """)
        let bad = try Self.json(##"{"invoice": {"@id": "1"}}"##)
        let results = await withTaskGroup(of: (Bool, Bool).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var allGood = true
                    var allBad = true
                    for _ in 0..<200 {
                        allGood = allGood && schema.isValid(good)
                        allBad = allBad && !schema.validate(bad).isEmpty
                    }
                    return (allGood, allBad)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0.0 && $0.1 })
    }
}

/// The repository root, found from this file's place.
enum SourceTree {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}
