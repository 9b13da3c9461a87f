// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The 2020-12 vocabularies a schema resource uses, as its meta-schema's `$vocabulary`
/// declares them; keywords of a vocabulary that is not in use are ignored (annotations).
struct SchemaVocabularies: OptionSet, Hashable {
    let rawValue: UInt8

    init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    static let core = SchemaVocabularies(rawValue: 1 << 0)
    static let applicator = SchemaVocabularies(rawValue: 1 << 1)
    static let unevaluated = SchemaVocabularies(rawValue: 1 << 2)
    static let validation = SchemaVocabularies(rawValue: 1 << 3)
    /// Annotation-only vocabularies: accepted, nothing to check.
    static let annotations = SchemaVocabularies(rawValue: 1 << 4)
    static let all: SchemaVocabularies = [.core, .applicator, .unevaluated, .validation, .annotations]

    static let prefix = "https://json-schema.org/draft/2020-12/vocab/"
    static let known: [String: SchemaVocabularies] = [
        prefix + "core": .core,
        prefix + "applicator": .applicator,
        prefix + "unevaluated": .unevaluated,
        prefix + "validation": .validation,
        prefix + "meta-data": .annotations,
        prefix + "format-annotation": .annotations,
        prefix + "content": .annotations,
    ]

    /// Meta-schemas whose dialect is every keyword this validator knows (the standard
    /// 2020-12 one, and earlier drafts, whose spellings are understood).
    static let standardDialects: Set<String> = [
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema",
    ]

    /// The vocabulary each keyword belongs to; keywords not listed (core, annotations,
    /// unknown keywords) are always read.
    static let ofKeyword: [String: SchemaVocabularies] = {
        var table: [String: SchemaVocabularies] = [:]
        for keyword in [
            "prefixItems", "items", "contains", "additionalProperties", "properties", "patternProperties",
            "dependentSchemas", "propertyNames", "if", "then", "else", "allOf", "anyOf", "oneOf", "not",
            "additionalItems", "dependencies",
        ] { table[keyword] = .applicator }
        for keyword in ["unevaluatedItems", "unevaluatedProperties"] { table[keyword] = .unevaluated }
        for keyword in [
            "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
            "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
            "maxProperties", "minProperties", "required", "dependentRequired",
        ] { table[keyword] = .validation }
        return table
    }()

    func reads(_ keyword: String) -> Bool {
        SchemaVocabularies.ofKeyword[keyword].map { contains($0) } ?? true
    }

    /// The vocabularies a meta-schema's `$vocabulary` declares (all when it declares none).
    ///
    /// - Throws: a message when it requires a vocabulary this validator does not implement.
    init(declaredBy metaSchema: JSONValue, named uri: String) throws(SchemaSourceError) {
        guard let declared = metaSchema["$vocabulary"] else {
            self = .all
            return
        }
        guard case .object(let entries) = declared else {
            throw SchemaSourceError("the meta-schema \(uri) has a '$vocabulary' that is not an object")
        }
        var found: SchemaVocabularies = []
        for entry in entries {
            if let vocabulary = SchemaVocabularies.known[entry.key] {
                found.insert(vocabulary)
            } else if case .bool(true) = entry.value {
                throw SchemaSourceError("the meta-schema \(uri) requires the vocabulary \(entry.key), which is not implemented (format assertion and custom vocabularies are not)")
            }
        }
        self = found
    }
}
