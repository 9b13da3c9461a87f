// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `to`: sends the message to an endpoint and continues with the reply.
struct ToStep: Processor {
    let producer: any Producer

    func process(_ exchange: Exchange) async throws -> StepResult {
        let reply = try await producer.send(exchange)
        return .next(reply, detail: producer.describeReply(reply))
    }
}

extension ToStep: StepKind {
    static let spec = StepSpec(
        "to",
        summary: "Sends the message to an endpoint and continues with the reply.",
        fields: [Field("uri", .uri, required: true, "Endpoint URI. Other keys of the mapping are endpoint options, but 'headers': { include: [names], exclude: [names] } (with * for any characters) chooses the headers sent; the node's own dotted ones never are.")],
        scalarField: "uri",
        endpointOptions: true,
        example: "- to: \"http://127.0.0.1:9001/orders?connectTimeout=2s\""
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        compiler.producer(for: step, info: &info).map { ToStep(producer: $0) }
    }
}
