// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// A GitHub-flavoured Markdown table, for the reference tables the README shows and the
/// commands print (`schema --markdown`, `adapters --markdown`).
public struct MarkdownTable: Sendable {
    public let header: [String]
    public private(set) var rows: [[String]] = []

    public init(_ header: String...) {
        self.header = header
    }

    public mutating func add(_ cells: String...) {
        rows.append(cells)
    }

    /// Text as code: `` `text` ``.
    public static func code(_ text: String) -> String {
        text.contains("`") ? "`` \(text) ``" : "`\(text)`"
    }

    public var text: String {
        func line(_ cells: [String]) -> String {
            "| " + cells.map(Self.escape).joined(separator: " | ") + " |"
        }
        return ([line(header), "|" + String(repeating: " --- |", count: header.count)] + rows.map(line)).joined(separator: "\n")
    }

    /// A cell's text on one line, with the table's separator escaped.
    static func escape(_ cell: String) -> String {
        var text = ""
        for character in cell {
            switch character {
            case "\n": text += " "
            case "|": text += "\\|"
            default: text.append(character)
            }
        }
        return text
    }
}
