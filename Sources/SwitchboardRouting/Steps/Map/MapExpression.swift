// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// One compiled expression of a `map:` step.
indirect enum MapExpression: Sendable {
    /// `$.a.b` on the body, or `@.a` on the current `each` item: one match gives the
    /// value, none gives null, several give an array.
    case path(JSONPath, relative: Bool)
    case template(Template)
    case literal(JSONValue)
    case number(MapExpression)
    case upper(MapExpression)
    case lower(MapExpression)
    case concat([MapExpression])
    case substring(MapExpression, start: Int, length: Int?)
    case firstOf([MapExpression])
    case date(MapExpression, from: DateFormatterBox, to: DateFormatterBox)
    case each(JSONPath, relative: Bool, [MapTarget])
    /// A nested object of targets.
    case object([MapTarget])

    func evaluate(_ root: JSONValue, item: JSONValue?, message: Message) throws -> JSONValue {
        switch self {
        case .path(let path, let relative):
            let nodes = path.select(relative ? (item ?? .null) : root)
            return nodes.count == 1 ? nodes[0] : (nodes.isEmpty ? .null : .array(nodes))
        case .template(let template):
            return .string(try template.render(message))
        case .literal(let value):
            return value
        case .number(let inner):
            let value = try inner.evaluate(root, item: item, message: message)
            if case .number = value { return value }
            if case .null = value { return .null }
            guard let number = JSONNumber(loose: value.text.trimmingCharacters(in: .whitespaces)) else {
                throw ProcessingError("map: '\(value.text)' is not a number")
            }
            return .number(number)
        case .upper(let inner):
            return try inner.evaluate(root, item: item, message: message).mapText { $0.uppercased() }
        case .lower(let inner):
            return try inner.evaluate(root, item: item, message: message).mapText { $0.lowercased() }
        case .concat(let parts):
            return .string(try parts.map { part -> String in
                let value = try part.evaluate(root, item: item, message: message)
                if case .null = value { return "" }
                return value.text
            }.joined())
        case .substring(let inner, let start, let length):
            return try inner.evaluate(root, item: item, message: message).mapText { text in
                let characters = Array(text)
                let from = min(max(0, start), characters.count)
                let to = length.map { min(characters.count, from + max(0, $0)) } ?? characters.count
                return String(characters[from..<to])
            }
        case .firstOf(let options):
            for option in options {
                let value = try option.evaluate(root, item: item, message: message)
                if case .null = value { continue }
                if case .string(let text) = value, text.isEmpty { continue }
                return value
            }
            return .null
        case .date(let inner, let from, let to):
            let value = try inner.evaluate(root, item: item, message: message)
            if case .null = value { return .null }
            guard let date = from.formatter.date(from: value.text) else {
                throw ProcessingError("map: '\(value.text)' is not a date in the format '\(from.pattern)'")
            }
            return .string(to.formatter.string(from: date))
        case .object(let targets):
            return try MapTarget.build(targets, root: root, item: item, message: message)
        case .each(let path, let relative, let targets):
            let items = path.select(relative ? (item ?? .null) : root)
            return .array(try items.map { try MapTarget.build(targets, root: root, item: $0, message: message) })
        }
    }
}

extension JSONValue {
    /// Applies `transform` to the value as text; null stays null.
    func mapText(_ transform: (String) -> String) -> JSONValue {
        if case .null = self { return .null }
        return .string(transform(text))
    }
}

/// A date format, compiled once (DateFormatter is not Sendable, but is only read here).
final class DateFormatterBox: @unchecked Sendable {
    let pattern: String
    let formatter: DateFormatter

    init(_ pattern: String) {
        self.pattern = pattern
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = pattern
    }
}

/// A target path (`customer.name`) and the expression that fills it.
struct MapTarget: Sendable {
    let path: [String]
    let expression: MapExpression

    /// Builds the object `targets` describe, in their order.
    static func build(_ targets: [MapTarget], root: JSONValue, item: JSONValue?, message: Message) throws -> JSONValue {
        var result = JSONValue.object([])
        for target in targets {
            let value = try target.expression.evaluate(root, item: item, message: message)
            result = result.setting(target.path[...], to: value)
        }
        return result
    }
}

extension JSONValue {
    /// A copy with `value` at `path`, creating objects on the way.
    func setting(_ path: ArraySlice<String>, to value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        var members: [(key: String, value: JSONValue)] = []
        if case .object(let existing) = self { members = existing }
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = members[index].value.setting(path.dropFirst(), to: value)
        } else {
            members.append((key, JSONValue.object([]).setting(path.dropFirst(), to: value)))
        }
        return .object(members)
    }
}
