// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import Yams

/// `choice`: the content-based router. Runs the steps of the first `when` whose predicate
/// holds, else the `otherwise` steps, else nothing. The body is parsed at most once for
/// all the predicates.
struct ChoiceStep: Processor {
    struct Branch: Sendable {
        let predicate: CompiledPredicate
        let pipeline: Pipeline
        /// The trace note when this branch is taken, written once at load.
        let detail: String

        init(index: Int, predicate: CompiledPredicate, pipeline: Pipeline) {
            self.predicate = predicate
            self.pipeline = pipeline
            self.detail = "when[\(index)] matched: \(predicate.description)"
        }
    }

    let branches: [Branch]
    let otherwise: Pipeline?

    func process(_ exchange: Exchange) async throws -> StepResult {
        var view = BodyView(exchange.message)
        for branch in branches where try branch.predicate.matches(&view) {
            let result = try await branch.pipeline.run(exchange)
            return StepResult(result.exchange, action: result.action, detail: branch.detail)
        }
        guard let otherwise else {
            return .next(exchange, detail: "no branch matched")
        }
        let result = try await otherwise.run(exchange)
        return StepResult(result.exchange, action: result.action, detail: "otherwise (no when matched)")
    }
}

extension ChoiceStep: StepKind {
    static let spec = StepSpec(
        "choice",
        summary: "Content-based router: runs the steps of the first 'when' that holds, else 'otherwise'.",
        fields: [Field("branches", .branches, required: true, "A list of { when: PREDICATE, steps: [...] } and at most one final { otherwise: [...] }.")],
        listField: "branches",
        example: """
        - choice:
            - when: { header: X-Region, equals: EU }
              steps: [ { to: "http://127.0.0.1:9001/orders" } ]
            - otherwise:
                - to: "http://127.0.0.1:9002/orders"
        """
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let branchesNode = fields["branches"] else { return nil }
        return compiler.buildChoice(branchesNode, scope: scope, path: info.path)
    }
}

extension RouteCompiler {
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
