// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

/// A value with `${…}` placeholders, compiled once at route load.
///
/// Placeholders: `${id}`, `${correlation-id}`, `${header.NAME}`, `${property.NAME}`, `${body}`,
/// `${xpath:EXPR}`, `${json:PATH}`, `${date:FORMAT}`, `${env.NAME}` (read at load). `$${` writes a
/// literal `${`.
struct Template: MessageTemplate {
    enum Part: Sendable {
        case literal(String)
        case id
        case correlationID
        case header(String)
        case property(String)
        case body
        case xpath(XPathExpression)
        case json(JSONPath)
        case date(DateFormat)
        case file(FileField)
    }

    /// `${file:…}`, as in Camel: parts of the name a file consumer gave the message
    /// (`file.name`, relative to the consumer's folder).
    enum FileField: String, CaseIterable, Sendable {
        case name, onlyname, ext, size
        case nameNoExtension = "name.noext"
        case onlynameNoExtension = "onlyname.noext"

        func value(in message: Message) -> String {
            let name = message.headers[FileHeader.name] ?? ""
            let only = message.headers[FileHeader.onlyName] ?? String(name.split(separator: "/").last ?? "")
            func withoutExtension(_ text: String) -> String {
                guard let dot = text.lastIndex(of: "."), dot != text.startIndex, !text[dot...].contains("/") else { return text }
                return String(text[..<dot])
            }
            switch self {
            case .name: return name
            case .onlyname: return only
            case .nameNoExtension: return withoutExtension(name)
            case .onlynameNoExtension: return withoutExtension(only)
            case .ext: return only.lastIndex(of: ".").map { String(only[only.index(after: $0)...]) } ?? ""
            case .size: return message.headers[FileHeader.length] ?? ""
            }
        }
    }

    let parts: [Part]
    let text: String
    /// The value when there are no placeholders, worked out once.
    let literalValue: String?
    /// Whether the template is exactly `${body}`, so a caller can keep the bytes as they are.
    let isBodyOnly: Bool

    init(parts: [Part], text: String) {
        self.parts = parts
        self.text = text
        if parts.isEmpty {
            literalValue = ""
        } else if parts.count == 1, case .literal(let value) = parts[0] {
            literalValue = value
        } else {
            literalValue = nil
        }
        if parts.count == 1, case .body = parts[0] {
            isBodyOnly = true
        } else {
            isBodyOnly = false
        }
    }

    /// The placeholders a template may use, for error messages and docs.
    static let variables = ["id", "correlation-id", "header.NAME", "property.NAME", "body", "xpath:EXPR", "json:PATH", "date:FORMAT", "env.NAME", "file:name"]

    /// Compiles `text`, reporting problems at `location` (the start of the text in the file).
    static func compile(
        _ text: String,
        at location: SourceLocation,
        namespaces: XPathNamespaces,
        environment: [String: String],
        log: inout DiagnosticLog
    ) -> Template? {
        var parts: [Part] = []
        var literal = ""
        var failed = false
        let scalars = Array(text.unicodeScalars)
        var index = 0
        func flushLiteral() {
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = ""
            }
        }
        while index < scalars.count {
            let c = scalars[index]
            if c == "$", index + 2 < scalars.count, scalars[index + 1] == "$", scalars[index + 2] == "{" {
                literal += "${"
                index += 3
                continue
            }
            guard c == "$", index + 1 < scalars.count, scalars[index + 1] == "{" else {
                literal.unicodeScalars.append(c)
                index += 1
                continue
            }
            // Find the matching close brace, allowing braces nested inside (JSONPath filters).
            var depth = 0
            var end = index + 1
            var quote: Unicode.Scalar?
            while end < scalars.count {
                let d = scalars[end]
                if let open = quote {
                    if d == open { quote = nil }
                } else if d == "'" || d == "\"" {
                    quote = d
                } else if d == "{" {
                    depth += 1
                } else if d == "}" {
                    depth -= 1
                    if depth == 0 { break }
                }
                end += 1
            }
            let placeholderLocation = location.advanced(by: index)
            guard end < scalars.count else {
                log.error(placeholderLocation, "unterminated '${' in template; expected '}'")
                return nil
            }
            let name = String(String.UnicodeScalarView(scalars[(index + 2)..<end]))
            index = end + 1
            switch Template.part(for: name, namespaces: namespaces, environment: environment) {
            case .success(.literal(let value)):
                literal += value
            case .success(let part):
                flushLiteral()
                parts.append(part)
            case .failure(let message):
                log.error(placeholderLocation, message.text)
                failed = true
            }
        }
        flushLiteral()
        return failed ? nil : Template(parts: parts, text: text)
    }

    private struct Problem: Error {
        var text: String
    }

    private static func part(for name: String, namespaces: XPathNamespaces, environment: [String: String]) -> Result<Part, Problem> {
        switch name {
        case "id": return .success(.id)
        case "correlation-id": return .success(.correlationID)
        case "body": return .success(.body)
        default: break
        }
        if name.hasPrefix("header.") {
            let header = String(name.dropFirst("header.".count))
            guard !header.isEmpty else { return .failure(Problem(text: "'${header.}' needs a header name, as in ${header.X-Region}")) }
            return .success(.header(header))
        }
        if name.hasPrefix("property.") {
            let property = String(name.dropFirst("property.".count))
            guard !property.isEmpty else { return .failure(Problem(text: "'${property.}' needs a property name")) }
            return .success(.property(property))
        }
        if name.hasPrefix("env.") {
            let variable = String(name.dropFirst("env.".count))
            guard let value = environment[variable] else {
                return .failure(Problem(text: "environment variable '\(variable)' used in '${env.\(variable)}' is not set"))
            }
            return .success(.literal(value))
        }
        if name.hasPrefix("xpath:") {
            do {
                return .success(.xpath(try XPathExpression(String(name.dropFirst("xpath:".count)), namespaces: namespaces)))
            } catch {
                return .failure(Problem(text: "\(error)"))
            }
        }
        if name.hasPrefix("json:") {
            let path = String(name.dropFirst("json:".count))
            do {
                return .success(.json(try JSONPath(path)))
            } catch {
                return .failure(Problem(text: "invalid JSONPath '\(path)': \(error)"))
            }
        }
        if name.hasPrefix("date:") {
            return .success(.date(DateFormat(String(name.dropFirst("date:".count)))))
        }
        if name.hasPrefix("file:") {
            let field = String(name.dropFirst("file:".count))
            guard let file = FileField(rawValue: field) else {
                return .failure(Problem(text: "unknown file variable '${file:\(field)}'; known: \(FileField.allCases.map { "${file:\($0.rawValue)}" }.joined(separator: ", "))"))
            }
            return .success(.file(file))
        }
        var message = "unknown template variable '${\(name)}'"
        let bare = name.split(separator: ".").first.map(String.init) ?? name
        if let guess = closestMatch(to: bare, in: ["id", "correlation-id", "header", "property", "body", "xpath", "json", "date", "env"]) {
            message += "; did you mean '\(guess)'?"
        }
        message += " Known: " + variables.map { "${\($0)}" }.joined(separator: ", ")
        return .failure(Problem(text: message))
    }

    /// Renders the template for a message.
    ///
    /// - Throws: When an `${xpath:…}` or `${json:…}` placeholder meets a body that does not parse.
    func render(_ view: inout BodyView) throws -> String {
        if let literalValue { return literalValue }
        var output = ""
        for part in parts {
            switch part {
            case .literal(let text): output += text
            case .id: output += view.message.id.description
            case .correlationID: output += view.message.correlationID
            case .header(let name): output += view.message.headers[name] ?? ""
            case .property(let name): output += view.message.properties[name] ?? ""
            case .body: output += view.message.bodyString
            case .xpath(let expression): output += try expression.evaluateString(in: view.xmlDocument())
            case .json(let path):
                let values = path.select(try view.jsonValue())
                if values.count == 1 {
                    output += values[0].text
                } else if !values.isEmpty {
                    output += JSONValue.array(values).serialized()
                }
            case .date(let format): output += format.string(from: Date())
            case .file(let field): output += field.value(in: view.message)
            }
        }
        return output
    }

    func render(_ message: Message) throws -> String {
        var view = BodyView(message)
        return try render(&view)
    }
}

/// A date pattern in the style Camel and Java use: `yyyy-MM-dd'T'HH:mm:ss.SSS`, in local time.
///
/// Letters: `yyyy` `yy` year, `MM` month, `dd` day, `HH` hour (0-23), `mm` minute, `ss` second,
/// `SSS` millisecond. Text in single quotes, and any other character, is copied as is.
struct DateFormat: Sendable {
    enum Token: Sendable {
        case literal(String)
        case year4, year2, month, day, hour, minute, second, millisecond
    }

    let tokens: [Token]

    init(_ pattern: String) {
        var tokens: [Token] = []
        let characters = Array(pattern)
        var index = 0
        var literal = ""
        func run(of character: Character) -> Int {
            var count = 0
            while index + count < characters.count, characters[index + count] == character { count += 1 }
            return count
        }
        func flush() {
            if !literal.isEmpty { tokens.append(.literal(literal)); literal = "" }
        }
        while index < characters.count {
            let character = characters[index]
            if character == "'" {
                index += 1
                while index < characters.count, characters[index] != "'" {
                    literal.append(characters[index])
                    index += 1
                }
                index += 1
                continue
            }
            let count = run(of: character)
            let token: Token?
            switch (character, count) {
            case ("y", 4...): token = .year4
            case ("y", 2): token = .year2
            case ("M", 2): token = .month
            case ("d", 2): token = .day
            case ("H", 2): token = .hour
            case ("m", 2): token = .minute
            case ("s", 2): token = .second
            case ("S", 3): token = .millisecond
            default: token = nil
            }
            if let token {
                flush()
                tokens.append(token)
                index += count
            } else {
                literal.append(character)
                index += 1
            }
        }
        flush()
        self.tokens = tokens
    }

    func string(from date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = Int((interval - interval.rounded(.down)) * 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        var output = ""
        for token in tokens {
            switch token {
            case .literal(let text): output += text
            case .year4: output += pad(Int(parts.tm_year) + 1900, 4)
            case .year2: output += pad((Int(parts.tm_year) + 1900) % 100, 2)
            case .month: output += pad(Int(parts.tm_mon) + 1, 2)
            case .day: output += pad(Int(parts.tm_mday), 2)
            case .hour: output += pad(Int(parts.tm_hour), 2)
            case .minute: output += pad(Int(parts.tm_min), 2)
            case .second: output += pad(Int(parts.tm_sec), 2)
            case .millisecond: output += pad(millis, 3)
            }
        }
        return output
    }
}
