// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `validate: { xsd: FILE }` or `validate: { json-schema: FILE }`: lets a body through only
/// if it validates; otherwise the step fails with status 400 and the first problems (XSD:
/// with their lines; JSON Schema: with their instance paths and keywords).
struct ValidateStep: Processor {
    let file: String
    /// The body's problems (none: valid); throws when the body does not parse.
    let problems: @Sendable (ByteBuffer) throws -> [String]

    static func xsd(_ schema: XSDSchema, file: String) -> ValidateStep {
        ValidateStep(file: file) { body in
            do {
                return try body.withUnsafeReadableBytes { try schema.validate($0, name: "the body") }.map(\.description)
            } catch let error as XMLError {
                throw ProcessingError("\(error)", status: 400)
            }
        }
    }

    static func jsonSchema(_ schema: JSONSchema, file: String) -> ValidateStep {
        ValidateStep(file: file) { body in
            do {
                return try body.withUnsafeReadableBytes { try schema.validate($0) }.map(\.description)
            } catch let error as JSONError {
                throw ProcessingError("the body is not JSON: \(error)", status: 400)
            }
        }
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        let found = try problems(exchange.message.body)
        guard found.isEmpty else {
            let count = found.count
            throw ProcessingError(
                "the body is not valid against \(file) (\(count) problem\(count == 1 ? "" : "s")): \(summarizeProblems(found))",
                status: 400
            )
        }
        return .next(exchange, detail: "valid against \(file)")
    }
}

extension ValidateStep: StepKind {
    static let spec = StepSpec(
        "validate",
        summary: "Refuses a body that does not validate (status 400, the violations in the error); the schema is compiled once at load. Give one of 'xsd' or 'json-schema'.",
        fields: [
            Field("xsd", .string, "XML Schema path relative to the mappings folder; its includes and imports are read from the mappings folder."),
            Field("json-schema", .string, "JSON Schema (draft 2020-12) path relative to the mappings folder; files its $refs name are read from the mappings folder."),
            Field("resources", .mapping, "For 'json-schema': remote URI prefixes its $refs use and the mappings-folder folders that hold those files, e.g. { \"http://example.com/schemas/\": schemas/ }. Nothing is fetched from the network; the 2020-12 meta-schemas are built in."),
        ],
        example: "- validate: { xsd: ubl/maindoc/UBL-Invoice-2.1.xsd }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        return compiler.buildValidate(fields, at: step.location)
    }
}

extension RouteCompiler {
    /// `validate: { xsd: F }` or `validate: { json-schema: F }`: the schema compiled once,
    /// shared by every step that names the same file.
    func buildValidate(_ fields: [String: ConfigNode], at location: SourceLocation) -> (any Processor)? {
        let given = ["xsd", "json-schema"].filter { fields[$0] != nil }
        guard given.count == 1, let kind = given.first, let node = fields[kind], let file = node.scalar else {
            log.error(location, given.isEmpty
                ? "'validate' needs a schema: { xsd: FILE } or { json-schema: FILE }"
                : "'validate' takes one schema: 'xsd' or 'json-schema', not both")
            return nil
        }
        if kind == "xsd", let resources = fields["resources"] {
            log.error(resources.location, "'resources' maps URIs for a 'json-schema'; an 'xsd' reads its includes and imports from the mappings folder")
            return nil
        }
        guard let path = mappingsPath(file, at: node.contentLocation, what: "schema") else { return nil }
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(node.contentLocation, "schema '\(file)' does not exist in the mappings folder (\(mappingsDirectory))")
            return nil
        }
        let root = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        do {
            if kind == "xsd" {
                let compiled = schemas[path] == nil
                let schema = try schemas[path] ?? XSDSchema(path: path, allowedRoot: root)
                schemas[path] = schema
                if compiled {
                    for warning in schema.warnings {
                        log.warning(node.contentLocation, "schema '\(file)'\(warning.line.map { " line \($0)" } ?? ""): \(warning.message)")
                    }
                }
                return ValidateStep.xsd(schema, file: file)
            }
            guard let resources = schemaResources(fields["resources"]) else { return nil }
            let key = ([path] + resources.keys.sorted().map { "\($0)=\(resources[$0] ?? "")" }).joined(separator: "\n")
            let schema = try jsonSchemas[key] ?? JSONSchema(path: path, allowedRoot: root, resources: resources)
            jsonSchemas[key] = schema
            return ValidateStep.jsonSchema(schema, file: file)
        } catch {
            log.error(node.contentLocation, "\(error)")
            return nil
        }
    }

    /// A JSON Schema's `resources:`: remote URI prefixes and the folders in the mappings
    /// folder that stand for them. Nil (with the error logged) when one is wrong.
    func schemaResources(_ node: ConfigNode?) -> [String: String]? {
        guard let node else { return [:] }
        guard let entries = node.mapping else {
            log.error(node.location, "'resources' maps URI prefixes to folders in the mappings folder, e.g. { \"http://example.com/schemas/\": schemas/ }")
            return nil
        }
        var resources: [String: String] = [:]
        for entry in entries {
            guard let url = URL(string: entry.key), url.scheme != nil, !entry.key.contains("#") else {
                log.error(entry.keyNode.location, "'\(entry.key)' is not an absolute URI prefix (like http://example.com/schemas/)")
                return nil
            }
            guard let folder = entry.value.scalar,
                  let path = mappingsPath(folder, at: entry.value.contentLocation, what: "resource folder")
            else {
                if entry.value.scalar == nil { log.error(entry.value.location, "the folder for '\(entry.key)' must be a path in the mappings folder") }
                return nil
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
                log.error(entry.value.contentLocation, "resource folder '\(folder)' for '\(entry.key)' is not a folder in the mappings folder (\(mappingsDirectory))")
                return nil
            }
            resources[entry.key] = path
        }
        return resources
    }
}
