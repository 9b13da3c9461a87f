// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// A recursive-descent parser for RFC 9535 JSONPath queries.
struct JSONPathParser {
    private let chars: [Unicode.Scalar]
    private var index = 0

    init(_ text: String) {
        self.chars = Array(text.unicodeScalars)
    }

    private static let maximumInteger = 9_007_199_254_740_991

    // MARK: Helpers

    private func error(_ message: String) -> JSONPathError {
        JSONPathError(message: message, offset: index)
    }

    private var atEnd: Bool { index >= chars.count }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < chars.count ? chars[index + offset] : nil
    }

    private mutating func skipBlank() {
        while let c = peek(), c == " " || c == "\t" || c == "\n" || c == "\r" { index += 1 }
    }

    private mutating func consume(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard index + scalars.count <= chars.count, Array(chars[index..<index + scalars.count]) == scalars else { return false }
        index += scalars.count
        return true
    }

    private mutating func expect(_ text: String, _ what: String) throws {
        guard consume(text) else { throw error("expected \(what)") }
    }

    private static func isDigit(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return ("0"..."9").contains(c)
    }

    private static func isNameFirst(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
            || (0x80...0xD7FF).contains(c.value) || (0xE000...0x10FFFF).contains(c.value)
    }

    private static func isNameChar(_ c: Unicode.Scalar?) -> Bool {
        isNameFirst(c) || isDigit(c)
    }

    // MARK: Queries

    mutating func parseWholeQuery() throws -> JSONPathQuery {
        guard consume("$") else { throw error("a JSONPath query starts with '$'") }
        let segments = try parseSegments()
        guard atEnd else { throw error("unexpected '\(Character(chars[index]))'") }
        return JSONPathQuery(relative: false, segments: segments)
    }

    private mutating func parseSegments() throws -> [JSONPathSegment] {
        var segments: [JSONPathSegment] = []
        while true {
            let save = index
            skipBlank()
            if consume("..") {
                if peek() == "[" {
                    segments.append(JSONPathSegment(descendant: true, selectors: try parseBracketed()))
                } else if consume("*") {
                    segments.append(JSONPathSegment(descendant: true, selectors: [.wildcard]))
                } else if JSONPathParser.isNameFirst(peek()) {
                    segments.append(JSONPathSegment(descendant: true, selectors: [.name(parseShorthandName())]))
                } else {
                    throw error("expected a name, '*' or '[' after '..'")
                }
            } else if consume(".") {
                if consume("*") {
                    segments.append(JSONPathSegment(descendant: false, selectors: [.wildcard]))
                } else if JSONPathParser.isNameFirst(peek()) {
                    segments.append(JSONPathSegment(descendant: false, selectors: [.name(parseShorthandName())]))
                } else {
                    throw error("expected a name or '*' after '.'")
                }
            } else if peek() == "[" {
                segments.append(JSONPathSegment(descendant: false, selectors: try parseBracketed()))
            } else {
                index = save
                return segments
            }
        }
    }

    private mutating func parseShorthandName() -> String {
        let start = index
        while JSONPathParser.isNameChar(peek()) { index += 1 }
        return String(String.UnicodeScalarView(chars[start..<index]))
    }

    private mutating func parseBracketed() throws -> [JSONPathSelector] {
        try expect("[", "'['")
        var selectors: [JSONPathSelector] = []
        repeat {
            skipBlank()
            selectors.append(try parseSelector())
            skipBlank()
        } while consume(",")
        try expect("]", "',' or ']' in a bracketed selection")
        return selectors
    }

    private mutating func parseSelector() throws -> JSONPathSelector {
        guard let c = peek() else { throw error("unexpected end of query") }
        if c == "'" || c == "\"" { return .name(try parseStringLiteral()) }
        if c == "*" {
            index += 1
            return .wildcard
        }
        if c == "?" {
            index += 1
            skipBlank()
            return .filter(try parseLogicalOr())
        }
        // Index or slice.
        var start: Int?
        if c == "-" || JSONPathParser.isDigit(c) { start = try parseInteger() }
        skipBlank()
        guard consume(":") else {
            guard let start else { throw error("expected a selector: a name, '*', an index, a slice or a filter") }
            return .index(start)
        }
        skipBlank()
        var end: Int?
        if peek() == "-" || JSONPathParser.isDigit(peek()) { end = try parseInteger() }
        skipBlank()
        var step: Int?
        if consume(":") {
            skipBlank()
            if peek() == "-" || JSONPathParser.isDigit(peek()) { step = try parseInteger() }
        }
        return .slice(start: start, end: end, step: step)
    }

    private mutating func parseInteger() throws -> Int {
        let start = index
        let negative = consume("-")
        guard JSONPathParser.isDigit(peek()) else { throw error("expected digits") }
        if peek() == "0" {
            index += 1
            if JSONPathParser.isDigit(peek()) { throw error("leading zeros are not allowed in an integer") }
            if negative { throw JSONPathError(message: "'-0' is not a valid index", offset: start) }
            return 0
        }
        var digits = ""
        while let c = peek(), JSONPathParser.isDigit(c) {
            digits.unicodeScalars.append(c)
            index += 1
        }
        guard digits.count <= 16, let value = Int(digits), value <= JSONPathParser.maximumInteger else {
            throw JSONPathError(message: "integer out of the I-JSON range", offset: start)
        }
        return negative ? -value : value
    }

    private mutating func parseStringLiteral() throws -> String {
        guard let quote = peek(), quote == "'" || quote == "\"" else { throw error("expected a string") }
        index += 1
        var result = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw error("unterminated string") }
            index += 1
            if c == quote { return String(result) }
            if c.value < 0x20 { throw error("control character in string") }
            guard c == "\\" else {
                result.append(c)
                continue
            }
            guard let escape = peek() else { throw error("unterminated escape") }
            index += 1
            switch escape {
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "/": result.append("/")
            case "\\": result.append("\\")
            case "'" where quote == "'": result.append("'")
            case "\"" where quote == "\"": result.append("\"")
            case "u":
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard consume("\\u") else { throw error("high surrogate without a low surrogate") }
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid low surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw error("lone low surrogate")
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                result.append(scalar)
            default:
                throw error("invalid escape '\\\(Character(escape))'")
            }
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek(), let digit = Int(String(Character(c)), radix: 16) else { throw error("expected 4 hex digits") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    // MARK: Filter expressions

    private mutating func parseLogicalOr() throws -> JSONPathFilter {
        var terms = [try parseLogicalAnd()]
        while true {
            let save = index
            skipBlank()
            guard consume("||") else {
                index = save
                break
            }
            skipBlank()
            terms.append(try parseLogicalAnd())
        }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    private mutating func parseLogicalAnd() throws -> JSONPathFilter {
        var terms = [try parseBasic()]
        while true {
            let save = index
            skipBlank()
            guard consume("&&") else {
                index = save
                break
            }
            skipBlank()
            terms.append(try parseBasic())
        }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    private mutating func parseBasic() throws -> JSONPathFilter {
        if consume("!") {
            skipBlank()
            if consume("(") {
                return .not(try parseParenRest())
            }
            let start = index
            let operand = try parseComparableOrTest()
            switch operand {
            case .query(let query): return .not(.exists(query))
            case .function(let call):
                try requireTestable(call, at: start)
                return .not(.function(call))
            case .literal: throw JSONPathError(message: "a literal cannot be negated", offset: start)
            }
        }
        if consume("(") { return try parseParenRest() }
        let start = index
        let lhs = try parseComparableOrTest()
        let save = index
        skipBlank()
        if let op = parseComparisonOperator() {
            skipBlank()
            let rhsStart = index
            let rhs = try parseComparableOrTest()
            try requireComparable(lhs, at: start)
            try requireComparable(rhs, at: rhsStart)
            return .comparison(lhs, op, rhs)
        }
        index = save
        switch lhs {
        case .query(let query): return .exists(query)
        case .function(let call):
            try requireTestable(call, at: start)
            return .function(call)
        case .literal: throw JSONPathError(message: "a literal must be compared with something", offset: start)
        }
    }

    private mutating func parseParenRest() throws -> JSONPathFilter {
        skipBlank()
        let inner = try parseLogicalOr()
        skipBlank()
        try expect(")", "')'")
        return inner
    }

    private mutating func parseComparisonOperator() -> JSONPathComparison? {
        for op in [JSONPathComparison.equal, .notEqual, .lessOrEqual, .greaterOrEqual, .less, .greater] where consume(op.rawValue) {
            return op
        }
        return nil
    }

    private func requireComparable(_ comparable: JSONPathComparable, at offset: Int) throws {
        switch comparable {
        case .literal: return
        case .query(let query):
            guard query.isSingular else {
                throw JSONPathError(message: "only singular queries (names and indexes) can be compared", offset: offset)
            }
        case .function(let call):
            guard call.name.result == .value else {
                throw JSONPathError(message: "\(call.name.rawValue)() does not return a value and cannot be compared", offset: offset)
            }
        }
    }

    private func requireTestable(_ call: JSONPathFunctionCall, at offset: Int) throws {
        guard call.name.result != .value else {
            throw JSONPathError(message: "\(call.name.rawValue)() returns a value; compare it instead of testing it", offset: offset)
        }
    }

    /// Parses a literal, a query (`@…` or `$…`) or a function call.
    private mutating func parseComparableOrTest() throws -> JSONPathComparable {
        guard let c = peek() else { throw error("unexpected end of filter") }
        if c == "@" || c == "$" {
            index += 1
            return .query(JSONPathQuery(relative: c == "@", segments: try parseSegments()))
        }
        if let literal = try parseLiteral() { return .literal(literal) }
        if ("a"..."z").contains(c) { return .function(try parseFunctionCall()) }
        throw error("expected a query, a literal or a function call")
    }

    private mutating func parseLiteral() throws -> JSONValue? {
        guard let c = peek() else { return nil }
        if c == "'" || c == "\"" { return .string(try parseStringLiteral()) }
        if c == "-" || JSONPathParser.isDigit(c) { return .number(try parseNumber()) }
        for (word, value) in [("true", JSONValue.bool(true)), ("false", .bool(false)), ("null", .null)] {
            let save = index
            if consume(word) {
                if JSONPathParser.isNameChar(peek()) || peek() == "(" {
                    index = save
                    return nil
                }
                return value
            }
        }
        return nil
    }

    private mutating func parseNumber() throws -> JSONNumber {
        let start = index
        _ = consume("-")
        guard JSONPathParser.isDigit(peek()) else { throw error("expected digits") }
        if peek() == "0" {
            index += 1
            if JSONPathParser.isDigit(peek()) { throw error("leading zeros are not allowed in a number") }
        } else {
            while JSONPathParser.isDigit(peek()) { index += 1 }
        }
        if peek() == "." {
            index += 1
            guard JSONPathParser.isDigit(peek()) else { throw error("expected digits after '.'") }
            while JSONPathParser.isDigit(peek()) { index += 1 }
        }
        if peek() == "e" || peek() == "E" {
            index += 1
            if peek() == "+" || peek() == "-" { index += 1 }
            guard JSONPathParser.isDigit(peek()) else { throw error("expected digits in exponent") }
            while JSONPathParser.isDigit(peek()) { index += 1 }
        }
        let text = String(String.UnicodeScalarView(chars[start..<index]))
        guard let value = JSONNumber(text: text) else { throw JSONPathError(message: "invalid number (an exponent has at most nine digits)", offset: start) }
        return value
    }

    private mutating func parseFunctionCall() throws -> JSONPathFunctionCall {
        let start = index
        while let c = peek(), ("a"..."z").contains(c) || c == "_" || JSONPathParser.isDigit(c) { index += 1 }
        let nameText = String(String.UnicodeScalarView(chars[start..<index]))
        guard peek() == "(" else { throw JSONPathError(message: "expected '(' after function name '\(nameText)'", offset: index) }
        guard let name = JSONPathFunctionCall.Name(rawValue: nameText) else {
            throw JSONPathError(message: "unknown function '\(nameText)'; known: length, count, match, search, value", offset: start)
        }
        index += 1
        skipBlank()
        var arguments: [JSONPathArgument] = []
        if peek() != ")" {
            repeat {
                skipBlank()
                let argumentStart = index
                let argument = try parseArgument()
                guard arguments.count < name.parameters.count else {
                    throw JSONPathError(message: "\(nameText)() takes \(name.parameters.count) argument(s)", offset: argumentStart)
                }
                try check(argument, against: name.parameters[arguments.count], function: nameText, at: argumentStart)
                arguments.append(argument)
                skipBlank()
            } while consume(",")
        }
        try expect(")", "')' closing \(nameText)(")
        guard arguments.count == name.parameters.count else {
            throw JSONPathError(message: "\(nameText)() takes \(name.parameters.count) argument(s), got \(arguments.count)", offset: start)
        }
        var call = JSONPathFunctionCall(name: name, arguments: arguments)
        if name == .match || name == .search, case .literal(.string(let pattern)) = arguments[1] {
            call.compiledPattern = try? IRegexp(pattern)
            if call.compiledPattern == nil {
                // An invalid literal pattern never matches.
                call.arguments[1] = .literal(.null)
            }
        }
        return call
    }

    private mutating func parseArgument() throws -> JSONPathArgument {
        let start = index
        let isLiteral = (try? parseLiteral()) != nil
        index = start
        if let c = peek(), ("a"..."z").contains(c), !isLiteral {
            // A function call passed as an argument keeps its own result type.
            if let call = try? parseFunctionCall() {
                let save = index
                skipBlank()
                if peek() == "," || peek() == ")" {
                    index = save
                    return .function(call)
                }
            }
            index = start
        }
        if let literal = try parseLiteral() {
            let save = index
            skipBlank()
            if peek() == "," || peek() == ")" {
                index = save
                return .literal(literal)
            }
            index = start
        }
        let filter = try parseLogicalOr()
        switch filter {
        case .exists(let query): return .query(query)
        case .function(let call): return .function(call)
        default: return .logical(filter)
        }
    }

    private func check(_ argument: JSONPathArgument, against type: JSONPathType, function: String, at offset: Int) throws {
        let ok: Bool
        switch (argument, type) {
        case (.literal, .value): ok = true
        case (.query(let query), .value): ok = query.isSingular
        case (.function(let call), .value): ok = call.name.result == .value
        case (.query, .nodes): ok = true
        case (.function(let call), .nodes): ok = call.name.result == .nodes
        case (.logical, .logical), (.query, .logical): ok = true
        case (.function(let call), .logical): ok = call.name.result != .value
        default: ok = false
        }
        guard ok else {
            throw JSONPathError(message: "argument of \(function)() has the wrong type (expected a \(type))", offset: offset)
        }
    }
}

extension JSONPathType: CustomStringConvertible {
    var description: String {
        switch self {
        case .value: "value"
        case .logical: "logical expression"
        case .nodes: "node list"
        }
    }
}
