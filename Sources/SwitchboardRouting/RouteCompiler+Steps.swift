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

    /// The parts of one step after the generic checks: its kind, its fields, and any
    /// predicate keys or endpoint options written beside them.
    struct StepNode {
        let spec: StepSpec
        let keyNode: ConfigNode
        var fields: [String: ConfigNode] = [:]
        var predicate: [(key: String, keyNode: ConfigNode, value: ConfigNode)] = []
        var options: ConfigNode?

        var location: SourceLocation { keyNode.location }
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
        guard let spec = StepSpec.named(kind) else {
            log.error(keyNode.location, unknownKeyMessage(kind, what: "step", known: StepSpec.all.map(\.name)))
            return nil
        }
        var step = StepNode(spec: spec, keyNode: keyNode)
        guard readFields(value, into: &step) else { return nil }
        let index = scope.nextIndex
        scope.nextIndex += 1
        var info = StepInfo(routeID: scope.routeID, index: index, path: path, kind: kind, location: keyNode.location)
        guard let processor = build(step, scope: scope, info: &info) else { return nil }
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

    // MARK: Building steps

    func build(_ step: StepNode, scope: RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        switch step.spec.name {
        case "log":
            guard let message = template(fields["message"], scope: scope) else { return nil }
            let level = fields["level"]?.scalar.flatMap(Logger.Level.init(rawValue:)) ?? .info
            var stepLogger = logger
            stepLogger[metadataKey: "route"] = "\(scope.routeID)"
            return LogStep(message: message, level: level, logger: stepLogger)

        case "set-header":
            guard let name = headerName(fields["name"]), let value = template(fields["value"], scope: scope) else { return nil }
            return SetHeaderStep(name: name, value: value)

        case "remove-header":
            guard let name = headerName(fields["name"], allowPrefix: true) else { return nil }
            if name.hasSuffix("*") {
                return RemoveHeaderStep(selection: .prefix(String(name.dropLast())))
            }
            return RemoveHeaderStep(selection: .name(name))

        case "set-body":
            guard let value = template(fields["value"], scope: scope) else { return nil }
            return SetBodyStep(value: value, contentType: fields["content-type"]?.scalar)

        case "xslt":
            var stepLogger = logger
            stepLogger[metadataKey: "route"] = "\(scope.routeID)"
            stepLogger[metadataKey: "step"] = "\(info.path)"
            return buildXSLT(fields, scope: scope, at: step.location)?.logging(to: stepLogger)

        case "map":
            return buildMap(fields, scope: scope, at: step.location)

        case "xml-to-json":
            let arrays = Set(fields["arrays"]?.sequence?.compactMap(\.scalar) ?? [])
            return XMLToJSONStep(arrays: arrays)

        case "json-to-xml":
            return JSONToXMLStep()

        case "validate":
            return buildValidate(fields, at: step.location)

        case "choice":
            guard let branchesNode = fields["branches"] else { return nil }
            return buildChoice(branchesNode, scope: scope, path: info.path)

        case "filter":
            let predicate = compilePredicate(entries: step.predicate, at: step.location, scope: scope)
            let pipeline = fields["steps"].flatMap { compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
            guard let predicate, let pipeline else { return nil }
            return FilterStep(predicate: CompiledPredicate(root: predicate), pipeline: pipeline)

        case "to", "wire-tap":
            guard let producer = producer(for: step, info: &info) else { return nil }
            if step.spec.name == "to" {
                return ToStep(producer: producer)
            }
            let logger = self.logger
            return WireTapStep(producer: producer, info: info, background: background, observers: observers) { failure in
                logger.warning("wire-tap copy failed", metadata: ["route": "\(failure.step.routeID)", "message-id": "\(failure.messageID)", "error": "\(failure)"])
            }

        case "multicast":
            guard let stepsNode = fields["steps"], let items = stepsNode.sequence else { return nil }
            var branches: [Pipeline] = []
            for (position, item) in items.enumerated() {
                guard let branch = compileStep(item, scope: scope, path: "\(info.path).\(position)") else { continue }
                branches.append(Pipeline(steps: [branch], observers: observers, retry: scope.retry))
            }
            guard branches.count == items.count else { return nil }
            if branches.isEmpty {
                log.error(stepsNode.location, "'multicast' needs at least one branch")
                return nil
            }
            return MulticastStep(
                branches: branches,
                parallel: parseBool(fields["parallel"]?.scalar) ?? true,
                aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .jsonArray,
                timeout: fields["timeout"]?.scalar.flatMap { parseDuration($0) }
            )

        case "split":
            var source: SplitStep.Source?
            if let node = fields["xpath"] {
                source = xpath(node, scope: scope).map { .xpath($0) }
            } else if let node = fields["jsonpath"] {
                source = jsonpath(node).map { .jsonpath($0) }
            } else if let node = fields["lines"] {
                if parseBool(node.scalar) == true {
                    source = .lines
                } else {
                    log.error(node.contentLocation, "'lines' must be true to split by lines")
                }
            } else if let node = fields["fixed-width"] {
                source = fixedWidthSource(node, path: fields["path"], at: step.location)
            }
            let pipeline = fields["steps"].flatMap { compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
            var rejects: (any Producer, String)?
            if let node = fields["rejects"] {
                guard let (endpoint, adapter) = resolveEndpoint(node, role: .producer, what: "rejects") else { return nil }
                do {
                    rejects = (try adapter.makeProducer(endpoint), endpoint.description)
                    if endpoint.scheme == DirectAdapter.scheme { directCalls.append((endpoint.path, node.contentLocation)) }
                } catch {
                    log.error(node.contentLocation, "\(error)")
                    return nil
                }
            }
            guard let source, let pipeline else { return nil }
            return SplitStep(
                source: source,
                pipeline: pipeline,
                aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .original,
                parallel: parseBool(fields["parallel"]?.scalar) ?? false,
                rejects: rejects,
                info: info
            )

        case "idempotent":
            guard let key = template(fields["key"], scope: scope) else { return nil }
            let ttl = fields["ttl"]?.scalar.flatMap { parseDuration($0) } ?? .seconds(86_400)
            let keyScope = fields["scope"]?.scalar ?? scope.routeID
            if let store = state.idempotency {
                return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: store)
            }
            if state.checkOnly {
                return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: UnavailableStateStore())
            }
            log.error(step.location, "'idempotent' keeps its keys in the node's state store, and this node has none")
            return nil

        case "route":
            guard let node = fields["id"], let target = node.scalar, !target.isEmpty else { return nil }
            routeCalls.append((target, node.contentLocation))
            return RouteCallStep(target: target, directory: directory)

        case "stop":
            return StopStep()

        default:
            log.error(step.location, "step '\(step.spec.name)' is declared but has no builder")
            return nil
        }
    }

    func buildChoice(_ node: ConfigNode, scope: RouteScope, path: String) -> (any Processor)? {
        guard let items = node.sequence, !items.isEmpty else {
            log.error(node.location, "'choice' needs a list of '- when: …' branches")
            return nil
        }
        var branches: [ChoiceStep.Branch] = []
        var otherwise: Pipeline?
        var failed = false
        for (position, item) in items.enumerated() {
            guard let entries = item.mapping else {
                log.error(item.location, "a choice branch is '- when: PREDICATE' with 'steps:', or '- otherwise: [steps]'; found \(item.kindDescription)")
                failed = true
                continue
            }
            if let otherwiseNode = item["otherwise"] {
                if entries.count > 1 {
                    log.error(item.location, "'otherwise' stands alone in its branch; put its steps under it")
                    failed = true
                }
                if position != items.count - 1 {
                    log.error(item.location, "'otherwise' must be the last branch of a choice")
                    failed = true
                }
                otherwise = compileSteps(otherwiseNode, scope: scope, pathPrefix: "\(path).otherwise.")
                if otherwise == nil { failed = true }
                continue
            }
            guard let when = item["when"] else {
                log.error(item.location, "a choice branch needs 'when' (or is the final 'otherwise')")
                failed = true
                continue
            }
            for entry in entries where entry.key != "when" && entry.key != "steps" {
                log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "key", of: "a 'when' branch", known: ["when", "steps"]))
                failed = true
            }
            let branchIndex = branches.count
            let predicate = compilePredicate(node: when, scope: scope)
            var pipeline: Pipeline?
            if let steps = item["steps"] {
                pipeline = compileSteps(steps, scope: scope, pathPrefix: "\(path).when[\(branchIndex)].")
            } else {
                log.error(item.location, "this 'when' branch has no 'steps'")
            }
            guard let predicate, let pipeline else {
                failed = true
                continue
            }
            branches.append(ChoiceStep.Branch(index: branchIndex, predicate: CompiledPredicate(root: predicate), pipeline: pipeline))
        }
        guard !failed else { return nil }
        return ChoiceStep(branches: branches, otherwise: otherwise)
    }
}
