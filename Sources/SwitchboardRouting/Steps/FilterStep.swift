// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `filter`: the message filter. Messages that match run the filter's steps; the others
/// skip them. Either way the route goes on after the filter (use `stop` inside a `choice`
/// to drop messages).
struct FilterStep: Processor {
    let predicate: CompiledPredicate
    let pipeline: Pipeline
    /// Trace notes, written once at load.
    let matchedDetail: String
    let unmatchedDetail: String

    init(predicate: CompiledPredicate, pipeline: Pipeline) {
        self.predicate = predicate
        self.pipeline = pipeline
        self.matchedDetail = "matched: \(predicate.description)"
        self.unmatchedDetail = "not matched: \(predicate.description)"
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        guard try predicate.matches(exchange) else {
            return .next(exchange, detail: unmatchedDetail)
        }
        let result = try await pipeline.run(exchange)
        return StepResult(result.exchange, action: result.action, detail: matchedDetail)
    }
}

extension FilterStep: StepKind {
    static let spec = StepSpec(
        "filter",
        summary: "Message filter: runs its steps only for messages that match; the route goes on after it for all (Camel's semantics; drop a message with choice and stop).",
        fields: [Field("steps", .steps, required: true, "Steps for matching messages.")],
        inlinePredicate: true,
        example: """
        - filter:
            header: X-Priority
            equals: high
            steps: [ { wire-tap: "http://127.0.0.1:9003/alerts" } ]
        """
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        let predicate = compiler.compilePredicate(entries: step.predicate, at: step.location, scope: scope)
        let pipeline = fields["steps"].flatMap { compiler.compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
        guard let predicate, let pipeline else { return nil }
        return FilterStep(predicate: CompiledPredicate(root: predicate), pipeline: pipeline)
    }
}
