// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A compiled JSON Schema (draft 2020-12), shared by concurrent validations.
///
/// Compiled once: keywords are checked and turned into a tree of nodes, patterns compiled,
/// and every `$ref` resolved before the first validation. References are resolved inside the
/// schema itself (JSON Pointers, `$id`, `$anchor`), to the bundled 2020-12 meta-schemas,
/// to folders mapped to remote URI prefixes and to other schema files inside `allowedRoot`;
/// nothing is fetched from the network. `$dynamicRef` follows the dynamic scope; the
/// `$vocabulary` of a custom meta-schema decides which keywords are read.
/// `format` is an annotation, as 2020-12 specifies by default. Draft-07 spellings
/// (`definitions`, `dependencies`, `items` as an array with `additionalItems`) are understood.
public final class JSONSchema: @unchecked Sendable {
    // @unchecked: the node tree is only read after compilation (references are filled in
    // by the compiler before `init` returns).

    /// One problem found by validation: where in the instance, which keyword, why.
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        /// JSON Pointer to the failing value in the instance ("" is the whole document).
        public var instancePath: String
        /// The keyword that failed (`minimum`, `required`, `type`, …).
        public var keyword: String
        /// Where that keyword is in the schema, as a JSON Pointer fragment (`#/properties/total/minimum`).
        public var schemaPath: String
        public var message: String

        public var description: String {
            "\(instancePath.isEmpty ? "/" : instancePath): \(keyword): \(message)"
        }
    }

    /// The schema file, when compiled from one.
    public let path: String?
    private let root: SchemaNode
    /// Every node compiled, kept alive here: references between nodes are unowned.
    private let nodes: [SchemaNode]
    /// Whether a `$dynamicRef` needs the resources entered on the way to it.
    private let tracksDynamicScope: Bool

    /// Compiles the schema file at `path`. Other files it references must lie inside
    /// `allowedRoot` (the schema's own folder unless widened). `resources` maps remote URI
    /// prefixes to local folders (`"http://example.com/schemas/": "/srv/mappings/schemas"`):
    /// a reference under a prefix reads the file at the rest of the URI inside that folder.
    ///
    /// - Throws: ``JSONSchemaError`` naming the file and the schema location of the problem.
    public convenience init(path: String, allowedRoot: String? = nil, resources: [String: String] = [:]) throws {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let root = allowedRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? (absolute as NSString).deletingLastPathComponent
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw JSONSchemaError("cannot read schema \(path)")
        }
        let json: JSONValue
        do {
            json = try data.withUnsafeBytes { try JSONValue(bytes: $0) }
        } catch {
            throw JSONSchemaError("\(path): not valid JSON: \(error)")
        }
        do {
            try self.init(json, baseURI: URL(fileURLWithPath: absolute).absoluteString, sources: SchemaSources(allowedRoot: root, resources: resources), path: absolute)
        } catch let error as JSONSchemaError {
            throw JSONSchemaError("\(path): \(error.message)")
        }
    }

    /// Compiles a schema given as a JSON value. Relative references resolve against
    /// `baseURI`; file references only inside `allowedRoot`, and none without it;
    /// `resources` as for a file.
    public convenience init(_ schema: JSONValue, baseURI: String = "urn:switchboard:schema", allowedRoot: String? = nil, resources: [String: String] = [:]) throws {
        try self.init(schema, baseURI: baseURI, sources: SchemaSources(allowedRoot: allowedRoot, resources: resources), path: nil)
    }

    private init(_ schema: JSONValue, baseURI: String, sources: SchemaSources, path: String?) throws {
        let compiler = SchemaCompiler(sources: sources)
        let base = SchemaCompiler.stripFragment(baseURI)
        compiler.resources[base] = schema
        root = try compiler.compile(schema, base: base, pointer: "", display: "#")
        try compiler.resolveReferences()
        nodes = compiler.all
        tracksDynamicScope = compiler.dynamicReferences.contains { $0.dynamicName != nil }
        self.path = path
    }

    /// Validates an instance; an empty list means valid. At most `limit` violations are
    /// collected.
    public func validate(_ instance: JSONValue, limit: Int = 100) -> [Violation] {
        let run = SchemaRun(limit: limit, quiet: false, tracksDynamicScope: tracksDynamicScope)
        var none: SchemaAnnotations?
        _ = withExtendedLifetime(nodes) { run.evaluate(root, instance, &none) }
        return run.violations
    }

    /// Whether the instance is valid, without building any error messages.
    public func isValid(_ instance: JSONValue) -> Bool {
        let run = SchemaRun(limit: 0, quiet: true, tracksDynamicScope: tracksDynamicScope)
        var none: SchemaAnnotations?
        return withExtendedLifetime(nodes) { run.evaluate(root, instance, &none) }
    }

    /// Parses and validates JSON bytes.
    ///
    /// - Throws: ``JSONError`` when the bytes are not JSON.
    public func validate(_ bytes: UnsafeRawBufferPointer, limit: Int = 100) throws -> [Violation] {
        validate(try JSONValue(bytes: bytes), limit: limit)
    }
}

/// A schema could not be compiled.
public struct JSONSchemaError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
