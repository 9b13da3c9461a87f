// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

// The `map` step: targets and their expressions.
extension RouteCompiler {
    /// `map: { fields: {…} }` or `map: { file: F }`.
    func buildMap(_ fields: [String: ConfigNode], scope: RouteScope, at location: SourceLocation) -> (any Processor)? {
        var targetsNode = fields["fields"]
        if let fileNode = fields["file"], let file = fileNode.scalar {
            guard targetsNode == nil else {
                log.error(fileNode.location, "'map' takes 'fields' or 'file', not both")
                return nil
            }
            guard let path = mappingsPath(file, at: fileNode.contentLocation, what: "map file") else { return nil }
            do {
                targetsNode = try ConfigNode.load(path: path, displayName: path)
            } catch let error as ConfigurationError {
                log.append(contentsOf: error.diagnostics)
                return nil
            } catch {
                log.error(fileNode.contentLocation, "map file '\(file)' cannot be read: \(error)")
                return nil
            }
        }
        guard let targetsNode else {
            log.error(location, "'map' needs 'fields' (targets and expressions) or 'file'")
            return nil
        }
        guard let targets = compileMapTargets(targetsNode, scope: scope) else { return nil }
        return MapStep(targets: targets)
    }

    func compileMapTargets(_ node: ConfigNode, scope: RouteScope) -> [MapTarget]? {
        guard let pairs = node.mapping else {
            log.error(node.location, "a map is a mapping of target paths to expressions, found \(node.kindDescription)")
            return nil
        }
        var targets: [MapTarget] = []
        var failed = false
        for pair in pairs {
            let path = pair.key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                log.error(pair.keyNode.location, "target '\(pair.key)' has an empty part; write paths as a.b.c")
                failed = true
                continue
            }
            guard let expression = compileMapExpression(pair.value, scope: scope) else {
                failed = true
                continue
            }
            targets.append(MapTarget(path: path, expression: expression))
        }
        return failed ? nil : targets
    }

    func compileMapExpression(_ node: ConfigNode, scope: RouteScope) -> MapExpression? {
        if node.isNull { return .literal(.null) }
        if let text = node.scalar {
            if text.contains("${") {
                return template(node, scope: scope).map(MapExpression.template)
            }
            if text.hasPrefix("$") || text.hasPrefix("@") {
                let relative = text.hasPrefix("@")
                do {
                    return .path(try JSONPath(relative ? "$" + text.dropFirst() : text), relative: relative)
                } catch let error as JSONPathError {
                    log.error(node.contentLocation.advanced(by: error.offset), "invalid JSONPath '\(text)': \(error.message)")
                    return nil
                } catch {
                    log.error(node.contentLocation, "invalid JSONPath '\(text)': \(error)")
                    return nil
                }
            }
            return .literal(.string(text))
        }
        guard let entries = node.mapping, let first = entries.first else {
            log.error(node.location, "a map expression is a JSONPath, a template, a literal or a function such as { upper: \"$.name\" }")
            return nil
        }
        let arguments = first.value
        func list() -> [ConfigNode]? {
            guard let items = arguments.sequence else {
                log.error(arguments.location, "'\(first.key)' takes a list, as in \(first.key): [\"$.a\", \"$.b\"]")
                return nil
            }
            return items
        }
        switch first.key {
        case "literal":
            guard let text = arguments.scalar else { return .literal(.null) }
            return .literal((try? JSONValue(parsing: text)) ?? .string(text))
        case "number":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.number)
        case "upper":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.upper)
        case "lower":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.lower)
        case "concat", "default":
            guard let items = list() else { return nil }
            let parts = items.compactMap { compileMapExpression($0, scope: scope) }
            guard parts.count == items.count else { return nil }
            return first.key == "concat" ? .concat(parts) : .firstOf(parts)
        case "substring":
            guard let items = list() else { return nil }
            let length = items.count == 3 ? items[2].scalar.flatMap { Int($0) } : nil
            guard (2...3).contains(items.count), let start = items[1].scalar.flatMap({ Int($0) }),
                  items.count == 2 || length != nil else {
                log.error(arguments.location, "'substring' takes [expression, start, length], start and length as numbers")
                return nil
            }
            guard let inner = compileMapExpression(items[0], scope: scope) else { return nil }
            return .substring(inner, start: start, length: length)
        case "date":
            let options = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let from = options["from"]?.scalar, let to = options["to"]?.scalar else {
                log.error(node.location, "'date' takes { date: EXPRESSION, from: PATTERN, to: PATTERN }, such as from: yyyy-MM-dd")
                return nil
            }
            guard let inner = compileMapExpression(arguments, scope: scope) else { return nil }
            return .date(inner, from: DateFormatterBox(from), to: DateFormatterBox(to))
        case "each":
            let options = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let text = arguments.scalar, text.hasPrefix("$") || text.hasPrefix("@"), let inner = options["map"] else {
                log.error(node.location, "'each' takes { each: JSONPATH, map: { target: expression, … } }")
                return nil
            }
            let relative = text.hasPrefix("@")
            guard let path = try? JSONPath(relative ? "$" + text.dropFirst() : text) else {
                log.error(arguments.contentLocation, "invalid JSONPath '\(text)'")
                return nil
            }
            guard let targets = compileMapTargets(inner, scope: scope) else { return nil }
            return .each(path, relative: relative, targets)
        default:
            let known = ["literal", "number", "upper", "lower", "concat", "default", "substring", "date", "each", "map", "from", "to"]
            // A mapping of plain names is a nested object of targets.
            if entries.allSatisfy({ !known.contains($0.key) }), entries.count > 1 || closestMatch(to: first.key, in: known) == nil {
                return compileMapTargets(node, scope: scope).map(MapExpression.object)
            }
            log.error(first.keyNode.location, unknownKeyMessage(first.key, what: "map function", known: Array(known.prefix(9))))
            return nil
        }
    }
}
