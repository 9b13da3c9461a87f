// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform
import Synchronization

/// `multicast`: sends a copy of the message down every branch (each step of its `steps` is
/// one branch), in parallel by default, and combines the replies. Each copy is a child
/// message: new id, this message as parent.
struct MulticastStep: Processor {
    let branches: [Pipeline]
    let parallel: Bool
    let aggregation: Aggregation
    let timeout: Duration?

    func process(_ exchange: Exchange) async throws -> StepResult {
        let results: [Exchange]
        if let timeout {
            results = try await withDeadline(timeout) { try await self.runBranches(exchange) }
        } else {
            results = try await runBranches(exchange)
        }
        return .next(aggregation.combine(original: exchange, results: results), detail: "\(results.count) replies")
    }

    private func runBranches(_ exchange: Exchange) async throws -> [Exchange] {
        let copies = branches.map { _ in
            Exchange(message: exchange.message.makeChild(body: exchange.message.body), pattern: exchange.pattern)
        }
        guard parallel else {
            var results: [Exchange] = []
            for (branch, copy) in zip(branches, copies) {
                results.append(try await branch.run(copy).exchange)
            }
            return results
        }
        return try await withThrowingTaskGroup(of: (Int, Exchange).self) { group in
            for (index, (branch, copy)) in zip(branches, copies).enumerated() {
                group.addTask { (index, try await branch.run(copy).exchange) }
            }
            var results = [Exchange?](repeating: nil, count: branches.count)
            for try await (index, result) in group {
                results[index] = result
            }
            return results.compactMap { $0 }
        }
    }
}

extension MulticastStep: StepKind {
    static let spec = StepSpec(
        "multicast",
        summary: "Sends a copy down every branch (each step is one branch), in parallel by default, and combines the replies.",
        fields: [
            Field("steps", .steps, required: true, "One step per branch, such as several 'to' steps."),
            Field("parallel", .boolean, default: "true", "Run the branches at the same time."),
            Field("aggregate", .choice(Aggregation.allCases.map(\.rawValue)), default: "json-array", "How replies are combined."),
            Field("timeout", .duration, "Fail the step if the branches take longer than this."),
        ],
        listField: "steps",
        example: """
        - multicast:
            aggregate: json-array
            steps:
              - to: "http://127.0.0.1:9001/quote"
              - to: "http://127.0.0.1:9002/quote"
        """
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let stepsNode = fields["steps"], let items = stepsNode.sequence else { return nil }
        var branches: [Pipeline] = []
        for (position, item) in items.enumerated() {
            guard let branch = compiler.compileStep(item, scope: scope, path: "\(info.path).\(position)") else { continue }
            branches.append(Pipeline(steps: [branch], observers: compiler.observers, retry: scope.retry))
        }
        guard branches.count == items.count else { return nil }
        if branches.isEmpty {
            compiler.log.error(stepsNode.location, "'multicast' needs at least one branch")
            return nil
        }
        return MulticastStep(
            branches: branches,
            parallel: parseBool(fields["parallel"]?.scalar) ?? true,
            aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .jsonArray,
            timeout: fields["timeout"]?.scalar.flatMap { parseDuration($0) }
        )
    }
}

/// Runs `body`, failing with a timeout error if it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let value = try await firstWithin(limit, body) else {
        throw ProcessingError("timed out after \(formatDuration(limit))", status: 504, kind: ErrorKind.timeout)
    }
    return value
}
