// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// A message identifier: a UUID version 7 (RFC 9562), so identifiers sort by creation time.
///
/// The first 48 bits hold the Unix time in milliseconds. Within one millisecond a 12-bit
/// counter (in `rand_a`) keeps identifiers made by this process strictly increasing.
public struct MessageID: Hashable, Comparable, Sendable {
    /// The most significant 64 bits.
    public let high: UInt64
    /// The least significant 64 bits.
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Makes a new, time-ordered identifier.
    public init() {
        let (millis, counter, random) = MessageID.clock.next()
        let version: UInt64 = 0x7
        self.high = (millis << 16) | (version << 12) | UInt64(counter & 0x0FFF)
        let variant: UInt64 = 0b10 << 62
        self.low = variant | (random & 0x3FFF_FFFF_FFFF_FFFF)
    }

    /// Parses the canonical 8-4-4-4-12 hexadecimal form (either case).
    public init?(_ text: some StringProtocol) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var nibbles = 0
        for (offset, byte) in text.utf8.enumerated() {
            if byte == UInt8(ascii: "-") {
                guard offset == 8 || offset == 13 || offset == 18 || offset == 23 else { return nil }
                continue
            }
            guard let value = hexValue(byte) else { return nil }
            if nibbles < 16 {
                high = (high << 4) | UInt64(value)
            } else {
                low = (low << 4) | UInt64(value)
            }
            nibbles += 1
        }
        guard nibbles == 32, text.utf8.count == 36 else { return nil }
        self.init(high: high, low: low)
    }

    /// The Unix time in milliseconds at which the identifier was made.
    public var unixMilliseconds: UInt64 { high >> 16 }

    /// The UUID version (7 for identifiers made here).
    public var version: Int { Int((high >> 12) & 0xF) }

    public static func < (lhs: MessageID, rhs: MessageID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    private static let clock = MonotonicMillisecondCounter()
}

extension MessageID: CustomStringConvertible {
    /// The canonical lowercase 8-4-4-4-12 form.
    public var description: String {
        String(unsafeUninitializedCapacity: 36) { write(into: $0) }
    }

    /// Calls `body` with the canonical form's 36 bytes, formatted on the stack (no string).
    public func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { buffer in
            try body(UnsafeBufferPointer(rebasing: buffer[..<write(into: buffer)]))
        }
    }

    /// Writes the canonical form into `buffer` (36 bytes at least) and returns its length.
    private func write(into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var index = 0
        func put(_ value: UInt64, nibbles: Int, shift: Int) {
            for nibble in 0..<nibbles {
                buffer[index] = lowercaseHexDigit(UInt8((value >> UInt64(shift - 4 * nibble - 4)) & 0xF))
                index += 1
            }
        }
        func dash() {
            buffer[index] = UInt8(ascii: "-")
            index += 1
        }
        put(high, nibbles: 8, shift: 64)
        dash()
        put(high, nibbles: 4, shift: 32)
        dash()
        put(high, nibbles: 4, shift: 16)
        dash()
        put(low, nibbles: 4, shift: 64)
        dash()
        put(low, nibbles: 12, shift: 48)
        return index
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Hands out (millisecond, counter, random) triples whose (millisecond, counter) part never
/// goes backwards, even if the wall clock does or more than 4096 identifiers are made in one
/// millisecond.
///
/// The random bits come from xoshiro256** seeded once from the system generator: ids need
/// uniqueness, not secrecy, and this avoids a `getrandom` system call per message.
private final class MonotonicMillisecondCounter: Sendable {
    private struct State {
        var millis: UInt64 = 0
        var counter: UInt16 = 0
        var random = Xoshiro256StarStar()
    }

    private let state = Mutex(State())

    func next() -> (UInt64, UInt16, UInt64) {
        let now = UInt64(max(0, wallClockMilliseconds()))
        return state.withLock { state in
            if now > state.millis {
                state.millis = now
                // Start low in the counter space so a burst has room to count up.
                state.counter = UInt16(state.random.next() & 0x01FF)
            } else if state.counter >= 0x0FFF {
                state.millis += 1
                state.counter = 0
            } else {
                state.counter += 1
            }
            return (state.millis, state.counter, state.random.next())
        }
    }
}

/// xoshiro256** (Blackman and Vigna): fast, small, statistically strong; not for secrets.
struct Xoshiro256StarStar {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        repeat {
            (s0, s1, s2, s3) = (system.next(), system.next(), system.next(), system.next())
        } while s0 | s1 | s2 | s3 == 0
    }

    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }
}
