// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// `stop`: ends the route for this message; the message as it is becomes the route's result.
struct StopStep: Processor {
    func process(_ exchange: Exchange) async throws -> StepResult {
        .stop(exchange, detail: "stopped")
    }
}

extension StopStep: StepKind {
    static let spec = StepSpec(
        "stop",
        summary: "Ends the route for this message; the message as it is becomes the route's result.",
        fields: [],
        example: "- stop: {}"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        return StopStep()
    }
}
