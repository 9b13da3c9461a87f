// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// Where text is written as UTF-8, byte by byte or a run at a time: a `[UInt8]`, or a
/// ``ByteWriter`` when the bytes are written for every event of every exchange.
public protocol ByteSink: ~Copyable {
    mutating func append(_ byte: UInt8)
    mutating func appendBytes(_ bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: ByteSink where Element == UInt8 {
    @inlinable
    public mutating func appendBytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: bytes)
    }
}

/// Bytes written through a pointer into memory it owns, grown as needed.
///
/// The audit trail writes each event's JSON with it: every append to an array checks the
/// array's uniqueness (a call into the runtime) and capacity, which an event's forty-odd small
/// appends paid each time. A standalone loop building the bench route's `to` event took
/// 1.21-1.63 us with an array and 0.71-0.87 with this (3 runs); in the node, building events
/// went from 6.2% to 5.3% of the event loops' time (bench/HISTORY.md, eleventh round).
public struct ByteWriter: ~Copyable, ByteSink {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int

    @inlinable
    public init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = Self.memory(self.capacity)
        count = 0
    }

    /// `bytes` of memory from malloc, not `allocate(capacity:)`, which goes through
    /// posix_memalign (three times malloc's cost in the node's profile). Should malloc fail,
    /// from `allocate`, which stops the process as any Swift allocation does when memory is
    /// out; `free` releases either.
    @usableFromInline
    static func memory(_ bytes: Int) -> UnsafeMutablePointer<UInt8> {
        malloc(bytes)?.assumingMemoryBound(to: UInt8.self) ?? .allocate(capacity: bytes)
    }

    deinit {
        free(base)
    }

    /// How many bytes are written.
    @inlinable
    public var byteCount: Int { count }

    @inlinable
    public mutating func append(_ byte: UInt8) {
        if count == capacity { grow(1) }
        base[count] = byte
        count &+= 1
    }

    @inlinable
    public mutating func appendBytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        if capacity &- count < bytes.count { grow(bytes.count) }
        (base + count).initialize(from: source, count: bytes.count)
        count &+= bytes.count
    }

    /// Makes room for `extra` more bytes (at least doubling).
    @usableFromInline
    mutating func grow(_ extra: Int) {
        let larger = max(capacity * 2, count + extra)
        let moved = Self.memory(larger)
        moved.initialize(from: base, count: count)
        free(base)
        base = moved
        capacity = larger
    }

    /// The bytes written, in the writer's own memory, handed over without a copy.
    public consuming func written() -> WrittenBytes {
        let written = WrittenBytes(base: base, count: count)
        discard self
        return written
    }
}

/// Bytes a ``ByteWriter`` wrote, in its memory, freed with the last reference: the audit
/// trail hands an exchange's events from the writer that built them to the one that writes
/// them to a file without copying them into an array on the way.
///
/// `@unchecked Sendable`: the bytes never change once written.
public final class WrittenBytes: @unchecked Sendable {
    private let base: UnsafeMutablePointer<UInt8>
    public let count: Int

    init(base: UnsafeMutablePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    /// A copy of `bytes`.
    public static func copy(of bytes: [UInt8]) -> WrittenBytes {
        var writer = ByteWriter(capacity: bytes.count)
        bytes.withUnsafeBufferPointer { writer.appendBytes($0) }
        return writer.written()
    }

    deinit {
        free(base)
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }
}

/// The lower-case hex digit of `nibble` (0–15) as UTF-8: for digests, trace ids and JSON
/// escapes.
@inlinable @inline(__always)
package func lowercaseHexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
}
