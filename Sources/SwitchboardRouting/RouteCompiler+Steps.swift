// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import Yams
import SwitchboardCore
import SwitchboardTransform

// Step lists: each step's fields checked against its spec, then built into its processor.
extension RouteCompiler {
    // MARK: Steps

    func compileSteps(_ node: ConfigNode, scope: RouteScope, pathPrefix: String) -> Pipeline? {
        if node.isNull { return Pipeline(steps: [], observers: observers, retry: scope.retry) }
        guard let items = node.sequence else {
            log.error(node.location, "expected a list of steps ('- to: …'), found \(node.kindDescription)")
            return nil
        }
        var steps: [CompiledStep] = []
        var failed = false
        for (position, item) in items.enumerated() {
            if let step = compileStep(item, scope: scope, path: pathPrefix + String(position)) {
                steps.append(step)
            } else {
                failed = true
            }
        }
        guard !failed else { return nil }
        // An idempotent step holds the steps after it, so it can give up its claim when they fail.
        var tail: [CompiledStep] = []
        for step in steps.reversed() {
            if let pending = step.processor as? PendingIdempotentStep {
                let rest = Pipeline(steps: tail, observers: observers, retry: scope.retry)
                tail = [CompiledStep(info: step.info, processor: pending.wrapping(rest))]
            } else {
                tail.insert(step, at: 0)
            }
        }
        return Pipeline(steps: tail, observers: observers, retry: scope.retry)
    }

    func compileStep(_ node: ConfigNode, scope: RouteScope, path: String) -> CompiledStep? {
        guard let entries = node.mapping, !entries.isEmpty else {
            log.error(node.location, "expected a step such as '- to: http://…', found \(node.kindDescription)")
            return nil
        }
        guard entries.count == 1 else {
            let keys = entries.map { "'\($0.key)'" }.joined(separator: ", ")
            log.error(node.location, "a step is a mapping with one key, the step kind; found \(keys) (is a '-' missing, or is the indentation off?)")
            return nil
        }
        let (kind, keyNode, value) = entries[0]
        guard let kindType = StepKinds.named(kind) else {
            log.error(keyNode.location, unknownKeyMessage(kind, what: "step", known: StepSpec.all.map(\.name)))
            return nil
        }
        var step = StepNode(spec: kindType.spec, keyNode: keyNode)
        guard readFields(value, into: &step) else { return nil }
        let index = scope.nextIndex
        scope.nextIndex += 1
        var info = StepInfo(routeID: scope.routeID, index: index, path: path, kind: kind, location: keyNode.location)
        guard let processor = kindType.compile(step, compiler: self, scope: scope, info: &info) else { return nil }
        return CompiledStep(info: info, processor: processor)
    }

    /// Sorts a step's value into fields, predicate keys and endpoint options, and checks
    /// the keys, the required fields and the simple value types.
    func readFields(_ value: ConfigNode, into step: inout StepNode) -> Bool {
        let spec = step.spec
        let errorsBefore = log.diagnostics.count
        if let entries = value.mapping {
            var options: [(Yams.Node, Yams.Node)] = []
            for entry in entries {
                if spec.field(entry.key) != nil {
                    step.fields[entry.key] = entry.value
                } else if spec.inlinePredicate, StepSpec.predicateKeys.contains(entry.key) {
                    step.predicate.append(entry)
                } else if spec.endpointOptions {
                    options.append((entry.keyNode.node, entry.value.node))
                } else {
                    var known = spec.fields.map(\.name)
                    if spec.inlinePredicate { known += StepSpec.predicateKeys }
                    log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "option", of: "step '\(spec.name)'", known: known))
                }
            }
            if !options.isEmpty { step.options = value }
        } else if value.sequence != nil {
            guard let listField = spec.listField else {
                log.error(value.location, "'\(spec.name)' takes \(shapeDescription(spec)), not a list")
                return false
            }
            step.fields[listField] = value
        } else if !value.isNull {
            guard let scalarField = spec.scalarField else {
                if spec.fields.isEmpty, ["true", "yes", "on"].contains(value.scalar ?? "") { return true }
                log.error(value.location, "'\(spec.name)' takes \(shapeDescription(spec)), not a single value")
                return false
            }
            step.fields[scalarField] = value
        }
        for field in spec.fields where field.required && step.fields[field.name] == nil {
            log.error(step.location, "step '\(spec.name)' needs '\(field.name)': \(field.doc)")
        }
        if !spec.oneOf.isEmpty {
            let given = spec.oneOf.filter { step.fields[$0] != nil }
            if given.count != 1 {
                log.error(step.location, "step '\(spec.name)' needs exactly one of \(spec.oneOf.map { "'\($0)'" }.joined(separator: ", "))\(given.count > 1 ? "; found \(given.joined(separator: ", "))" : "")")
            }
        }
        if spec.inlinePredicate && step.predicate.isEmpty {
            log.error(step.location, "step '\(spec.name)' needs a predicate, such as 'header: X-Type, equals: order'")
        }
        for (name, node) in step.fields {
            guard let field = spec.field(name) else { continue }
            checkType(of: node, as: field)
        }
        return log.diagnostics.count == errorsBefore
    }

    func shapeDescription(_ spec: StepSpec) -> String {
        if let scalar = spec.scalarField { return "a \(scalar) or a mapping" }
        if let list = spec.listField { return "a list of \(list) or a mapping" }
        return "a mapping with \(spec.fields.map { "'\($0.name)'" }.joined(separator: ", "))"
    }

    func checkType(of node: ConfigNode, as field: StepSpec.Field) {
        let name = field.name
        switch field.type {
        case .string, .template, .uri, .xpath, .jsonpath:
            if node.scalar == nil {
                log.error(node.location, "'\(name)' expects a single value, found \(node.kindDescription)")
            }
        case .boolean:
            if parseBool(node.scalar) == nil {
                log.error(node.contentLocation, "'\(name)' expects true or false, found \(node.kindDescription)")
            }
        case .duration:
            if node.scalar.flatMap({ parseDuration($0) }) == nil {
                log.error(node.contentLocation, "'\(name)' expects a duration such as 500ms, 5s or 2m, found \(node.kindDescription)")
            }
        case .choice(let words):
            if let value = node.scalar, words.contains(value) { return }
            log.error(node.contentLocation, "'\(name)' expects one of \(words.joined(separator: ", ")), found \(node.kindDescription)")
        case .steps, .branches:
            if node.sequence == nil, !node.isNull {
                log.error(node.location, "'\(name)' expects a list, found \(node.kindDescription)")
            }
        case .stringList:
            if node.sequence.map({ $0.allSatisfy { $0.scalar != nil } }) != true {
                log.error(node.location, "'\(name)' expects a list of strings, found \(node.kindDescription)")
            }
        case .sla, .onError, .templateMap, .mapping:
            if node.mapping == nil {
                log.error(node.location, "'\(name)' expects a mapping, found \(node.kindDescription)")
            }
        }
    }
}
