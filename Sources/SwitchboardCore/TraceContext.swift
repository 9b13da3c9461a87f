// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// W3C Trace Context (`traceparent`): the trace an exchange belongs to across HTTP hops.
///
/// Taken from an inbound `traceparent` header when it is valid, created otherwise; every
/// outbound HTTP call carries the same trace id with a span id of its own, and the audit
/// trail stores the trace id with each event.
public struct TraceContext: Sendable, Hashable {
    /// 16 bytes, never all zero.
    public var traceID: (high: UInt64, low: UInt64)
    /// The span that sent the request to us (the parent span); 8 bytes, never zero.
    public var spanID: UInt64
    /// Trace flags; bit 0 is "sampled".
    public var flags: UInt8

    public init(traceID: (high: UInt64, low: UInt64), spanID: UInt64, flags: UInt8 = 1) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// A new trace with random ids.
    public static func random() -> TraceContext {
        TraceRandom.shared.withLock { random in
            var high: UInt64 = 0, low: UInt64 = 0, span: UInt64 = 0
            while high | low == 0 { (high, low) = (random.next(), random.next()) }
            while span == 0 { span = random.next() }
            return TraceContext(traceID: (high, low), spanID: span)
        }
    }

    /// The same trace with a new span id: what an outbound call sends.
    public func child() -> TraceContext {
        var span: UInt64 = 0
        TraceRandom.shared.withLock { random in
            while span == 0 { span = random.next() }
        }
        return TraceContext(traceID: traceID, spanID: span, flags: flags)
    }

    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); nil when malformed,
    /// when an id is all zero, or for version `ff`. Later versions are read by their first
    /// four fields, as the specification asks.
    public init?(traceparent: String) {
        let bytes = Array(traceparent.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        guard let version = parseHex(bytes[0..<2]), version != 0xFF else { return nil }
        if version == 0, bytes.count != 55 { return nil }
        if version != 0, bytes.count > 55, bytes[55] != UInt8(ascii: "-") { return nil }
        guard let high = parseHex(bytes[3..<19]), let low = parseHex(bytes[19..<35]),
              let span = parseHex(bytes[36..<52]), let flags = parseHex(bytes[53..<55]),
              high | low != 0, span != 0 else { return nil }
        self.init(traceID: (high, low), spanID: span, flags: UInt8(flags))
    }

    /// The trace id as 32 lower-case hex digits.
    public var traceIDString: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            putHex(traceID.high, digits: 16, into: buffer, at: 0)
            putHex(traceID.low, digits: 16, into: buffer, at: 16)
            return 32
        }
    }

    /// Calls `body` with the trace id's 32 hex digits, formatted on the stack (no string).
    public func withTraceIDUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            putHex(traceID.high, digits: 16, into: buffer, at: 0)
            putHex(traceID.low, digits: 16, into: buffer, at: 16)
            return try body(UnsafeBufferPointer(buffer))
        }
    }

    /// The span id as 16 lower-case hex digits.
    public var spanIDString: String { hex(spanID, 16) }

    /// The `traceparent` header value: written in one go, since every outbound HTTP
    /// request carries one.
    public var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            putHex(0, digits: 2, into: buffer, at: 0)
            buffer[2] = UInt8(ascii: "-")
            putHex(traceID.high, digits: 16, into: buffer, at: 3)
            putHex(traceID.low, digits: 16, into: buffer, at: 19)
            buffer[35] = UInt8(ascii: "-")
            putHex(spanID, digits: 16, into: buffer, at: 36)
            buffer[52] = UInt8(ascii: "-")
            putHex(UInt64(flags), digits: 2, into: buffer, at: 53)
            return 55
        }
    }

    public static func == (lhs: TraceContext, rhs: TraceContext) -> Bool {
        lhs.traceID == rhs.traceID && lhs.spanID == rhs.spanID && lhs.flags == rhs.flags
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(traceID.high)
        hasher.combine(traceID.low)
        hasher.combine(spanID)
        hasher.combine(flags)
    }

    /// The header name.
    public static let header = "traceparent"
}

private enum TraceRandom {
    static let shared = Mutex(Xoshiro256StarStar())
}

private func parseHex(_ digits: ArraySlice<UInt8>) -> UInt64? {
    var value: UInt64 = 0
    for digit in digits {
        let nibble: UInt8
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit - UInt8(ascii: "a") + 10
        default: return nil // upper case is invalid in traceparent
        }
        value = value << 4 | UInt64(nibble)
    }
    return value
}

private func hex(_ value: UInt64, _ digits: Int) -> String {
    String(unsafeUninitializedCapacity: digits) { buffer in
        putHex(value, digits: digits, into: buffer, at: 0)
        return digits
    }
}

/// Writes the low `digits` hex digits of `value`, lower case, at `offset`.
private func putHex(_ value: UInt64, digits: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
    for index in 0..<digits {
        buffer[offset + index] = lowercaseHexDigit(UInt8((value >> UInt64((digits - 1 - index) * 4)) & 0xF))
    }
}
