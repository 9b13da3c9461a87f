// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

// Compiles schema JSON into nodes and resolves references between them.

final class SchemaCompiler {
    let sources: SchemaSources
    /// Schema resources by base URI (without fragment).
    var resources: [String: JSONValue] = [:]
    /// Compiled subschemas by `BASE#/json/pointer`, and anchors by `BASE#name`.
    var byPointer: [String: SchemaNode] = [:]
    var byAnchor: [String: SchemaNode] = [:]
    var pending: [(SchemaReference, location: String)] = []
    var all: [SchemaNode] = []
    /// Resource numbers by base URI, and the vocabularies each resource uses.
    var resourceNumbers: [String: Int] = [:]
    var vocabularies: [String: SchemaVocabularies] = [:]
    /// Nodes with a `$dynamicAnchor`, by anchor name and resource number.
    var dynamicAnchors: [String: [Int: SchemaNode]] = [:]
    var dynamicReferences: [SchemaReference] = []

    init(sources: SchemaSources) {
        self.sources = sources
    }

    func resourceNumber(_ base: String) -> Int {
        if let number = resourceNumbers[base] { return number }
        resourceNumbers[base] = resourceNumbers.count
        return resourceNumbers.count - 1
    }

    func error(_ display: String, _ message: String) -> JSONSchemaError {
        JSONSchemaError("at \(display): \(message)")
    }

    static func stripFragment(_ uri: String) -> String {
        uri.firstIndex(of: "#").map { String(uri[..<$0]) } ?? uri
    }

    static func escape(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    /// Resolves a URI reference against a base (RFC 3986), keeping fragment-only references
    /// working for bases that are not hierarchical (`urn:`).
    static func resolve(_ reference: String, against base: String) -> String? {
        if reference.hasPrefix("#") { return base + reference }
        if reference.isEmpty { return base }
        if let scheme = reference.firstIndex(of: ":"), !reference[..<scheme].contains("/") { return reference }
        guard let baseURL = URL(string: base), baseURL.scheme != nil, base.contains("/"),
              let resolved = URL(string: reference, relativeTo: baseURL)
        else { return nil }
        return resolved.absoluteString
    }

    func compile(_ json: JSONValue, base: String, pointer: String, display: String) throws -> SchemaNode {
        let key = base + "#" + pointer
        if let existing = byPointer[key] { return existing }
        switch json {
        case .bool(let value):
            let node = SchemaNode(boolean: value, location: display, resource: resourceNumber(base))
            byPointer[key] = node
            all.append(node)
            return node
        case .object(let members):
            return try compileObject(members, json: json, base: base, pointer: pointer, display: display)
        default:
            throw error(display, "a schema must be an object or a boolean, found \(SchemaTypes.name(of: json))")
        }
    }

    private func compileObject(_ members: [(key: String, value: JSONValue)], json: JSONValue, base: String, pointer: String, display: String) throws -> SchemaNode {
        let outerKey = base + "#" + pointer
        let inherited = vocabularies[base] ?? .all
        var base = base
        var pointer = pointer
        if case .string(let id)? = json["$id"] {
            guard let resolved = SchemaCompiler.resolve(id, against: base) else {
                throw error(display, "'$id' \(id) cannot be resolved against \(base)")
            }
            base = SchemaCompiler.stripFragment(resolved)
            pointer = ""
            resources[base] = json
        }
        let node = SchemaNode(boolean: nil, location: display, resource: resourceNumber(base))
        all.append(node)
        byPointer[outerKey] = node
        byPointer[base + "#" + pointer] = node
        if case .string(let metaSchema)? = json["$schema"] {
            vocabularies[base] = try vocabularies(of: metaSchema, at: display + "/$schema")
        } else if vocabularies[base] == nil {
            vocabularies[base] = inherited
        }
        let active = vocabularies[base] ?? .all
        // Keywords of a vocabulary the meta-schema does not use are not read at all.
        let json: JSONValue = active == .all ? json : .object(members.filter { active.reads($0.key) })
        if case .string(let anchor)? = json["$anchor"] { byAnchor[base + "#" + anchor] = node }
        if case .string(let anchor)? = json["$dynamicAnchor"] {
            byAnchor[base + "#" + anchor] = node
            node.dynamicAnchor = anchor
            dynamicAnchors[anchor, default: [:]][node.resource] = node
        }

        func sub(_ value: JSONValue, _ path: [String]) throws -> SchemaNode {
            let suffix = path.map { "/" + SchemaCompiler.escape($0) }.joined()
            return try compile(value, base: base, pointer: pointer + suffix, display: display + suffix)
        }
        func here(_ keyword: String) -> String { display + "/" + SchemaCompiler.escape(keyword) }
        func number(_ keyword: String) throws -> JSONNumber? {
            guard let value = json[keyword] else { return nil }
            guard case .number(let number) = value else { throw error(here(keyword), "'\(keyword)' must be a number") }
            return number
        }
        func count(_ keyword: String) throws -> Int? {
            guard let value = json[keyword] else { return nil }
            guard case .number(let number) = value, let count = number.int64, count >= 0, count < 1_000_000_000_000_000 else {
                throw error(here(keyword), "'\(keyword)' must be a non-negative integer")
            }
            return Int(count)
        }
        func list(_ keyword: String) throws -> [SchemaNode]? {
            guard let value = json[keyword] else { return nil }
            guard case .array(let items) = value, !items.isEmpty else {
                throw error(here(keyword), "'\(keyword)' must be a non-empty array of schemas")
            }
            return try items.enumerated().map { try sub($0.element, [keyword, String($0.offset)]) }
        }
        func map(_ keyword: String) throws -> [(String, SchemaNode)]? {
            guard let value = json[keyword] else { return nil }
            guard case .object(let entries) = value else { throw error(here(keyword), "'\(keyword)' must be an object of schemas") }
            return try entries.map { ($0.key, try sub($0.value, [keyword, $0.key])) }
        }
        func single(_ keyword: String) throws -> SchemaNode? {
            try json[keyword].map { try sub($0, [keyword]) }
        }
        func strings(_ value: JSONValue, _ location: String) throws -> [String] {
            guard case .array(let items) = value else { throw error(location, "expected an array of strings") }
            return try items.map {
                guard case .string(let name) = $0 else { throw error(location, "expected an array of strings") }
                return name
            }
        }
        func add(_ name: String, _ check: SchemaCheck) { node.keywords.append(SchemaKeyword(name: name, check: check)) }

        // Subschemas no keyword applies directly, compiled so that references reach them.
        for keyword in ["$defs", "definitions"] { _ = try map(keyword) }

        for refKeyword in ["$ref", "$dynamicRef"] {
            guard let value = json[refKeyword] else { continue }
            guard case .string(let reference) = value else { throw error(here(refKeyword), "'\(refKeyword)' must be a string") }
            guard let target = SchemaCompiler.resolve(reference, against: base) else {
                throw error(here(refKeyword), "'\(reference)' cannot be resolved against \(base)")
            }
            let ref = SchemaReference(uri: target, isDynamic: refKeyword == "$dynamicRef")
            pending.append((ref, here(refKeyword)))
            if ref.isDynamic { dynamicReferences.append(ref) }
            add(refKeyword, .reference(ref))
        }

        if let value = json["type"] {
            var types: SchemaTypes = []
            let names: [JSONValue]
            if case .array(let items) = value { names = items } else { names = [value] }
            for name in names {
                guard case .string(let text) = name, let type = SchemaTypes.names.first(where: { $0.0 == text })?.1 else {
                    throw error(here("type"), "'type' must be one of null, boolean, object, array, number, string, integer (or a list of them)")
                }
                types.insert(type)
            }
            add("type", .type(types))
        }
        if let value = json["enum"] {
            guard case .array(let items) = value else { throw error(here("enum"), "'enum' must be an array") }
            add("enum", .enumeration(items))
        }
        if let value = json["const"] { add("const", .constant(value)) }

        if let divisor = try number("multipleOf") {
            guard divisor > 0 else { throw error(here("multipleOf"), "'multipleOf' must be greater than 0") }
            add("multipleOf", .multipleOf(divisor))
        }
        if let limit = try number("maximum") { add("maximum", .maximum(limit)) }
        if let limit = try number("exclusiveMaximum") { add("exclusiveMaximum", .exclusiveMaximum(limit)) }
        if let limit = try number("minimum") { add("minimum", .minimum(limit)) }
        if let limit = try number("exclusiveMinimum") { add("exclusiveMinimum", .exclusiveMinimum(limit)) }

        if let limit = try count("maxLength") { add("maxLength", .maxLength(limit)) }
        if let limit = try count("minLength") { add("minLength", .minLength(limit)) }
        if let value = json["pattern"] {
            guard case .string(let source) = value else { throw error(here("pattern"), "'pattern' must be a string") }
            do {
                add("pattern", .pattern(try SchemaPattern(source)))
            } catch {
                throw self.error(here("pattern"), "'\(source)' is not a valid regular expression: \(error)")
            }
        }

        if let limit = try count("maxItems") { add("maxItems", .maxItems(limit)) }
        if let limit = try count("minItems") { add("minItems", .minItems(limit)) }
        if case .bool(true)? = json["uniqueItems"] { add("uniqueItems", .uniqueItems) }
        let minContains = try count("minContains")
        let maxContains = try count("maxContains")
        if let contains = try single("contains") {
            add("contains", .contains(contains, min: minContains ?? 1, max: maxContains))
        }

        if let limit = try count("maxProperties") { add("maxProperties", .maxProperties(limit)) }
        if let limit = try count("minProperties") { add("minProperties", .minProperties(limit)) }
        if let value = json["required"] { add("required", .required(try strings(value, here("required")))) }
        var dependentRequired: [(String, [String])] = []
        var dependentSchemas: [(String, SchemaNode)] = try map("dependentSchemas") ?? []
        if case .object(let entries)? = json["dependentRequired"] {
            dependentRequired += try entries.map { ($0.key, try strings($0.value, here("dependentRequired") + "/" + SchemaCompiler.escape($0.key))) }
        }
        if case .object(let entries)? = json["dependencies"] {
            for entry in entries {
                if case .array = entry.value {
                    dependentRequired.append((entry.key, try strings(entry.value, here("dependencies"))))
                } else {
                    dependentSchemas.append((entry.key, try sub(entry.value, ["dependencies", entry.key])))
                }
            }
        }
        if !dependentRequired.isEmpty { add("dependentRequired", .dependentRequired(dependentRequired)) }

        if let nodes = try list("allOf") { add("allOf", .allOf(nodes)) }
        if let nodes = try list("anyOf") { add("anyOf", .anyOf(nodes)) }
        if let nodes = try list("oneOf") { add("oneOf", .oneOf(nodes)) }
        if let negated = try single("not") { add("not", .not(negated)) }
        let thenNode = try single("then")
        let elseNode = try single("else")
        if let condition = try single("if") { add("if", .conditional(condition, then: thenNode, else: elseNode)) }

        let properties = try map("properties") ?? []
        var patterns: [(SchemaPattern, SchemaNode)] = []
        if case .object(let entries)? = json["patternProperties"] {
            for entry in entries {
                do {
                    patterns.append((try SchemaPattern(entry.key), try sub(entry.value, ["patternProperties", entry.key])))
                } catch let failure as JSONSchemaError {
                    throw failure
                } catch {
                    throw self.error(here("patternProperties"), "'\(entry.key)' is not a valid regular expression: \(error)")
                }
            }
        } else if json["patternProperties"] != nil {
            throw error(here("patternProperties"), "'patternProperties' must be an object of schemas")
        }
        let additional = try single("additionalProperties")
        if !properties.isEmpty || !patterns.isEmpty || additional != nil {
            let byName = Dictionary(properties, uniquingKeysWith: { _, last in last })
            add("properties", .members(properties: byName, patterns: patterns, additional: additional))
        }
        if let names = try single("propertyNames") { add("propertyNames", .propertyNames(names)) }
        if !dependentSchemas.isEmpty { add("dependentSchemas", .dependentSchemas(dependentSchemas)) }

        var prefix = try list("prefixItems") ?? []
        var rest: SchemaNode?
        var restName = "items"
        if case .array(let items)? = json["items"] {
            // Draft-07: `items` as a list is the prefix, `additionalItems` the rest.
            prefix = try items.enumerated().map { try sub($0.element, ["items", String($0.offset)]) }
            rest = try single("additionalItems")
            restName = "additionalItems"
        } else {
            rest = try single("items")
        }
        if !prefix.isEmpty || rest != nil { add(restName, .items(prefix: prefix, rest: rest)) }

        if let unevaluated = try single("unevaluatedProperties") {
            add("unevaluatedProperties", .unevaluatedProperties(unevaluated))
            node.needsAnnotations = true
        }
        if let unevaluated = try single("unevaluatedItems") {
            add("unevaluatedItems", .unevaluatedItems(unevaluated))
            node.needsAnnotations = true
        }
        return node
    }

    /// Fills in every reference, compiling what they point at when it was not compiled yet
    /// (a pointer into a non-schema keyword, another file).
    func resolveReferences() throws {
        while let (reference, location) = pending.popLast() {
            reference.target = try resolve(reference.uri, at: location)
        }
        // A `$dynamicRef` is dynamic only when its static target has the anchor it names
        // as a `$dynamicAnchor`; then any resource in the dynamic scope may supply it.
        for reference in dynamicReferences {
            let resource = SchemaCompiler.stripFragment(reference.uri)
            let name = String(reference.uri.dropFirst(resource.count + 1))
            guard !name.isEmpty, !name.hasPrefix("/"), let target = reference.target, target.dynamicAnchor == name else { continue }
            reference.dynamicName = name
            reference.dynamicTargets = (dynamicAnchors[name] ?? [:]).mapValues { Unmanaged.passUnretained($0) }
        }
    }

    /// The vocabularies of the meta-schema a resource's `$schema` names.
    private func vocabularies(of metaSchema: String, at location: String) throws -> SchemaVocabularies {
        let uri = SchemaCompiler.stripFragment(metaSchema)
        if SchemaVocabularies.standardDialects.contains(uri) { return .all }
        do throws(SchemaSourceError) {
            let json: JSONValue
            if let known = resources[uri] { json = known } else { json = try sources.document(uri).json }
            return try SchemaVocabularies(declaredBy: json, named: uri)
        } catch {
            throw self.error(location, "meta-schema: \(error.message)")
        }
    }

    private func resolve(_ uri: String, at location: String) throws -> SchemaNode {
        let resource = SchemaCompiler.stripFragment(uri)
        let rawFragment = uri.count > resource.count ? String(uri.dropFirst(resource.count + 1)) : ""
        let fragment = rawFragment.removingPercentEncoding ?? rawFragment
        if fragment.isEmpty || fragment.hasPrefix("/") {
            if let node = byPointer[resource + "#" + fragment] { return node }
        } else if let node = byAnchor[resource + "#" + fragment] {
            return node
        }
        if resources[resource] == nil { try load(resource, at: location) }
        if !fragment.isEmpty, !fragment.hasPrefix("/") {
            guard let node = byAnchor[resource + "#" + fragment] else {
                throw error(location, "no '$anchor' named '\(fragment)' in \(resource)")
            }
            return node
        }
        guard var json = resources[resource] else { throw error(location, "cannot resolve '\(uri)'") }
        // Walk the pointer from the resource root, following any `$id` met on the way.
        var base = resource
        var pointer = ""
        var display = "\(resource)#"
        let tokens = fragment.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
        for token in tokens {
            let next: JSONValue?
            switch json {
            case .object: next = json[token]
            case .array(let items): next = Int(token).flatMap { items.indices.contains($0) ? items[$0] : nil }
            default: next = nil
            }
            guard let next else { throw error(location, "'\(uri)' points at nothing") }
            json = next
            pointer += "/" + SchemaCompiler.escape(token)
            display += "/" + SchemaCompiler.escape(token)
            if case .string(let id)? = json["$id"], let resolved = SchemaCompiler.resolve(id, against: base) {
                base = SchemaCompiler.stripFragment(resolved)
                pointer = ""
            }
        }
        if let node = byPointer[base + "#" + pointer] { return node }
        return try compile(json, base: base, pointer: pointer, display: display)
    }

    /// Compiles another schema document that a reference names: a bundled meta-schema, a
    /// file in a folder mapped to its URI prefix, or a file inside the allowed folder.
    private func load(_ resource: String, at location: String) throws {
        let document: (json: JSONValue, name: String)
        do {
            document = try sources.document(resource)
        } catch {
            throw self.error(location, error.message)
        }
        resources[resource] = document.json
        _ = try compile(document.json, base: resource, pointer: "", display: document.name + "#")
    }
}
