// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// Message headers: ordered name/value pairs whose names compare without regard to ASCII case.
///
/// A name may appear more than once (as HTTP allows); `subscript(_:)` reads the first value
/// and its setter replaces every value of that name. Header lists are short, so lookups scan
/// linearly, which beats hashing for the handful of headers a message usually carries.
public struct Headers: Sendable, Equatable {
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public private(set) var fields: [Field]

    public init() {
        self.fields = []
    }

    public init(_ pairs: [(String, String)]) {
        self.fields = pairs.map { Field(name: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { fields.isEmpty }
    public var count: Int { fields.count }

    /// The first value of `name`, or nil. Setting replaces every value of `name`;
    /// setting nil removes them.
    public subscript(_ name: String) -> String? {
        get {
            // By index, not `for field in fields`: the loop would copy (and reference count)
            // every field it passes.
            fields.firstIndex { $0.name.equalsIgnoringASCIICase(name) }.map { fields[$0].value }
        }
        set {
            guard let newValue else {
                remove(name)
                return
            }
            if let first = fields.firstIndex(where: { $0.name.equalsIgnoringASCIICase(name) }) {
                fields[first].value = newValue
                var index = fields.index(after: first)
                while index < fields.endIndex {
                    if fields[index].name.equalsIgnoringASCIICase(name) {
                        fields.remove(at: index)
                    } else {
                        index += 1
                    }
                }
            } else {
                fields.append(Field(name: name, value: newValue))
            }
        }
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        var values: [String] = []
        for index in fields.indices where fields[index].name.equalsIgnoringASCIICase(name) {
            values.append(fields[index].value)
        }
        return values
    }

    public func contains(_ name: String) -> Bool {
        fields.contains { $0.name.equalsIgnoringASCIICase(name) }
    }

    /// Whether some value of `name` passes `test` (no list of the values is made).
    public func contains(_ name: String, where test: (String) throws -> Bool) rethrows -> Bool {
        for index in fields.indices where fields[index].name.equalsIgnoringASCIICase(name) {
            if try test(fields[index].value) { return true }
        }
        return false
    }

    /// Makes room for `count` headers in all, so adding them one by one does not grow the
    /// list several times.
    public mutating func reserveCapacity(_ count: Int) {
        fields.reserveCapacity(count)
    }

    /// Adds a value without touching existing values of the same name.
    public mutating func add(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    public mutating func remove(_ name: String) {
        // Checked first: removing nothing from a shared list would still copy it.
        guard contains(name) else { return }
        fields.removeAll { $0.name.equalsIgnoringASCIICase(name) }
    }

    public mutating func removeAll(where shouldRemove: (Field) -> Bool) {
        fields.removeAll(where: shouldRemove)
    }

    public static func == (lhs: Headers, rhs: Headers) -> Bool {
        lhs.fields == rhs.fields
    }
}

extension Headers: Sequence {
    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }
}

extension Headers: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }
}

extension StringProtocol {
    /// Compares two strings byte by byte, folding ASCII letters to one case.
    ///
    /// The lengths are compared where the call is, so most mismatches (header names differ
    /// in length more often than not) cost no call and no reference counting.
    @inlinable @inline(__always)
    public func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        utf8.count == other.utf8.count && equalsIgnoringASCIICaseSameLength(other)
    }

    @usableFromInline
    func equalsIgnoringASCIICaseSameLength(_ other: some StringProtocol) -> Bool {
        // Native strings (and substrings of them) are compared over their stored bytes;
        // walking two UTF-8 views with iterators costs several times more per byte.
        let fast = utf8.withContiguousStorageIfAvailable { lhs in
            other.utf8.withContiguousStorageIfAvailable { rhs in asciiCaseInsensitiveEqual(lhs, rhs) }
        }
        if let fast, let fast { return fast }
        let lhs = self.utf8
        let rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (a, b) in zip(lhs, rhs) where a != b {
            guard asciiLettersMatch(a, b) else { return false }
        }
        return true
    }
}

/// Whether two byte strings are equal when ASCII letters are folded to one case.
@inlinable
public func asciiCaseInsensitiveEqual(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    for index in 0..<lhs.count where lhs[index] != rhs[index] {
        guard asciiLettersMatch(lhs[index], rhs[index]) else { return false }
    }
    return true
}

/// Two different bytes that are the same ASCII letter in different case.
@inlinable
func asciiLettersMatch(_ a: UInt8, _ b: UInt8) -> Bool {
    a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z")
}

/// A fixed list of header names, looked up without regard to ASCII case and without
/// touching reference counts: the names sit lower-cased in one buffer (each as its length
/// byte and its bytes), and a mask of their lengths turns most whole-name lookups away
/// before any byte is compared. For the lists checked against every header of every message.
public struct HeaderNameTable: Sendable {
    private let table: [UInt8]
    /// Bit n set: some name is n bytes long (names of 63 bytes or more share bit 63).
    private let lengths: UInt64
    /// Bit n set: some name's length and first byte have signature n (``signature(_:_:)``).
    private let signatures: UInt64

    public init(_ names: [String]) {
        var table: [UInt8] = []
        var lengths: UInt64 = 0
        var signatures: UInt64 = 0
        for name in names {
            let bytes = name.utf8.prefix(255).map(Self.lowercased)
            table.append(UInt8(bytes.count))
            table += bytes
            lengths |= 1 << UInt64(min(bytes.count, 63))
            if let first = bytes.first { signatures |= 1 << Self.signature(bytes.count, first) }
        }
        self.table = table
        self.lengths = lengths
        self.signatures = signatures
    }

    /// A name's length and lowercased first byte mixed into 0..<64.
    private static func signature(_ count: Int, _ first: UInt8) -> UInt64 {
        ((UInt64(min(count, 255)) << 3) ^ UInt64(first)) & 63
    }

    /// Whether some name could be `bytes[start...]`: one of that length and first byte, as
    /// far as their signatures tell (most names are told apart here, without comparing them
    /// with each entry).
    private func mayHold(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        let count = bytes.count - start
        guard count > 0 else { return false }
        return signatures & (1 << Self.signature(count, Self.lowercased(bytes[start]))) != 0
    }

    /// Whether `name` is one of the names.
    public func contains(_ name: String) -> Bool {
        guard lengths & (1 << UInt64(min(name.utf8.count, 63))) != 0 else { return false }
        return withBytes(of: name) { name in
            anyEntry { $0.count == name.count && Self.matches(name, at: 0, $0) }
        }
    }

    /// Whether `name` is one of the names, or ends with a dot and one of them
    /// (`http.query.token` for `token`).
    public func containsLastSegment(of name: String) -> Bool {
        withBytes(of: name) { name in
            // The candidates: the whole name and what follows each dot.
            var candidate = mayHold(name, from: 0)
            for index in name.indices where !candidate && name[index] == UInt8(ascii: ".") {
                candidate = mayHold(name, from: index + 1)
            }
            // (An empty name, were there one, would match every name ending with a dot.)
            guard candidate || lengths & 1 != 0 else { return false }
            return anyEntry { entry in
                guard name.count >= entry.count else { return false }
                let start = name.count - entry.count
                return (start == 0 || name[start - 1] == UInt8(ascii: ".")) && Self.matches(name, at: start, entry)
            }
        }
    }

    private func withBytes(of name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        if let result = name.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(name.utf8).withUnsafeBufferPointer(body)
    }

    /// Calls `body` with each name's bytes until it returns true.
    private func anyEntry(_ body: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        table.withUnsafeBufferPointer { table in
            var offset = 0
            while offset < table.count {
                let start = offset + 1
                offset = start + Int(table[offset])
                if body(UnsafeBufferPointer(rebasing: table[start..<offset])) { return true }
            }
            return false
        }
    }

    /// Whether `name` from `start` on is `entry`, ASCII letters folded.
    private static func matches(_ name: UnsafeBufferPointer<UInt8>, at start: Int, _ entry: UnsafeBufferPointer<UInt8>) -> Bool {
        for index in 0..<entry.count where lowercased(name[start + index]) != entry[index] {
            return false
        }
        return true
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}
