// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// `set-header`: sets a header to a template's value, replacing any earlier values.
struct SetHeaderStep: Processor {
    let name: String
    let value: Template

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        exchange.message.headers[name] = try value.render(exchange.message)
        return .next(exchange)
    }
}

extension SetHeaderStep: StepKind {
    static let spec = StepSpec(
        "set-header",
        summary: "Sets a header, replacing earlier values.",
        fields: [
            Field("name", .string, required: true, "Header name."),
            Field("value", .template, required: true, "The value; a template."),
        ],
        example: "- set-header: { name: X-Region, value: \"${xpath:/order/@region}\" }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let name = compiler.headerName(fields["name"]), let value = compiler.template(fields["value"], scope: scope) else { return nil }
        return SetHeaderStep(name: name, value: value)
    }
}
