// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// The options an adapter's endpoints take, with types, defaults and documentation.
///
/// One spec drives URI checking at load, `switchboard adapters`, and the README tables, so
/// the docs cannot drift from the code.
public struct EndpointSpec: Sendable {
    /// URI schemes served, the first being the main one: `["http", "https"]`.
    public var schemes: [String]
    /// One line saying what the adapter does.
    public var summary: String
    /// How a `from` URI looks, or nil when the adapter has no consumer.
    public var consumerSyntax: String?
    /// How a `to` URI looks, or nil when the adapter has no producer.
    public var producerSyntax: String?
    public var options: [OptionSpec]
    /// When true, query parameters of a producer URI that are not options are kept and
    /// passed on (an HTTP producer's target query) instead of being refused.
    public var producerKeepsUnknownQuery: Bool

    public init(
        schemes: [String],
        summary: String,
        consumerSyntax: String? = nil,
        producerSyntax: String? = nil,
        options: [OptionSpec],
        producerKeepsUnknownQuery: Bool = false
    ) {
        self.schemes = schemes
        self.summary = summary
        self.consumerSyntax = consumerSyntax
        self.producerSyntax = producerSyntax
        self.options = options
        self.producerKeepsUnknownQuery = producerKeepsUnknownQuery
    }

    public func options(for role: EndpointRole) -> [OptionSpec] {
        options.filter { $0.roles.contains(role) }
    }
}

/// Which side of a route an endpoint is on.
public enum EndpointRole: String, Sendable, CaseIterable {
    /// In a route's `from`.
    case consumer
    /// In a `to`, `wire-tap` or `multicast`.
    case producer
}

/// An option type an adapter defines: how a value is checked when routes load, and which
/// `${…}` templates inside it the compiler compiles (an SQL statement's parameters).
public protocol OptionFormat: Sendable {
    /// Its name in docs and errors ("SQL statement").
    var name: String { get }

    /// The texts of the templates `value` holds, in order; each is compiled at load and
    /// stored in ``Endpoint/templates`` under ``OptionSpec/templateKey(_:_:)``.
    ///
    /// - Throws: ``EndpointError`` saying what is wrong with the value.
    func templates(in value: String) throws -> [String]
}

/// One endpoint option.
public struct OptionSpec: Sendable {
    public enum ValueType: Sendable, Equatable {
        case string
        case int
        case bool
        /// `500ms`, `5s`, `2m`, `1h`; a bare number is milliseconds.
        case duration
        /// `512`, `64KiB`, `10MiB`, `1GB`.
        case size
        /// One of a fixed set of words.
        case choice([String])
        /// A value with `${…}` placeholders, compiled at load and rendered per message by
        /// the adapter (``Endpoint/templates``), such as a file name from a header.
        case template
        /// A value of an adapter's own format, with templates inside it (``OptionFormat``).
        case formatted(any OptionFormat)

        public var name: String {
            switch self {
            case .string: "string"
            case .int: "integer"
            case .bool: "boolean"
            case .duration: "duration"
            case .size: "size"
            case .choice(let words): words.joined(separator: "|")
            case .template: "template"
            case .formatted(let format): format.name
            }
        }

        public static func == (a: ValueType, b: ValueType) -> Bool {
            switch (a, b) {
            case (.string, .string), (.int, .int), (.bool, .bool), (.duration, .duration), (.size, .size), (.template, .template): true
            case (.choice(let x), .choice(let y)): x == y
            case (.formatted(let x), .formatted(let y)): x.name == y.name
            default: false
            }
        }

        /// Whether the value (or templates inside it) is compiled as `${…}` templates.
        public var holdsTemplates: Bool {
            switch self {
            case .template, .formatted: true
            default: false
            }
        }
    }

    public var name: String
    public var type: ValueType
    /// The value used when the option is absent, as it would be written in a URI.
    public var defaultValue: String?
    public var doc: String
    /// Secrets are never printed, logged or traced: they show as `***`.
    public var secret: Bool
    public var roles: Set<EndpointRole>

    public init(
        _ name: String,
        _ type: ValueType,
        default defaultValue: String? = nil,
        roles: Set<EndpointRole> = Set(EndpointRole.allCases),
        secret: Bool = false,
        doc: String
    ) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
        self.secret = secret
        self.roles = roles
    }

    /// Where the `index`th template inside a formatted option's value is kept in
    /// ``Endpoint/templates``.
    public static func templateKey(_ option: String, _ index: Int) -> String {
        "\(option)#\(index)"
    }

    /// Converts a written value to this option's type.
    ///
    /// - Throws: An ``EndpointError`` saying what was expected.
    public func parse(_ text: String) throws -> OptionValue {
        switch type {
        case .string, .template:
            return .string(text)
        case .formatted(let format):
            do {
                _ = try format.templates(in: text)
            } catch let error as EndpointError {
                throw EndpointError("option '\(name)': \(error.message)")
            }
            return .string(text)
        case .int:
            guard let value = Int(text) else {
                throw EndpointError("option '\(name)' expects an integer, got '\(text)'")
            }
            return .int(value)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on", "1": return .bool(true)
            case "false", "no", "off", "0": return .bool(false)
            default: throw EndpointError("option '\(name)' expects true or false, got '\(text)'")
            }
        case .duration:
            guard let value = parseDuration(text) else {
                throw EndpointError("option '\(name)' expects a duration such as 500ms, 5s or 2m, got '\(text)'")
            }
            return .duration(value)
        case .size:
            guard let value = parseSize(text) else {
                throw EndpointError("option '\(name)' expects a size such as 512, 64KiB or 10MiB, got '\(text)'")
            }
            return .size(value)
        case .choice(let words):
            guard words.contains(text) else {
                throw EndpointError("option '\(name)' expects one of \(words.joined(separator: ", ")), got '\(text)'")
            }
            return .string(text)
        }
    }
}

/// A typed option value.
public enum OptionValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case duration(Duration)
    case size(Int)
}

/// Parses `250ms`, `5s`, `1m30s`, `2h`, `1d`; a bare number is milliseconds.
public func parseDuration(_ text: some StringProtocol) -> Duration? {
    let trimmed = text.trimmingASCIIWhitespace()
    guard !trimmed.isEmpty else { return nil }
    if let millis = Int(trimmed), millis >= 0 {
        return millis <= longestDurationSeconds * 1000 ? .milliseconds(millis) : nil
    }
    var total = Duration.zero
    var number = ""
    var unit = ""
    var sawPart = false
    func flush() -> Bool {
        guard let value = Double(number), value >= 0 else { return false }
        let seconds: Double
        switch unit {
        case "ms": seconds = value / 1000
        case "s": seconds = value
        case "m": seconds = value * 60
        case "h": seconds = value * 3600
        case "d": seconds = value * 86400
        default: return false
        }
        // Longer than any setting needs, and than nanoseconds in 64 bits hold: refused.
        guard seconds <= Double(longestDurationSeconds) else { return false }
        total += .nanoseconds(Int64((seconds * 1e9).rounded()))
        number = ""
        unit = ""
        sawPart = true
        return true
    }
    for character in trimmed {
        if character.isASCII, character.isNumber || character == "." {
            if !unit.isEmpty { guard flush() else { return nil } }
            number.append(character)
        } else if character.isASCII, character.isLetter {
            guard !number.isEmpty else { return nil }
            unit.append(character)
        } else {
            return nil
        }
    }
    guard !number.isEmpty, flush() else { return nil }
    guard total <= .seconds(longestDurationSeconds) else { return nil }
    return sawPart ? total : nil
}

extension Duration {
    /// Whole milliseconds (durations from ``parseDuration(_:)`` never overflow).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Whole microseconds.
    public var microseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// Whole nanoseconds.
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

/// The longest duration ``parseDuration(_:)`` takes: 100 years, in seconds. Conversions of
/// durations to whole milliseconds or nanoseconds cannot overflow below it.
public let longestDurationSeconds = 100 * 365 * 86_400

/// Parses `512`, `64KiB`, `10MiB`, `1GiB`, `100KB`, `5MB` (decimal units are powers of 1000).
public func parseSize(_ text: some StringProtocol) -> Int? {
    let trimmed = text.trimmingASCIIWhitespace()
    let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
    guard let number = Int(digits) else { return nil }
    let unit = trimmed.dropFirst(digits.count).lowercased()
    let factor: Int
    switch unit {
    case "", "b": factor = 1
    case "kb", "k": factor = 1000
    case "mb", "m": factor = 1000 * 1000
    case "gb", "g": factor = 1000 * 1000 * 1000
    case "kib": factor = 1024
    case "mib": factor = 1024 * 1024
    case "gib": factor = 1024 * 1024 * 1024
    default: return nil
    }
    let (product, overflow) = number.multipliedReportingOverflow(by: factor)
    return overflow ? nil : product
}

/// Formats a duration the way route files write them: `250ms`, `5s`, `1.5s`, `2m`.
public func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    if micros < 1000 { return "\(micros)µs" }
    if micros < 1_000_000 {
        let millis = Double(micros) / 1000
        return millis < 10 ? String(format1: millis) + "ms" : "\(Int(millis.rounded()))ms"
    }
    let secs = Double(micros) / 1_000_000
    if secs < 120 { return String(format1: secs) + "s" }
    return String(format1: secs / 60) + "m"
}

extension String {
    /// One decimal place, trailing `.0` dropped.
    init(format1 value: Double) {
        let tenths = (value * 10).rounded()
        if tenths.truncatingRemainder(dividingBy: 10) == 0 {
            self = String(Int(tenths / 10))
        } else {
            self = String(Int(tenths) / 10) + "." + String(abs(Int(tenths)) % 10)
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks.
    public func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        let string = Substring(self)
        guard let start = string.firstIndex(where: { !isSpace($0) }),
              let end = string.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return string[start...end]
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
public func closestMatch(to word: String, in candidates: some Sequence<String>) -> String? {
    // Nearest by edit distance; among equally near ones, the one sharing the longest start
    // (a typo rarely hits the first letter: 'htp' is 'http', not 'ftp').
    var best: (candidate: String, distance: Int, prefix: Int)?
    let lowered = word.lowercased()
    for candidate in candidates {
        let other = candidate.lowercased()
        let distance = editDistance(lowered, other)
        guard distance <= max(2, candidate.count / 3) else { continue }
        let prefix = zip(lowered, other).prefix { $0 == $1 }.count
        if let best, (distance, -prefix) >= (best.distance, -best.prefix) { continue }
        best = (candidate, distance, prefix)
    }
    return best?.candidate
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost 1, so `dealy` is one step from `delay`.
private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
            }
        }
    }
    return table[a.count][b.count]
}
