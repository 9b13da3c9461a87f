// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SwitchboardTransform

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate an XML file against an XML Schema, or JSON against a JSON Schema, as a route's validate step would.",
        discussion: """
        Exit 0 when the input is valid; 1 with every problem when it is not (XSD: line and \
        message; JSON Schema: instance path, keyword and message), or when the input is not \
        well-formed XML or JSON; 2 when the schema itself cannot be used. \
        Files the schema includes, imports or references ($ref) are read from its own folder \
        tree (--allow widens that); nothing is fetched from the network. \
        JSON Schemas are draft 2020-12 (draft-07 spellings are understood too); the 2020-12 \
        meta-schemas are built in, and --resource serves a remote URI prefix from a folder.

        Examples:
          switchboard validate --xsd Mappings/canonical/invoice.xsd invoice.xml
          switchboard validate --xsd schemas/maindoc/UBL-Invoice-2.1.xsd \\
              --allow schemas invoice.xml
          switchboard validate --json-schema Mappings/canonical/invoice.schema.json \\
              invoice.json
          cat invoice.json | switchboard validate --json-schema invoice.schema.json -
          switchboard validate --json-schema Mappings/payment.json \\
              --resource https://schemas.partner.example/=Mappings/partner payment.json
        """
    )

    @Option(help: ArgumentHelp("The XML Schema.", valueName: "file"))
    var xsd: String?

    @Option(name: .customLong("json-schema"), help: ArgumentHelp("The JSON Schema (draft 2020-12).", valueName: "file"))
    var jsonSchema: String?

    @Option(help: ArgumentHelp("Folder tree the schema's includes, imports and references may come from, instead of its own folder.", valueName: "dir"))
    var allow: String?

    @Option(name: .customLong("resource"), help: ArgumentHelp("A remote URI prefix a JSON Schema's $refs use, and the folder holding those files (repeatable).", valueName: "uri=dir"))
    var resources: [String] = []

    @Argument(help: ArgumentHelp("The XML or JSON file; '-' reads standard input.", valueName: "input"))
    var input: String

    func validate() throws {
        guard (xsd == nil) != (jsonSchema == nil) else {
            throw ValidationError("give one schema: --xsd FILE or --json-schema FILE")
        }
        guard resources.isEmpty || jsonSchema != nil else {
            throw ValidationError("--resource maps URIs for --json-schema; an XML Schema reads its imports from --allow")
        }
        _ = try resourceFolders()
    }

    /// `--resource URI=DIR` options as URI prefix → folder.
    func resourceFolders() throws -> [String: String] {
        var folders: [String: String] = [:]
        for resource in resources {
            guard let equals = resource.firstIndex(of: "="), let url = URL(string: String(resource[..<equals])), url.scheme != nil else {
                throw ValidationError("--resource \(resource): give URI=DIR, such as https://schemas.partner.example/=Mappings/partner")
            }
            let folder = String(resource[resource.index(after: equals)...])
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("--resource \(resource): '\(folder)' is not a folder")
            }
            folders[String(resource[..<equals])] = folder
        }
        return folders
    }

    func run() async throws {
        if let jsonSchema {
            try check(against: jsonSchema, compile: { try JSONSchema(path: $0, allowedRoot: allow, resources: try resourceFolders()) }) { schema, data in
                do {
                    return try data.withUnsafeBytes { try schema.validate($0, limit: 1000) }
                        .map { "\(input): \($0) (schema \($0.schemaPath))" }
                } catch {
                    throw CommandFailure("\(input) is not JSON: \(error)")
                }
            }
        } else if let xsd {
            try check(against: xsd, compile: { path in
                let schema = try XSDSchema(path: path, allowedRoot: allow)
                for warning in schema.warnings {
                    printError("\(path):\(warning.line.map(String.init) ?? "?"): warning: \(warning.message)")
                }
                return schema
            }) { schema, data in
                do {
                    return try data.withUnsafeBytes { try schema.validate($0, name: input) }
                        .map { "\(input):\($0.line.map(String.init) ?? "?"): error: \($0.message)" }
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
        }
    }

    /// Compiles the schema (exit 2 when it cannot be used), reads the input and prints its
    /// problems (exit 1 when there are any, or the input does not parse).
    private func check<Schema>(
        against schemaPath: String,
        compile: (String) throws -> Schema,
        problems: (Schema, Data) throws -> [String]
    ) throws {
        let schema: Schema
        do {
            schema = try compile(schemaPath)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let found: [String]
        do {
            found = try problems(schema, try readInput(input))
        } catch let failure as CommandFailure {
            printError("error: \(failure.message)")
            throw ExitCode.failure
        }
        guard found.isEmpty else {
            for problem in found { printError(problem) }
            printError("\(found.count) problem\(found.count == 1 ? "" : "s")")
            throw ExitCode.failure
        }
        print("\(input): valid against \(schemaPath)")
    }
}

/// The input could not be checked (it does not parse).
private struct CommandFailure: Error {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}
