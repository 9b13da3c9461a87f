// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// `set-body`: replaces the body with a template's value, optionally setting its content type.
struct SetBodyStep: Processor {
    let value: Template
    let contentType: String?

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        if !value.isBodyOnly {
            exchange.message.body = ByteBuffer(string: try value.render(exchange.message))
        }
        if let contentType {
            exchange.message.contentType = contentType
        }
        return .next(exchange)
    }
}

extension SetBodyStep: StepKind {
    static let spec = StepSpec(
        "set-body",
        summary: "Replaces the body.",
        fields: [
            Field("value", .template, required: true, "The new body; a template."),
            Field("content-type", .string, "Content type of the new body."),
        ],
        scalarField: "value",
        example: "- set-body: { value: '{\"status\":\"accepted\",\"id\":\"${id}\"}', content-type: application/json }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let value = compiler.template(fields["value"], scope: scope) else { return nil }
        return SetBodyStep(value: value, contentType: fields["content-type"]?.scalar)
    }
}
