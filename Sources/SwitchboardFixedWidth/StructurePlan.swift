// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardTransform

/// An object key as text and as the JSON bytes written before its value (`"text":`).
public final class JSONKey: Sendable {
    let text: String
    let bytes: [UInt8]

    init(_ text: String) {
        self.text = text
        var bytes: [UInt8] = []
        JSONValue.writeString(text, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
        self.bytes = bytes
    }
}

/// One item of a layout's structure as the parser walks it: what starts it, where its
/// aggregates begin again, its path; all worked out when the layout loads.
final class StructureNode: Sendable {
    /// Position in a walk of the structure, parents before children.
    let id: Int
    let key: JSONKey
    /// Keys from the top, this item's last (`batches`, `entries`).
    let path: [String]
    /// Whether the item is one record (else a group of `children`).
    let isRecord: Bool
    let children: [StructureNode]
    let repeats: Bool
    let optional: Bool
    /// Indexed by record name id: whether a record of that name starts the item.
    let starts: [Bool]
    /// The record names that can start the item, for error messages.
    let firstNames: [String]
    /// The aggregate rules that start again at each instance of this group.
    let scopeRules: [Int]

    init(id: Int, key: String, path: [String], isRecord: Bool, children: [StructureNode], repeats: Bool, optional: Bool,
         starts: [Bool], firstNames: [String], scopeRules: [Int]) {
        self.id = id
        self.key = JSONKey(key)
        self.path = path
        self.isRecord = isRecord
        self.children = children
        self.repeats = repeats
        self.optional = optional
        self.starts = starts
        self.firstNames = firstNames
        self.scopeRules = scopeRules
    }
}

/// The compiled structure of a layout.
struct StructurePlan: Sendable {
    let roots: [StructureNode]
    /// The key of the list a layout without a structure puts every record in.
    let recordsKey = JSONKey("records")

    init(structure: [StructureItem], records: [RecordLayout], tables: RuleTables) {
        var nameIDs: [String: Int] = [:]
        for record in records where nameIDs[record.name] == nil { nameIDs[record.name] = record.nameID }
        let nameCount = (records.map(\.nameID).max() ?? -1) + 1
        var next = 0
        func compile(_ items: [StructureItem], _ prefix: [String]) -> [StructureNode] {
            items.map { item in
                let id = next
                next += 1
                let path = prefix + [item.key]
                var starts = [Bool](repeating: false, count: nameCount)
                for name in item.firstRecords { if let nameID = nameIDs[name] { starts[nameID] = true } }
                var children: [StructureNode] = []
                var isRecord = true
                if case .group(_, let inner, _, _) = item {
                    isRecord = false
                    children = compile(inner, path)
                }
                return StructureNode(
                    id: id, key: item.key, path: path, isRecord: isRecord, children: children, repeats: item.repeats,
                    optional: item.isOptional, starts: starts, firstNames: item.firstRecords, scopeRules: isRecord ? [] : tables.scopes[path] ?? []
                )
            }
        }
        roots = compile(structure, [])
    }

    /// The item at a dot-separated path's keys, if the structure has one.
    func node(at path: [String]) -> StructureNode? {
        var nodes = roots
        var found: StructureNode?
        for key in path {
            guard let node = nodes.first(where: { $0.key.text == key }) else { return nil }
            found = node
            nodes = node.children
        }
        return found
    }
}

/// The records' tags as plain values, for telling each record's type as it is read.
struct RecordMatcher: Sendable {
    struct Tag: Sendable {
        let offset: Int
        let byte: UInt8
    }

    /// Per variant (by record index): its tag bytes, the record length its tags need, and
    /// whether it has patterns too (checked the slow way).
    let tags: [Tag]
    let ranges: [Range<Int>]
    let needs: [Int]
    let hasPatterns: [Bool]

    init(records: [RecordLayout]) {
        var tags: [Tag] = []
        var ranges: [Range<Int>] = []
        var needs: [Int] = []
        var hasPatterns: [Bool] = []
        for record in records.sorted(by: { $0.index < $1.index }) {
            let first = tags.count
            var need = 0
            for tag in record.tags {
                for (offset, byte) in tag.value.enumerated() { tags.append(Tag(offset: tag.start - 1 + offset, byte: byte)) }
                need = max(need, tag.start - 1 + tag.value.count)
            }
            ranges.append(first..<tags.count)
            needs.append(need)
            hasPatterns.append(!record.patterns.isEmpty)
        }
        self.tags = tags
        self.ranges = ranges
        self.needs = needs
        self.hasPatterns = hasPatterns
    }

    /// Whether the bytes carry variant `index`'s tag bytes (patterns aside).
    func carriesTags(_ index: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard needs[index] <= bytes.count else { return false }
        for tag in ranges[index] where bytes[tags[tag].offset] != tags[tag].byte { return false }
        return true
    }
}
