// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

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
/// per record variant, the aggregates it adds to, the rules that check it and the fields
/// later records read (`when`, `same-as`), all by position and as plain values; per group
/// path, the aggregates that start again there.
final class RuleTables: @unchecked Sendable {
    // @unchecked: immutable once built; the compiled patterns are only read.

    /// What a record adds to an aggregate: one (counted) or a field's value, perhaps only
    /// when another field matches a pattern.
    struct Contribution {
        let rule: Int
        let counted: Bool
        /// The field summed; nil when the variant has no such field.
        let field: Int?
        let modulo: Int64?
        /// Whether the sum has a `where`; `whereField` is nil when the variant lacks the field.
        let hasWhere: Bool
        let whereField: Int?
        /// The slot of the per-parse memo of pattern results.
        let memo: Int
    }

    /// A rule that checks a record: the field checked, and what the rule compares it with.
    struct Check {
        enum Code {
            /// A sum or count against the control field.
            case aggregate
            case blocks
            case checkDigit
            /// same-as, one-of, pattern, not.
            case other
        }

        let rule: Int
        let code: Code
        let field: Int?
        /// The field a check digit is computed from, its weights (in `weights`) and modulo.
        let of: Int?
        let weights: Range<Int>
        let modulo: Int
        /// The context slot a `same-as` compares with.
        let slot: Int?
    }

    let rules: [LayoutRule]
    /// Per variant (by record index), ranges into the flat lists.
    let contributions: [Contribution]
    let contributionRanges: [Range<Int>]
    let checks: [Check]
    let checkRanges: [Range<Int>]
    /// Fields to keep for later records: (field, context slot).
    let keeps: [(field: Int, slot: Int)]
    let keepRanges: [Range<Int>]
    /// Per variant, the context slot its `when` reads, or -1.
    let whenSlots: [Int]
    let weights: [Int]
    /// The `where` pattern of each memo slot.
    let wherePatterns: [Regex<AnyRegexOutput>?]
    let slotCount: Int
    let scopes: [[String]: [Int]]

    init(rules: [LayoutRule], records: [RecordLayout]) {
        self.rules = rules
        var slots: [String: [String: Int]] = [:]
        var slotCount = 0
        func slot(_ record: String, _ field: String) -> Int {
            if let known = slots[record]?[field] { return known }
            slots[record, default: [:]][field] = slotCount
            slotCount += 1
            return slotCount - 1
        }
        var scopes: [[String]: [Int]] = [:]
        for (index, rule) in rules.enumerated() where rule.isAggregate { scopes[rule.scope, default: []].append(index) }
        var contributions: [Contribution] = []
        var contributionRanges: [Range<Int>] = []
        var checks: [Check] = []
        var checkRanges: [Range<Int>] = []
        var whenSlots: [Int] = []
        var weights: [Int] = []
        var wherePatterns: [Regex<AnyRegexOutput>?] = []
        for record in records.sorted(by: { $0.index < $1.index }) {
            whenSlots.append(record.whenRecord.flatMap { name in record.whenField.map { slot(name, $0) } } ?? -1)
            let firstContribution = contributions.count
            let firstCheck = checks.count
            for (index, rule) in rules.enumerated() {
                switch rule.kind {
                case .sum(let summed, let field, let modulo, let whereField, let wherePattern) where summed == record.name:
                    let hasWhere = whereField != nil && wherePattern != nil
                    contributions.append(Contribution(
                        rule: index, counted: false, field: record.fieldIndex(field), modulo: modulo, hasWhere: hasWhere,
                        whereField: whereField.flatMap(record.fieldIndex), memo: wherePatterns.count
                    ))
                    wherePatterns.append(hasWhere ? wherePattern : nil)
                case .count(let counted) where counted.contains(record.name):
                    contributions.append(Contribution(rule: index, counted: true, field: nil, modulo: nil, hasWhere: false, whereField: nil, memo: -1))
                default:
                    break
                }
                guard rule.record == record.name else { continue }
                var code = Check.Code.other
                var of: Int?
                var compared: Int?
                var ruleWeights = weights.count..<weights.count
                var modulo = 0
                switch rule.kind {
                case .sum, .count: code = .aggregate
                case .blocks: code = .blocks
                case .checkDigit(let field, let digitWeights, let digitModulo):
                    code = .checkDigit
                    of = record.fieldIndex(field)
                    weights += digitWeights
                    ruleWeights = ruleWeights.lowerBound..<weights.count
                    modulo = digitModulo
                case .sameAs(let other, let field): compared = slot(other, field)
                default: break
                }
                checks.append(Check(rule: index, code: code, field: record.fieldIndex(rule.field), of: of, weights: ruleWeights, modulo: modulo, slot: compared))
            }
            contributionRanges.append(firstContribution..<contributions.count)
            checkRanges.append(firstCheck..<checks.count)
        }
        // Fields to keep: after every slot is known (a `same-as` may name a later record).
        var keeps: [(field: Int, slot: Int)] = []
        var keepRanges: [Range<Int>] = []
        for record in records.sorted(by: { $0.index < $1.index }) {
            let first = keeps.count
            if let wanted = slots[record.name] {
                for (index, field) in record.fields.enumerated() {
                    if let slot = wanted[field.name] { keeps.append((index, slot)) }
                }
            }
            keepRanges.append(first..<keeps.count)
        }
        self.contributions = contributions
        self.contributionRanges = contributionRanges
        self.checks = checks
        self.checkRanges = checkRanges
        self.keeps = keeps
        self.keepRanges = keepRanges
        self.whenSlots = whenSlots
        self.weights = weights
        self.wherePatterns = wherePatterns
        self.slotCount = slotCount
        self.scopes = scopes
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
    /// `where` results per memo slot, by the field's bytes (fields of up to 8 bytes; a field
    /// such as a transaction code has few values): `memoWidth` entries a slot, of which
    /// `memoCounts` are used; 1 matches, 0 does not, -1 no such member.
    static let memoWidth = 32
    var memoKeys: [UInt64]
    var memoResults: [Int8]
    var memoCounts: [Int]
    /// The same by text, for longer fields.
    var seenText: [[String: Bool]]

    init(tables: RuleTables) {
        self.tables = tables
        totals = Array(repeating: 0, count: tables.rules.count)
        let slots = tables.wherePatterns.count
        memoKeys = Array(repeating: 0, count: slots * Self.memoWidth)
        memoResults = Array(repeating: 0, count: slots * Self.memoWidth)
        memoCounts = Array(repeating: 0, count: slots)
        seenText = Array(repeating: [:], count: slots)
    }

    /// A group instance begins: these aggregates start again.
    mutating func enter(_ starting: [Int]) {
        for index in starting { totals[index] = 0 }
    }

    static func integer(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let number)?:
            return number.int64
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

    /// Whether a contribution's `where` holds for the record; nil when the record has no
    /// such member.
    private mutating func whereMatches(_ contribution: RuleTables.Contribution, _ record: FixedWidthRecord, _ view: RecordView) -> Bool? {
        guard let field = contribution.whereField else { return nil }
        let memo = contribution.memo
        if let key = view.packed(field) {
            let first = memo * Self.memoWidth
            for slot in first..<(first + memoCounts[memo]) where memoKeys[slot] == key {
                return memoResults[slot] < 0 ? nil : memoResults[slot] == 1
            }
            let matches = record.member(field).map { text in tables.wherePatterns[memo].map { (try? $0.wholeMatch(in: text.text)) != nil } ?? true }
            if memoCounts[memo] < Self.memoWidth {
                memoKeys[first + memoCounts[memo]] = key
                memoResults[first + memoCounts[memo]] = matches.map { $0 ? 1 : 0 } ?? -1
                memoCounts[memo] += 1
            }
            return matches
        }
        guard let text = record.member(field)?.text else { return nil }
        if let known = seenText[memo][text] { return known }
        let matches = tables.wherePatterns[memo].map { (try? $0.wholeMatch(in: text)) != nil } ?? true
        if seenText[memo].count < 1024 { seenText[memo][text] = matches }
        return matches
    }

    /// Checks and counts one record; `context` holds the fields kept from earlier records.
    mutating func record(_ record: FixedWidthRecord, _ view: RecordView, context: [String?]) throws {
        records += 1
        let variant = record.layout.index
        for index in tables.contributionRanges[variant] {
            let contribution = tables.contributions[index]
            if contribution.counted {
                totals[contribution.rule] += 1
                continue
            }
            if contribution.hasWhere {
                guard whereMatches(contribution, record, view) == true else { continue }
            }
            guard let value = contribution.field.flatMap({ record.integer($0, view) }) else {
                throw sumFailure(contribution, record, "not a number")
            }
            let (sum, overflow) = totals[contribution.rule].addingReportingOverflow(value)
            guard !overflow else { throw sumFailure(contribution, record, "the sum grows past 19 digits") }
            totals[contribution.rule] = sum
            if let modulo = contribution.modulo { totals[contribution.rule] %= modulo }
        }
        for index in tables.checkRanges[variant] {
            let check = tables.checks[index]
            switch check.code {
            case .aggregate:
                if check.field.flatMap({ record.integer($0, view) }) == totals[check.rule] { continue }
            case .blocks:
                pendingBlocks.append((check.rule, check.field.flatMap { record.integer($0, view) } ?? -1, record.line))
                continue
            case .checkDigit:
                if let field = check.field, let source = check.of {
                    let holds = tables.weights.withUnsafeBufferPointer { weights in
                        view.checkDigitHolds(field, of: source, weights: UnsafeBufferPointer(rebasing: weights[check.weights]), modulo: check.modulo)
                    }
                    if holds { continue }
                }
            case .other:
                break
            }
            try slowCheck(check, record, context: context)
        }
    }

    private func sumFailure(_ contribution: RuleTables.Contribution, _ record: FixedWidthRecord, _ message: String) -> FixedWidthError {
        let rule = rules[contribution.rule]
        var field = rule.field
        if case .sum(_, let summed, _, _, _) = rule.kind { field = summed }
        return FixedWidthError(line: record.line, record: record.name, field: field, message: "rule '\(rule.name)': \(message)")
    }

    /// A check the bytes alone did not settle: worked out on the fields' JSON values, and
    /// thrown with what is wrong.
    private func slowCheck(_ check: RuleTables.Check, _ record: FixedWidthRecord, context: [String?]) throws {
        let rule = rules[check.rule]
        func failure(_ message: String) -> FixedWidthError {
            FixedWidthError(line: record.line, record: record.name, field: rule.field, message: "rule '\(rule.name)': \(message)")
        }
        func member(_ index: Int?) -> JSONValue? { index.flatMap(record.member) }
        switch rule.kind {
        case .sum, .count:
            let control = RuleState.integer(member(check.field))
            if control != totals[check.rule] {
                throw failure("\(rule.field) is \(member(check.field)?.text ?? "blank"), but the \(rule.name) is \(totals[check.rule])")
            }
        case .blocks:
            break
        case .sameAs(let other, let otherField):
            let expected = check.slot.flatMap { context[$0] }
            let value = member(check.field)
            if value?.text != expected {
                throw failure("'\(value?.text ?? "")' differs from \(other).\(otherField) '\(expected ?? "")'")
            }
        case .checkDigit(let of, let weights, let modulo):
            let value = member(check.field)
            guard let digits = member(check.of)?.text, digits.utf8.count == weights.count, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw failure("\(of) '\(member(check.of)?.text ?? "")' is not \(weights.count) digits")
            }
            let sum = zip(digits.utf8, weights).reduce(0) { $0 + Int($1.0 - 0x30) * $1.1 }
            let expected = (modulo - sum % modulo) % modulo
            if value?.text != String(expected) {
                throw failure("check digit '\(value?.text ?? "")' is wrong for \(digits) (expected \(expected))")
            }
        case .oneOf(let allowed):
            guard let text = member(check.field)?.text, !allowed.contains(text) else { break }
            throw failure("'\(text)' is not an allowed value")
        case .pattern(let regex, let source):
            guard let text = member(check.field)?.text, (try? regex.wholeMatch(in: text)) == nil else { break }
            throw failure("'\(text)' does not match \(source)")
        case .not(let forbidden):
            if member(check.field)?.text == forbidden { throw failure("must not be '\(forbidden)'") }
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
