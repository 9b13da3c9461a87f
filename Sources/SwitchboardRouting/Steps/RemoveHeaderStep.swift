// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// `remove-header`: removes a header, or every header starting with a prefix (`X-Internal-*`).
struct RemoveHeaderStep: Processor {
    enum Selection: Sendable {
        case name(String)
        case prefix(String)
    }

    let selection: Selection

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        switch selection {
        case .name(let name):
            exchange.message.headers.remove(name)
        case .prefix(let prefix):
            exchange.message.headers.removeAll { field in
                field.name.utf8.count >= prefix.utf8.count && field.name.prefix(prefix.count).equalsIgnoringASCIICase(prefix)
            }
        }
        return .next(exchange)
    }
}

extension RemoveHeaderStep: StepKind {
    static let spec = StepSpec(
        "remove-header",
        summary: "Removes a header, or every header starting with a prefix written with a final '*'.",
        fields: [Field("name", .string, required: true, "Header name, or a prefix ending in '*' (X-Internal-*).")],
        scalarField: "name",
        example: "- remove-header: X-Internal-*"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let name = compiler.headerName(fields["name"], allowPrefix: true) else { return nil }
        if name.hasSuffix("*") {
            return RemoveHeaderStep(selection: .prefix(String(name.dropLast())))
        }
        return RemoveHeaderStep(selection: .name(name))
    }
}
