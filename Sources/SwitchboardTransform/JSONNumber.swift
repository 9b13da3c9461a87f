// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import BigInt

/// A JSON number as it was written: its text goes out unchanged (`12.30`, `-0`,
/// `12345678901234567890`, `1e400`), and it compares by exact decimal value (`1.0 == 1`,
/// `9007199254740993 > 9007199254740992`), never through a `Double`.
///
/// Only the text is stored (a `JSONValue` stays as small as it was with a `Double`, which
/// deep recursion over documents depends on); its sign, significant digits and power of ten
/// are read from it when the number is compared or converted. Numbers made by the node (a
/// count, a parsed field) get the shortest text that is exactly their value.
public struct JSONNumber: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The number's JSON text.
    public let text: String

    /// A number's value: `digits × 10^exponent`, negative or not.
    struct Value: Equatable {
        var negative: Bool
        /// Significant digits (ASCII), without leading or trailing zeros; empty for zero.
        var digits: [UInt8]
        var exponent: Int
    }

    /// The value, read from the text.
    var value: Value { Self.parse(Array(text.utf8)) ?? Value(negative: false, digits: [], exponent: 0) }

    /// The largest exponent a number may be written with (nine digits).
    static let exponentLimit = 999_999_999

    /// A number from its JSON text; nil when the text is not a JSON number (RFC 8259), or
    /// its exponent has more than nine digits.
    public init?(text: String) {
        guard Self.parse(Array(text.utf8)) != nil else { return nil }
        self.text = text
    }

    /// Text the JSON parser has checked already (grammar and exponent length).
    init(checked text: String) {
        self.text = text
    }

    /// A number from text as people write it: JSON's form, kept as written, or a leading
    /// `+`, a bare `.5` or `5.`, read as the decimal it spells; nil when it is not a number.
    public init?(loose text: String) {
        if let exact = JSONNumber(text: text) {
            self = exact
            return
        }
        var body = Substring(text)
        var sign = ""
        if body.first == "+" {
            body = body.dropFirst()
        } else if body.first == "-" {
            sign = "-"
            body = body.dropFirst()
        }
        if body.hasPrefix(".") { body = "0" + body }
        if body.hasSuffix(".") { body = body.dropLast() }
        let digits = body.prefix { $0.isASCII && $0.isNumber }
        // Leading zeros: the decimal's own digits without them.
        if digits.count > 1, digits.first == "0" {
            let trimmed = body.drop { $0 == "0" }
            body = trimmed.isEmpty || trimmed.first == "." || trimmed.first == "e" || trimmed.first == "E" ? "0" + trimmed : trimmed
        }
        guard let number = JSONNumber(text: sign + body) else { return nil }
        self = number
    }

    public init(_ value: Int) {
        // An integer's decimal text is always a JSON number.
        self.init(checked: String(value))
    }

    public init(integerLiteral value: Int) {
        self.init(value)
    }

    /// A literal in code: its shortest exact text (a literal is always finite).
    public init(floatLiteral value: Double) {
        self = JSONNumber(value) ?? JSONNumber(0)
    }

    /// A computed number: the shortest text that reads back as `value`; nil for infinity and
    /// NaN, which JSON cannot write.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            self.init(Int(value))
            return
        }
        self.init(text: String(value).replacingOccurrences(of: "e+", with: "e"))
    }

    public var description: String { text }

    /// The nearest `Double` (infinite past its range): for arithmetic that does not have to
    /// be exact, never for carrying the value on.
    public var double: Double { Double(text) ?? (value.negative ? -.infinity : .infinity) }

    public var isZero: Bool { value.digits.isEmpty }

    /// Whether the value is a whole number (`2.0` and `1e3` are).
    public var isInteger: Bool { value.exponent >= 0 || value.digits.isEmpty }

    /// The value as an `Int64`, when it is a whole number within its range.
    public var int64: Int64? {
        let (negative, digits, exponent) = (value.negative, value.digits, value.exponent)
        guard exponent >= 0 || digits.isEmpty else { return nil }
        if digits.isEmpty { return 0 }
        guard digits.count + exponent <= 19 else { return nil }
        var magnitude = Int64(0)
        for digit in digits {
            let (times, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            let (sum, overflow2) = times.addingReportingOverflow(Int64(digit - 48))
            guard !overflow2 else { return nil }
            magnitude = sum
        }
        for _ in 0..<exponent {
            let (times, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            magnitude = times
        }
        return negative ? -magnitude : magnitude
    }

    /// Whether a `Double` holds this value exactly.
    public var isExactDouble: Bool {
        let value = double
        return value.isFinite && JSONNumber(value).map { $0 == self } == true
    }

    // MARK: Comparing by value

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if lhs.text == rhs.text { return true }
        let a = lhs.value, b = rhs.value
        return a.digits.isEmpty && b.digits.isEmpty || a == b
    }

    public func hash(into hasher: inout Hasher) {
        let value = self.value
        if value.digits.isEmpty {
            hasher.combine(0)
            return
        }
        hasher.combine(value.negative)
        hasher.combine(value.digits)
        hasher.combine(value.exponent)
    }

    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        let a = lhs.value, b = rhs.value
        let left = sign(a), right = sign(b)
        if left != right { return left < right }
        if left == 0 { return false }
        return left > 0 ? magnitudeLess(a, b) : magnitudeLess(b, a)
    }

    /// The value in one spelling for all its texts (`1`, `1.0` and `10e-1` give `1e0`).
    public var canonical: String {
        let value = self.value
        return value.digits.isEmpty ? "0" : (value.negative ? "-" : "") + String(decoding: value.digits, as: UTF8.self) + "e" + String(value.exponent)
    }

    /// -1, 0 or 1.
    private static func sign(_ value: Value) -> Int {
        value.digits.isEmpty ? 0 : (value.negative ? -1 : 1)
    }

    /// Whether |a| < |b|, both non-zero.
    private static func magnitudeLess(_ a: Value, _ b: Value) -> Bool {
        // The power of ten just above the leading digit: different, and it decides.
        let aOrder = a.digits.count + a.exponent, bOrder = b.digits.count + b.exponent
        if aOrder != bOrder { return aOrder < bOrder }
        // Same order: digit by digit from the leading one (a missing digit is a zero).
        for index in 0..<max(a.digits.count, b.digits.count) {
            let x = index < a.digits.count ? a.digits[index] : 48
            let y = index < b.digits.count ? b.digits[index] : 48
            if x != y { return x < y }
        }
        return false
    }

    /// The value times 10^`places` as a whole number's sign and digits, when it is one
    /// (`12.30` with 2 places is 1230; `12.345` with 2 places is nil: it would be rounded).
    public func scaledDigits(places: Int) -> (negative: Bool, digits: String)? {
        let value = self.value
        if value.digits.isEmpty { return (false, "0") }
        let shift = value.exponent + places
        guard shift >= 0, value.digits.count + shift <= 40 else { return nil }
        return (value.negative, String(decoding: value.digits, as: UTF8.self) + String(repeating: "0", count: shift))
    }

    // MARK: Exact division

    /// Whether `self` is a whole multiple of `divisor` (JSON Schema's `multipleOf`), exactly.
    public func isMultiple(of divisor: JSONNumber) -> Bool {
        let dividend = self.value, divisor = divisor.value
        guard !divisor.digits.isEmpty else { return false }
        if dividend.digits.isEmpty { return true }
        // Digits only: the strings are never empty here, so the initializers cannot fail.
        guard let value = BigUInt(String(decoding: dividend.digits, as: UTF8.self)),
              let by = BigUInt(String(decoding: divisor.digits, as: UTF8.self)) else { return false }
        let digits = dividend.digits
        let shift = dividend.exponent - divisor.exponent
        if shift >= 0 {
            // value × 10^shift mod by, with the power taken modulo `by`.
            return (value % by) * BigUInt(10).power(BigUInt(shift), modulus: by) % by == 0
        }
        // value must hold by × 10^-shift: impossible when that has more digits than value.
        guard -shift <= digits.count else { return false }
        return value % (by * BigUInt(10).power(-shift)) == 0
    }

    // MARK: Parsing

    /// Sign, significant digits and exponent of JSON number text, or nil.
    static func parse(_ bytes: [UInt8]) -> Value? {
        var index = 0
        func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        let integerStart = index
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        let integer = bytes[integerStart..<index]
        guard !integer.isEmpty, integer.count == 1 || integer.first != 48 else { return nil }
        var fraction = ArraySlice<UInt8>()
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            fraction = bytes[start..<index]
            guard !fraction.isEmpty else { return nil }
        }
        var written = 0
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            let start = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            let exponentDigits = bytes[start..<index].drop { $0 == 48 }
            guard index > start, exponentDigits.count <= 9 else { return nil }
            written = exponentDigits.reduce(0) { $0 * 10 + Int($1 - 48) }
            if exponentNegative { written = -written }
        }
        guard index == bytes.count else { return nil }
        // digits × 10^(written - fraction count), then without leading and trailing zeros.
        var all = Array(integer) + Array(fraction)
        var exponent = written - fraction.count
        let leading = all.prefix { $0 == 48 }.count
        all.removeFirst(leading)
        while let last = all.last, last == 48 {
            all.removeLast()
            exponent += 1
        }
        return Value(negative: negative, digits: all, exponent: all.isEmpty ? 0 : exponent)
    }
}
