// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// An I-Regexp (RFC 9485), the pattern language of JSONPath's `match` and `search`
/// (RFC 9535): checked against the RFC's grammar and translated to a Swift regular
/// expression. A pattern outside the grammar (`(?:a)`, `\d`, `a{2}?`, a back-reference)
/// is refused, so that it matches nothing rather than something other engines would not.
struct IRegexp: @unchecked Sendable {
    // Regex is immutable once built; matching does not mutate it.
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        var parser = IRegexpTranslator(Array(pattern.unicodeScalars))
        let translated = try parser.translate()
        self.regex = try Regex(translated).matchingSemantics(.unicodeScalar)
    }

    func matchesWhole(_ subject: String) -> Bool {
        (try? regex.wholeMatch(in: subject)) != nil
    }

    func matchesPart(_ subject: String) -> Bool {
        (try? regex.firstMatch(in: subject)) != nil
    }
}

/// Recursive descent over RFC 9485 §5's grammar, writing the equivalent Swift regex.
private struct IRegexpTranslator {
    /// Groups nested deeper than this are refused (the parser recurses per group).
    static let maximumDepth = 100
    let scalars: [Unicode.Scalar]
    var position = 0
    var depth = 0
    var output = ""

    init(_ scalars: [Unicode.Scalar]) {
        self.scalars = scalars
    }

    var next: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    func failure(_ message: String) -> JSONPathError {
        JSONPathError(message: "not an I-Regexp (RFC 9485): \(message)", offset: position)
    }

    mutating func translate() throws -> String {
        try alternatives()
        if let extra = next { throw failure("unexpected '\(extra)'") }
        return output
    }

    /// i-regexp = branch *( "|" branch ); a branch is any number of pieces.
    mutating func alternatives() throws {
        while true {
            while try piece() {}
            guard next == "|" else { return }
            position += 1
            output += "|"
        }
    }

    /// piece = atom [ quantifier ]; false when no atom starts here.
    mutating func piece() throws -> Bool {
        guard try atom() else { return false }
        switch next {
        case let quantifier? where quantifier == "*" || quantifier == "+" || quantifier == "?":
            output.unicodeScalars.append(quantifier)
            position += 1
        case "{":
            try rangeQuantifier()
        default:
            break
        }
        return true
    }

    /// "{" QuantExact [ "," [ QuantExact ] ] "}"
    mutating func rangeQuantifier() throws {
        position += 1
        output += "{"
        guard try digits() else { throw failure("a '{' quantifier needs a count") }
        if next == "," {
            position += 1
            output += ","
            _ = try digits()
        }
        guard next == "}" else { throw failure("unclosed '{' quantifier") }
        position += 1
        output += "}"
    }

    mutating func digits() throws -> Bool {
        var found = false
        while let c = next, ("0"..."9").contains(c) {
            output.unicodeScalars.append(c)
            position += 1
            found = true
        }
        return found
    }

    /// atom = NormalChar / charClass / "(" i-regexp ")"; false at a branch's end.
    mutating func atom() throws -> Bool {
        guard let c = next else { return false }
        switch c {
        case "(":
            guard depth < IRegexpTranslator.maximumDepth else { throw failure("groups nested too deeply") }
            position += 1
            depth += 1
            output += "("
            try alternatives()
            guard next == ")" else { throw failure(next.map { "'\($0)' cannot start a piece" } ?? "unclosed '('") }
            position += 1
            depth -= 1
            output += ")"
        case ")", "|":
            return false
        case ".":
            position += 1
            output += "[^\\n\\r]"
        case "\\":
            try escape()
        case "[":
            try classExpression()
        case "*", "+", "?", "{", "}", "]":
            throw failure("'\(c)' has nothing to repeat or is not allowed here")
        default:
            position += 1
            output.unicodeScalars.append(c)
        }
        return true
    }

    /// SingleCharEsc, or \p{…} / \P{…} with a general category.
    mutating func escape() throws {
        position += 1
        guard let c = next else { throw failure("a '\\' ends the pattern") }
        position += 1
        if c == "p" || c == "P" {
            guard next == "{" else { throw failure("\\\(c) needs {category}") }
            position += 1
            var name = ""
            while let n = next, n != "}" {
                name.unicodeScalars.append(n)
                position += 1
            }
            guard next == "}", IRegexpTranslator.categories.contains(name) else {
                throw failure("'\(name)' is not a Unicode general category (L, Lu, Nd, …)")
            }
            position += 1
            output += "\\\(c){\(name)}"
            return
        }
        guard "()*+-.?[\\]^{|}nrt".unicodeScalars.contains(c) else {
            throw failure("'\\\(c)' is not an I-Regexp escape")
        }
        output += "\\" + String(c)
    }

    static let categories: Set<String> = [
        "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No",
        "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Z", "Zl", "Zp", "Zs",
        "S", "Sc", "Sk", "Sm", "So", "C", "Cc", "Cf", "Cn", "Co",
    ]

    /// "[" [ "^" ] ( "-" / CCE1 ) *CCE1 [ "-" ] "]"
    mutating func classExpression() throws {
        position += 1
        output += "["
        if next == "^" {
            position += 1
            output += "^"
        }
        var first = true
        while true {
            guard let c = next else { throw failure("unclosed '['") }
            if c == "]" {
                guard !first else { throw failure("an empty character class") }
                break
            }
            if c == "-" {
                // Only first or last.
                position += 1
                guard first || next == "]" else { throw failure("'-' inside a class must be first, last or a range") }
                output += "\\-"
            } else if c == "\\", position + 1 < scalars.count, "pP".unicodeScalars.contains(scalars[position + 1]) {
                try escape()
            } else {
                try classCharacter()
                if next == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                    position += 1
                    output += "-"
                    try classCharacter()
                }
            }
            first = false
        }
        position += 1
        output += "]"
    }

    /// CCchar: any character but "-", "[", "\", "]" unescaped, or a SingleCharEsc.
    mutating func classCharacter() throws {
        guard let c = next else { throw failure("unclosed '['") }
        switch c {
        case "\\":
            try escape()
        case "-", "[", "]":
            throw failure("'\(c)' inside a class must be escaped")
        case "&", "~":
            // Set operators (&&, ~~) in Swift's class syntax; plain characters here.
            position += 1
            output += "\\" + String(c)
        default:
            position += 1
            output.unicodeScalars.append(c)
        }
    }
}
