// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform

// Steps that read the mappings folder: xslt, validate, split's fixed-width layouts.
extension RouteCompiler {
    /// `xslt: FILE` or `xslt: { file, params: { name: template }, allow: FOLDER }`: the
    /// stylesheet is compiled here, once, and may read only inside the mappings folder
    /// (or the `allow` folder under it).
    func buildXSLT(_ fields: [String: ConfigNode], scope: RouteScope, at location: SourceLocation) -> XSLTStep? {
        guard let fileNode = fields["file"], let file = fileNode.scalar else { return nil }
        guard let path = mappingsPath(file, at: fileNode.contentLocation, what: "stylesheet") else { return nil }
        var root = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        if let allowNode = fields["allow"], let allow = allowNode.scalar {
            guard let widened = mappingsPath(allow, at: allowNode.contentLocation, what: "'allow' folder", mustExist: false) else { return nil }
            root = widened
        }
        var parameters: [(String, Template)] = []
        if let paramsNode = fields["params"] {
            guard let pairs = paramsNode.mapping else {
                log.error(paramsNode.location, "'params' maps parameter names to values, as in { lang: en, sent: \"${date:yyyy-MM-dd}\" }")
                return nil
            }
            for pair in pairs {
                guard let value = template(pair.value, scope: scope) else {
                    log.error(pair.value.location, "parameter '\(pair.key)' needs a single value")
                    continue
                }
                parameters.append((pair.key, value))
            }
        }
        let key = path + "\u{0}" + root
        if let compiled = stylesheets[key] {
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(fileNode.contentLocation, "stylesheet '\(file)' does not exist in the mappings folder (\(mappingsDirectory))")
            return nil
        }
        do {
            let compiled = try XSLTStylesheet(path: path, allowedRoot: root)
            stylesheets[key] = compiled
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        } catch {
            log.error(fileNode.contentLocation, "\(error)")
            return nil
        }
    }

    /// `split: { fixed-width: LAYOUT, path: batches.entries }`: the layout compiled once.
    func fixedWidthSource(_ node: ConfigNode, path pathNode: ConfigNode?, at location: SourceLocation) -> SplitStep.Source? {
        guard let file = node.scalar, let path = mappingsPath(file, at: node.contentLocation, what: "layout") else { return nil }
        let layout: FixedWidthLayout
        if let compiled = layouts[path] {
            layout = compiled
        } else {
            do {
                layout = try FixedWidthLayout(path: path)
                layouts[path] = layout
            } catch let error as ConfigurationError {
                for diagnostic in error.diagnostics { log.error(diagnostic.location, diagnostic.message) }
                return nil
            } catch {
                log.error(node.contentLocation, "\(error)")
                return nil
            }
        }
        guard let pathNode, let split = pathNode.scalar else {
            log.error(location, "'split' with 'fixed-width' needs 'path': one of \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        guard layout.structurePaths.contains(split) else {
            log.error(pathNode.contentLocation, "'\(split)' is not a path of the layout's structure; paths: \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        return .fixedWidth(layout, path: split.split(separator: ".").map(String.init))
    }

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

    /// A path inside the mappings folder, or nil (with an error) when it would leave it.
    func mappingsPath(_ relative: String, at location: SourceLocation, what: String, mustExist: Bool = true) -> String? {
        let base = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        let path = URL(fileURLWithPath: relative, relativeTo: URL(fileURLWithPath: base + "/")).standardizedFileURL.path
        guard !relative.hasPrefix("/"), path == base || path.hasPrefix(base + "/") else {
            log.error(location, "\(what) '\(relative)' is outside the mappings folder; give a path relative to \(mappingsDirectory)")
            return nil
        }
        return path
    }
}
