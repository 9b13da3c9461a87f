// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `route`: runs another route's steps on the message, as Camel's `direct:` does, and
/// continues with its result.
struct RouteStep: Processor {
    let target: String
    let directory: RouteDirectory

    func process(_ exchange: Exchange) async throws -> StepResult {
        guard let route = directory.route(target) else {
            throw ProcessingError("route '\(target)' is not loaded")
        }
        return .next(try await RouteDirectory.call(route, with: exchange), detail: "route '\(target)' done")
    }
}

extension RouteStep: StepKind {
    static let spec = StepSpec(
        "route",
        summary: "Runs another route's steps on the message and continues with its result.",
        fields: [Field("id", .string, required: true, "The id of the route to run.")],
        scalarField: "id",
        example: "- route: enrich-customer"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let node = fields["id"], let target = node.scalar, !target.isEmpty else { return nil }
        compiler.routeCalls.append((target, node.contentLocation))
        return RouteStep(target: target, directory: compiler.directory)
    }
}
