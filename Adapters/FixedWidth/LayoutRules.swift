import Foundation
import SwitchboardTransform
import Yams

/// A check a layout carries, made as the file streams: sums and counts over a group against
/// a control field, equal fields, check digits, allowed values, patterns.
final class LayoutRule: @unchecked Sendable {
    // @unchecked: immutable once loaded; the compiled regular expressions are only read.
    enum Kind {
        /// Sum of a field over a group's records (optionally only records whose `whereField`
        /// matches), modulo a power of ten, against `target`.
        case sum(record: String, field: String, modulo: Int64?, whereField: String?, wherePattern: Regex<AnyRegexOutput>?)
        /// Number of records of these types in the group, against `target`.
        case count(Set<String>)
        /// Records in the whole file, filler included, divided by `blocks` and rounded up.
        case blocks(Int)
        /// The field holds the same as another record's field (the latest one read).
        case sameAs(record: String, field: String)
        /// The field is the check digit of another field of the record.
        case checkDigit(of: String, weights: [Int], modulo: Int)
        case oneOf(Set<String>)
        case pattern(Regex<AnyRegexOutput>, String)
        case not(String)
    }

    let name: String
    let kind: Kind
    /// Group path (keys) the aggregate runs over; empty for the whole file.
    let scope: [String]
    /// For aggregates, the control field compared; for the others, the field checked.
    let record: String
    let field: String

    init(name: String, kind: Kind, scope: [String], record: String, field: String) {
        self.name = name
        self.kind = kind
        self.scope = scope
        self.record = record
        self.field = field
    }

    var isAggregate: Bool {
        switch kind {
        case .sum, .count, .blocks: true
        default: false
        }
    }
}

extension LayoutLoader {
    mutating func loadRules(_ node: Node, names: Set<String>) -> [LayoutRule] {
        guard let list = node.sequence else {
            error(node, "'rules' is a list of checks")
            return []
        }
        var rules: [LayoutRule] = []
        for item in list {
            guard let mapping = item.mapping else {
                error(item, "a rule is a mapping such as { sum: entry.amount, scope: batches, equals: batchControl.total }")
                continue
            }
            func reference(_ key: String) -> (String, String)? {
                guard let text = mapping[key]?.string else { return nil }
                let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2, names.contains(parts[0]) else {
                    error(mapping[key], "'\(key)' names RECORD.FIELD of a record the layout defines, found '\(text)'")
                    return nil
                }
                return (parts[0], parts[1])
            }
            let scope = mapping["scope"]?.string.map { $0.split(separator: ".").map(String.init) } ?? []
            var name = mapping["name"]?.string ?? ""
            let kind: LayoutRule.Kind
            let target: (String, String)
            if mapping["sum"] != nil || mapping["count"] != nil || mapping["blocks"] != nil {
                guard let equals = reference("equals") else {
                    if mapping["equals"] == nil { error(item, "an aggregate rule needs 'equals: RECORD.FIELD', the control field") }
                    continue
                }
                target = equals
                if let summed = reference("sum") {
                    var wherePattern: Regex<AnyRegexOutput>?
                    let whereField = mapping["where"]?.mapping?["field"]?.string
                    if let text = mapping["where"]?.mapping?["pattern"]?.string {
                        wherePattern = try? Regex(text)
                        if wherePattern == nil { error(mapping["where"], "'\(text)' is not a valid regular expression") }
                    }
                    let modulo = mapping["modulo"]?.int.map(Int64.init)
                    kind = .sum(record: summed.0, field: summed.1, modulo: modulo, whereField: whereField, wherePattern: wherePattern)
                    if name.isEmpty { name = "sum of \(summed.0).\(summed.1)" }
                } else if let counted = mapping["count"]?.sequence?.compactMap(\.string), !counted.isEmpty {
                    for record in counted where !names.contains(record) { error(mapping["count"], "no record named '\(record)'") }
                    kind = .count(Set(counted))
                    if name.isEmpty { name = "count of \(counted.joined(separator: " and "))" }
                } else if let blocks = mapping["blocks"]?.int, blocks > 0 {
                    kind = .blocks(blocks)
                    if name.isEmpty { name = "block count" }
                } else {
                    error(item, "'sum' is RECORD.FIELD, 'count' a list of record names, 'blocks' a positive number")
                    continue
                }
            } else {
                guard let checked = reference("field") else {
                    if mapping["field"] == nil { error(item, "a rule needs 'sum', 'count', 'blocks' or 'field'") }
                    continue
                }
                target = checked
                if let other = reference("same-as") {
                    kind = .sameAs(record: other.0, field: other.1)
                } else if let check = mapping["check-digit"]?.mapping, let of = check["of"]?.string,
                          let weights = check["weights"]?.sequence?.compactMap(\.int), !weights.isEmpty {
                    kind = .checkDigit(of: of, weights: weights, modulo: check["modulo"]?.int ?? 10)
                } else if let values = mapping["one-of"]?.sequence?.compactMap(\.string) {
                    kind = .oneOf(Set(values))
                } else if let text = mapping["pattern"]?.string {
                    guard let regex = try? Regex(text) else {
                        error(mapping["pattern"], "'\(text)' is not a valid regular expression")
                        continue
                    }
                    kind = .pattern(regex, text)
                } else if let value = mapping["not"]?.string {
                    kind = .not(value)
                } else {
                    error(item, "a field rule needs one of same-as, check-digit, one-of, pattern, not")
                    continue
                }
                if name.isEmpty { name = "\(checked.0).\(checked.1)" }
            }
            rules.append(LayoutRule(name: name, kind: kind, scope: scope, record: target.0, field: target.1))
        }
        return rules
    }
}

/// What a layout's rules need while a file streams, worked out once when the layout loads:
/// per record type, the aggregates it adds to and the rules that check it; per group path,
/// the aggregates that start again there; and the fields `when` and `same-as` read later.
final class RuleTables: @unchecked Sendable {
    // @unchecked: immutable once built; the compiled patterns are only read.

    /// What a record adds to an aggregate: the rule, and the field summed (nil: counted).
    struct Contribution {
        /// Position among all contributions, for the per-parse pattern memo.
        let index: Int
        let rule: Int
        let field: String?
        let modulo: Int64?
        let whereField: String?
        let wherePattern: Regex<AnyRegexOutput>?
    }

    let rules: [LayoutRule]
    let contributions: [String: [Contribution]]
    let contributionCount: Int
    let checks: [String: [Int]]
    let scopes: [[String]: [Int]]
    let contextFields: [String: Set<String>]

    init(rules: [LayoutRule], records: [RecordLayout]) {
        self.rules = rules
        var contributions: [String: [Contribution]] = [:]
        var count = 0
        var checks: [String: [Int]] = [:]
        var scopes: [[String]: [Int]] = [:]
        func contribute(_ record: String, _ rule: Int, _ field: String?, _ modulo: Int64?, _ whereField: String?, _ wherePattern: Regex<AnyRegexOutput>?) {
            contributions[record, default: []].append(Contribution(index: count, rule: rule, field: field, modulo: modulo, whereField: whereField, wherePattern: wherePattern))
            count += 1
        }
        var contextFields: [String: Set<String>] = [:]
        for record in records {
            if let name = record.whenRecord, let field = record.whenField { contextFields[name, default: []].insert(field) }
        }
        for (index, rule) in rules.enumerated() {
            switch rule.kind {
            case .sum(let record, let field, let modulo, let whereField, let wherePattern):
                contribute(record, index, field, modulo, whereField, wherePattern)
            case .count(let counted):
                for record in counted.sorted() { contribute(record, index, nil, nil, nil, nil) }
            case .sameAs(let record, let field):
                contextFields[record, default: []].insert(field)
            default:
                break
            }
            checks[rule.record, default: []].append(index)
            if rule.isAggregate { scopes[rule.scope, default: []].append(index) }
        }
        self.contributions = contributions
        self.contributionCount = count
        self.checks = checks
        self.scopes = scopes
        self.contextFields = contextFields
    }
}

/// The running state of a layout's rules while one file streams.
struct RuleState {
    let tables: RuleTables
    var rules: [LayoutRule] { tables.rules }
    var totals: [Int64]
    var records = 0
    /// The control value of a `blocks` rule and the line it was on, checked at the end.
    var pendingBlocks: [(rule: Int, value: Int64, line: Int)] = []
    /// Pattern results by value, per contribution: a field such as a transaction code has
    /// few values.
    var seen: [[String: Bool]]

    init(tables: RuleTables) {
        self.tables = tables
        totals = Array(repeating: 0, count: tables.rules.count)
        seen = Array(repeating: [:], count: tables.contributionCount)
    }

    /// A group instance at `path` begins: its aggregates start again.
    mutating func enter(_ path: [String]) {
        guard let starting = tables.scopes[path] else { return }
        for index in starting { totals[index] = 0 }
    }

    static func integer(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let number)?:
            return Int64(exactly: number.rounded())
        case .string(var text)?:
            return text.withUTF8 { bytes -> Int64? in
                var result: Int64 = 0
                var digits = 0
                for byte in bytes where byte != 0x20 {
                    guard byte >= 0x30, byte <= 0x39, digits < 18 else { return nil }
                    result = result * 10 + Int64(byte - 0x30)
                    digits += 1
                }
                return digits > 0 ? result : nil
            }
        default:
            return nil
        }
    }

    /// Checks and counts one record.
    mutating func record(_ name: String, _ fields: JSONValue, line: Int, context: [String: [String: String]]) throws {
        records += 1
        for contribution in tables.contributions[name] ?? [] {
            guard let field = contribution.field else {
                totals[contribution.rule] += 1
                continue
            }
            if let whereField = contribution.whereField, let pattern = contribution.wherePattern {
                guard let text = fields[whereField]?.text else { continue }
                let matches: Bool
                if let known = seen[contribution.index][text] {
                    matches = known
                } else {
                    matches = (try? pattern.wholeMatch(in: text)) != nil
                    if seen[contribution.index].count < 1024 { seen[contribution.index][text] = matches }
                }
                guard matches else { continue }
            }
            let rule = rules[contribution.rule]
            guard let value = RuleState.integer(fields[field]) else {
                throw FixedWidthError(line: line, record: name, field: field, message: "rule '\(rule.name)': not a number")
            }
            let (sum, overflow) = totals[contribution.rule].addingReportingOverflow(value)
            guard !overflow else {
                throw FixedWidthError(line: line, record: name, field: field, message: "rule '\(rule.name)': the sum grows past 19 digits")
            }
            totals[contribution.rule] = sum
            if let modulo = contribution.modulo { totals[contribution.rule] %= modulo }
        }
        for index in tables.checks[name] ?? [] {
            let rule = rules[index]
            func failure(_ message: String) -> FixedWidthError {
                FixedWidthError(line: line, record: name, field: rule.field, message: "rule '\(rule.name)': \(message)")
            }
            let value = fields[rule.field]
            switch rule.kind {
            case .sum, .count:
                let control = RuleState.integer(value)
                if control != totals[index] {
                    throw failure("\(rule.field) is \(value?.text ?? "blank"), but the \(rule.name) is \(totals[index])")
                }
            case .blocks:
                pendingBlocks.append((index, RuleState.integer(value) ?? -1, line))
            case .sameAs(let other, let otherField):
                let expected = context[other]?[otherField]
                if value?.text != expected {
                    throw failure("'\(value?.text ?? "")' differs from \(other).\(otherField) '\(expected ?? "")'")
                }
            case .checkDigit(let of, let weights, let modulo):
                guard let digits = fields[of]?.text, digits.utf8.count == weights.count, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw failure("\(of) '\(fields[of]?.text ?? "")' is not \(weights.count) digits")
                }
                let sum = zip(digits.utf8, weights).reduce(0) { $0 + Int($1.0 - 0x30) * $1.1 }
                let expected = (modulo - sum % modulo) % modulo
                if value?.text != String(expected) {
                    throw failure("check digit '\(value?.text ?? "")' is wrong for \(digits) (expected \(expected))")
                }
            case .oneOf(let allowed):
                guard let text = value?.text, !allowed.contains(text) else { break }
                throw failure("'\(text)' is not an allowed value")
            case .pattern(let regex, let source):
                guard let text = value?.text, (try? regex.wholeMatch(in: text)) == nil else { break }
                throw failure("'\(text)' does not match \(source)")
            case .not(let forbidden):
                if value?.text == forbidden { throw failure("must not be '\(forbidden)'") }
            }
        }
    }

    /// Checks what can only be known at the end (block counts), given the filler records read.
    func finish(fillers: Int) throws {
        for pending in pendingBlocks {
            let rule = rules[pending.rule]
            guard case .blocks(let size) = rule.kind else { continue }
            let expected = Int64((records + fillers + size - 1) / size)
            if pending.value != expected {
                throw FixedWidthError(line: pending.line, record: rule.record, field: rule.field,
                                      message: "rule '\(rule.name)': \(rule.field) is \(pending.value), but the file has \(records + fillers) records, \(expected) blocks of \(size)")
            }
        }
    }
}
