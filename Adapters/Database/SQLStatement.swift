// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// An SQL statement with named parameters, taken apart once when a route loads.
///
/// `:name` binds a value by name (a field of a JSON body, else a header); `:${…}` binds a
/// template's value (`:${json:$.amount}`, `:${header.X-ID}`). Values are always bound as
/// parameters, never spliced into the text. Quoted strings ('…'), quoted names ("…"),
/// comments and casts (`::int`) are left alone.
public struct SQLStatement: Sendable, Equatable {
    public enum Parameter: Sendable, Equatable {
        /// `:name`.
        case name(String)
        /// `:${…}`: the template's text, placeholder braces included, and its position
        /// among the statement's templates (from 0).
        case template(String, index: Int)
    }

    /// The text between parameters: `pieces.count == parameters.count + 1`.
    public let pieces: [String]
    public let parameters: [Parameter]

    /// - Throws: ``EndpointError`` with the offset of an unfinished `:${`.
    public init(_ text: String) throws {
        var pieces: [String] = []
        var parameters: [Parameter] = []
        var current = ""
        let characters = Array(text)
        var index = 0
        var templates = 0
        func isNameStart(_ c: Character) -> Bool { c == "_" || (c.isASCII && c.isLetter) }
        func isNamePart(_ c: Character) -> Bool { isNameStart(c) || (c.isASCII && c.isNumber) }
        while index < characters.count {
            let c = characters[index]
            switch c {
            case "'", "\"":
                // A quoted string or name, with doubled quotes inside.
                current.append(c)
                index += 1
                while index < characters.count {
                    current.append(characters[index])
                    if characters[index] == c {
                        if index + 1 < characters.count, characters[index + 1] == c {
                            current.append(c)
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                index += 1
            case "-" where index + 1 < characters.count && characters[index + 1] == "-":
                while index < characters.count, characters[index] != "\n" {
                    current.append(characters[index])
                    index += 1
                }
            case ":" where index + 1 < characters.count && characters[index + 1] == ":":
                current += "::"
                index += 2
            case ":" where index + 2 < characters.count && characters[index + 1] == "$" && characters[index + 2] == "{":
                var depth = 0
                var end = index + 1
                while end < characters.count {
                    if characters[end] == "{" { depth += 1 }
                    if characters[end] == "}" {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    end += 1
                }
                guard end < characters.count else {
                    throw EndpointError("the parameter ':${' has no closing '}'", offset: index)
                }
                pieces.append(current)
                current = ""
                parameters.append(.template(String(characters[(index + 1)...end]), index: templates))
                templates += 1
                index = end + 1
            case ":" where index + 1 < characters.count && isNameStart(characters[index + 1]):
                var end = index + 1
                while end < characters.count, isNamePart(characters[end]) { end += 1 }
                pieces.append(current)
                current = ""
                parameters.append(.name(String(characters[(index + 1)..<end])))
                index = end
            default:
                current.append(c)
                index += 1
            }
        }
        pieces.append(current)
        self.pieces = pieces
        self.parameters = parameters
    }

    /// The template parameters' texts, in order.
    public var templateTexts: [String] {
        parameters.compactMap { if case .template(let text, _) = $0 { text } else { nil } }
    }

    /// The statement with parameters written as `placeholder(n)` (n from 1): `$n` for
    /// PostgreSQL, `?` for SQLite.
    public func text(placeholder: (Int) -> String) -> String {
        var text = pieces[0]
        for (offset, piece) in pieces.dropFirst().enumerated() {
            text += placeholder(offset + 1) + piece
        }
        return text
    }
}

extension SQLStatement {
    /// The option type of SQL statements: checked at load, each `:${…}` parameter a template.
    struct Format: OptionFormat {
        var name: String { "SQL statement" }

        func templates(in value: String) throws -> [String] {
            try SQLStatement(value).templateTexts
        }
    }

    static let format = Format()
}
