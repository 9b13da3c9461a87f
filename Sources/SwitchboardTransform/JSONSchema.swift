import Foundation

/// A compiled JSON Schema (draft 2020-12), shared by concurrent validations.
///
/// Compiled once: keywords are checked and turned into a tree of nodes, patterns compiled,
/// and every `$ref` resolved before the first validation. References are resolved inside the
/// schema itself (JSON Pointers, `$id`, `$anchor`) and to other schema files inside
/// `allowedRoot`; nothing is fetched from the network. `$dynamicRef` resolves statically,
/// like `$ref` (the same result unless a schema extends another through `$dynamicAnchor`).
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

    /// Compiles the schema file at `path`. Other files it references must lie inside
    /// `allowedRoot` (the schema's own folder unless widened).
    ///
    /// - Throws: ``JSONSchemaError`` naming the file and the schema location of the problem.
    public convenience init(path: String, allowedRoot: String? = nil) throws {
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
            try self.init(json, baseURI: URL(fileURLWithPath: absolute).absoluteString, allowedRoot: root, path: absolute)
        } catch let error as JSONSchemaError {
            throw JSONSchemaError("\(path): \(error.message)")
        }
    }

    /// Compiles a schema given as a JSON value. Relative references resolve against
    /// `baseURI`; file references only inside `allowedRoot`, and none without it.
    public convenience init(_ schema: JSONValue, baseURI: String = "urn:switchboard:schema", allowedRoot: String? = nil) throws {
        try self.init(schema, baseURI: baseURI, allowedRoot: allowedRoot, path: nil)
    }

    private init(_ schema: JSONValue, baseURI: String, allowedRoot: String?, path: String?) throws {
        let compiler = SchemaCompiler(allowedRoot: allowedRoot)
        let base = SchemaCompiler.stripFragment(baseURI)
        compiler.resources[base] = schema
        root = try compiler.compile(schema, base: base, pointer: "", display: "#")
        try compiler.resolveReferences()
        nodes = compiler.all
        self.path = path
    }

    /// Validates an instance; an empty list means valid. At most `limit` violations are
    /// collected.
    public func validate(_ instance: JSONValue, limit: Int = 100) -> [Violation] {
        let run = SchemaRun(limit: limit, quiet: false)
        var none: SchemaAnnotations?
        _ = withExtendedLifetime(nodes) { run.evaluate(root, instance, &none) }
        return run.violations
    }

    /// Whether the instance is valid, without building any error messages.
    public func isValid(_ instance: JSONValue) -> Bool {
        let run = SchemaRun(limit: 0, quiet: true)
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

// MARK: - Compiled form

/// One subschema: a boolean schema, or the keywords of an object schema in evaluation order
/// (the `unevaluated*` keywords last, as they depend on the others).
final class SchemaNode {
    let boolean: Bool?
    /// Where this subschema is, for messages (`#/properties/total`).
    let location: String
    var keywords: [SchemaKeyword] = []
    /// Whether the node itself needs to know what its other keywords evaluated.
    var needsAnnotations = false

    init(boolean: Bool?, location: String) {
        self.boolean = boolean
        self.location = location
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

    init(uri: String) {
        self.uri = uri
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

// MARK: - Compiler

final class SchemaCompiler {
    let allowedRoot: String?
    /// Schema resources by base URI (without fragment).
    var resources: [String: JSONValue] = [:]
    /// Compiled subschemas by `BASE#/json/pointer`, and anchors by `BASE#name`.
    var byPointer: [String: SchemaNode] = [:]
    var byAnchor: [String: SchemaNode] = [:]
    var pending: [(SchemaReference, location: String)] = []
    var all: [SchemaNode] = []

    init(allowedRoot: String?) {
        self.allowedRoot = allowedRoot
    }

    /// Keywords whose value is one subschema, a list of them, or a map of them.
    static let singleSchema: Set<String> = [
        "not", "if", "then", "else", "contains", "additionalProperties", "propertyNames",
        "unevaluatedProperties", "unevaluatedItems", "additionalItems",
    ]
    static let schemaList: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]
    static let schemaMap: Set<String> = ["$defs", "definitions", "properties", "patternProperties", "dependentSchemas"]

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
            let node = SchemaNode(boolean: value, location: display)
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
        let node = SchemaNode(boolean: nil, location: display)
        all.append(node)
        byPointer[base + "#" + pointer] = node
        var base = base
        var pointer = pointer
        if case .string(let id)? = json["$id"] {
            guard let resolved = SchemaCompiler.resolve(id, against: base) else {
                throw error(display, "'$id' \(id) cannot be resolved against \(base)")
            }
            base = SchemaCompiler.stripFragment(resolved)
            pointer = ""
            resources[base] = json
            byPointer[base + "#"] = node
        }
        for anchorKeyword in ["$anchor", "$dynamicAnchor"] {
            if case .string(let anchor)? = json[anchorKeyword] { byAnchor[base + "#" + anchor] = node }
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
            let ref = SchemaReference(uri: target)
            pending.append((ref, here(refKeyword)))
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

    /// Compiles another schema file that a reference names, if it lies inside the allowed folder.
    private func load(_ resource: String, at location: String) throws {
        guard let url = URL(string: resource), url.isFileURL else {
            throw error(location, "cannot resolve '\(resource)': it is not part of this schema, and schemas are never fetched from the network")
        }
        let path = url.standardizedFileURL.path
        guard let allowedRoot, path.hasPrefix(allowedRoot.hasSuffix("/") ? allowedRoot : allowedRoot + "/") else {
            throw error(location, "'\(path)' is outside the folder schemas may be read from (\(allowedRoot ?? "none"))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw error(location, "cannot read referenced schema \(path)")
        }
        let json: JSONValue
        do {
            json = try data.withUnsafeBytes { try JSONValue(bytes: $0) }
        } catch {
            throw self.error(location, "referenced schema \(path) is not valid JSON: \(error)")
        }
        resources[resource] = json
        _ = try compile(json, base: resource, pointer: "", display: (path as NSString).lastPathComponent + "#")
    }
}

// MARK: - Validation

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

    init(limit: Int, quiet: Bool) {
        self.limit = limit
        self.quiet = quiet ? 1 : 0
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

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private func apply(_ keyword: SchemaKeyword, _ node: SchemaNode, _ value: JSONValue, _ annotations: inout SchemaAnnotations?) -> Bool {
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
            guard let target = reference.target else { return false }
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
