// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Yams

/// Composes YAML the node reads from files (routes, node config, layouts), refusing documents
/// whose aliases expand past a budget.
///
/// Yams resolves an alias to the node it names, sharing its storage, so composing costs no
/// more than the text; but everything that walks the result walks each alias's copy again,
/// and aliases of aliases multiply: nine lines of a few dozen bytes can stand for millions of
/// steps. Every node reached through an alias counts; past ``aliasBudget`` the document is
/// refused, naming where the alias that went past was used and the anchor it named.
public enum YAMLComposer {
    /// The most nodes aliases may add to one document.
    public static let aliasBudget = 10_000

    /// - Throws: `YamlError` for text that is not YAML, ``YAMLAliasExpansion`` past the budget.
    public static func compose(_ text: String) throws -> Node? {
        guard let root = try Yams.compose(yaml: text) else { return nil }
        var walk = AliasWalk()
        try walk.visit(root, usedAt: root.mark)
        return root
    }
}

/// A document whose aliases expand to more than ``YAMLComposer/aliasBudget`` nodes.
public struct YAMLAliasExpansion: Error, CustomStringConvertible, Sendable {
    /// Where the alias that went past the budget is used (the key or list holding it).
    public let line: Int
    public let column: Int
    /// Where its anchor is.
    public let anchorLine: Int
    public let anchorColumn: Int

    public var description: String {
        "YAML aliases expand to more than \(YAMLComposer.aliasBudget) nodes here (the alias names the anchor at line \(anchorLine), "
            + "column \(anchorColumn)); write the content out, or alias it fewer times"
    }
}

/// Walks a composed document once, counting what its aliases add.
///
/// An alias's copy of a mapping or list has the mark of its anchor, which the walk has met
/// before; marks of scalars are not tracked (a scalar alias adds one node per use, bounded by
/// the text).
private struct AliasWalk {
    private var seen = Set<Int>()
    private var added = 0

    mutating func visit(_ node: Node, usedAt: Mark?) throws {
        switch node {
        case .mapping(let mapping):
            guard firstVisit(node) else { return try count(node, usedAt: usedAt, anchor: node.mark) }
            for (key, value) in mapping {
                try visit(key, usedAt: key.mark)
                try visit(value, usedAt: key.mark)
            }
        case .sequence(let sequence):
            guard firstVisit(node) else { return try count(node, usedAt: usedAt, anchor: node.mark) }
            for item in sequence {
                try visit(item, usedAt: node.mark)
            }
        case .scalar, .alias:
            break
        }
    }

    private mutating func firstVisit(_ node: Node) -> Bool {
        guard let mark = node.mark else { return true }
        return seen.insert(mark.line << 24 | mark.column).inserted
    }

    /// Counts every node of an alias's copy (of the node anchored at `anchor`), throwing once
    /// the budget is passed.
    private mutating func count(_ node: Node, usedAt: Mark?, anchor: Mark?) throws {
        added += 1
        guard added <= YAMLComposer.aliasBudget else {
            throw YAMLAliasExpansion(
                line: usedAt?.line ?? 1, column: usedAt?.column ?? 1,
                anchorLine: anchor?.line ?? 1, anchorColumn: anchor?.column ?? 1
            )
        }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                try count(key, usedAt: usedAt, anchor: anchor)
                try count(value, usedAt: usedAt, anchor: anchor)
            }
        case .sequence(let sequence):
            for item in sequence { try count(item, usedAt: usedAt, anchor: anchor) }
        case .scalar, .alias:
            break
        }
    }
}

extension YAMLComposer {
    /// The text of a file the node reads, which must be UTF-8.
    ///
    /// - Throws: ``YAMLInvalidUTF8`` with the line and column of the first byte that is not.
    public static func text(_ bytes: [UInt8]) throws -> String {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        var line = 1
        var lineStart = 0
        while true {
            let before = offset
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                offset += UTF8.width(scalar)
                if scalar == "\n" {
                    line += 1
                    lineStart = offset
                }
            case .emptyInput:
                return String(decoding: bytes, as: UTF8.self)
            case .error:
                throw YAMLInvalidUTF8(line: line, column: before - lineStart + 1, byte: bytes[before])
            }
        }
    }
}

/// A file that is not UTF-8.
public struct YAMLInvalidUTF8: Error, CustomStringConvertible, Sendable {
    public let line: Int
    /// The column in bytes.
    public let column: Int
    /// The first byte that is not UTF-8.
    public let byte: UInt8

    public var description: String {
        "the file is not UTF-8: byte 0x\(String(byte, radix: 16, uppercase: true)) cannot be read as UTF-8 (save the file as UTF-8)"
    }
}
