// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardYAML
import Yams

/// A node of a YAML configuration file with the file it came from, so every value can say
/// where it was written.
public struct ConfigNode {
    public let node: Yams.Node
    public let file: String

    public init(_ node: Yams.Node, file: String) {
        self.node = node
        self.file = file
    }

    /// Where the node starts.
    public var location: SourceLocation {
        let mark = node.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Where the text of a scalar starts (after an opening quote).
    public var contentLocation: SourceLocation {
        guard case .scalar(let scalar) = node else { return location }
        switch scalar.style {
        case .singleQuoted, .doubleQuoted: return location.advanced(by: 1)
        default: return location
        }
    }

    /// "a string", "a mapping", "a list": for messages saying what was found.
    public var kindDescription: String {
        switch node {
        case .scalar(let scalar): scalar.string.isEmpty && scalar.style == .plain ? "an empty value" : "a value ('\(scalar.string)')"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// The text of a scalar; nil for mappings and lists.
    public var scalar: String? {
        if case .scalar(let scalar) = node { return scalar.string }
        return nil
    }

    /// Whether the node is a plain `null` / `~` / empty scalar.
    public var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The entries of a mapping, keys as text; nil for scalars and lists.
    public var mapping: [(key: String, keyNode: ConfigNode, value: ConfigNode)]? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping.map { pair in
            (pair.key.string ?? "", ConfigNode(pair.key, file: file), ConfigNode(pair.value, file: file))
        }
    }

    /// The items of a list; nil for scalars and mappings.
    public var sequence: [ConfigNode]? {
        guard case .sequence(let sequence) = node else { return nil }
        return sequence.map { ConfigNode($0, file: file) }
    }

    /// The value of `key` in a mapping.
    public subscript(key: String) -> ConfigNode? {
        mapping?.first { $0.key == key }?.value
    }

    /// Reads and composes a YAML file.
    ///
    /// - Parameters:
    ///   - path: The file to read.
    ///   - displayName: How messages name the file (a path relative to where the user works).
    /// - Throws: ``ConfigurationError`` with the syntax error's location.
    public static func load(path: String, displayName: String) throws -> ConfigNode? {
        try parse(try text(path: path, displayName: displayName), file: displayName)
    }

    /// The text of a configuration file.
    ///
    /// - Throws: ``ConfigurationError`` when the file cannot be read or is not UTF-8 (at the
    ///   line and column of the first byte that is not).
    static func text(path: String, displayName: String) throws -> String {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: displayName, line: 1, column: 1), "cannot read the file: \(error.localizedDescription)")])
        }
        do {
            return try YAMLComposer.text(bytes)
        } catch let error as YAMLInvalidUTF8 {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: displayName, line: error.line, column: error.column), error.description)])
        }
    }

    /// Composes YAML text.
    public static func parse(_ text: String, file: String) throws -> ConfigNode? {
        do {
            guard let node = try YAMLComposer.compose(text) else { return nil }
            return ConfigNode(node, file: file)
        } catch let error as YamlError {
            throw ConfigurationError([ConfigNode.diagnostic(for: error, file: file)])
        } catch let error as YAMLAliasExpansion {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: file, line: error.line, column: error.column), error.description)])
        }
    }

    private static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            return Diagnostic(at: at(mark), message)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return Diagnostic(at: at(context.mark), "duplicate key(s) \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in a mapping")
        case .reader(let problem, _, _, _):
            return Diagnostic(at: SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(problem)")
        default:
            return Diagnostic(at: SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)")
        }
    }
}

/// Collects diagnostics while loading, so that every problem is reported at once.
public struct DiagnosticLog: Sendable {
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    public mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(.error, at: location, message))
    }

    public mutating func warning(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(.warning, at: location, message))
    }

    public mutating func append(contentsOf other: [Diagnostic]) {
        diagnostics.append(contentsOf: other)
    }

    /// Throws the collected errors, if any.
    public func throwIfErrors() throws {
        if hasErrors { throw ConfigurationError(DiagnosticLog.sorted(diagnostics)) }
    }

    /// Diagnostics in file, line and column order; those at one place keep the order they were found in.
    static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            let left = (a.element.location.file, a.element.location.line, a.element.location.column)
            let right = (b.element.location.file, b.element.location.line, b.element.location.column)
            return left != right ? left < right : a.offset < b.offset
        }.map(\.element)
    }
}
