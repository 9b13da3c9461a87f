// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// `log`: writes a line to the node's log. The message is a template.
struct LogStep: Processor {
    let message: Template
    let level: Logger.Level
    let logger: Logger

    func process(_ exchange: Exchange) async throws -> StepResult {
        guard logger.logLevel <= level else { return .next(exchange) }
        let text = try message.render(exchange.message)
        logger.log(level: level, "\(text)", metadata: [
            "message-id": "\(exchange.message.id)",
            "correlation-id": "\(exchange.message.correlationID)",
        ])
        return .next(exchange)
    }
}

extension LogStep: StepKind {
    static let spec = StepSpec(
        "log",
        summary: "Writes a line to the node's log.",
        fields: [
            Field("message", .template, required: true, "The text; a template."),
            Field("level", .choice(["trace", "debug", "info", "notice", "warning", "error"]), default: "info", "Log level."),
        ],
        scalarField: "message",
        example: "- log: \"order ${header.X-Order-ID} from ${header.X-Region}\""
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let message = compiler.template(fields["message"], scope: scope) else { return nil }
        let level = fields["level"]?.scalar.flatMap(Logger.Level.init(rawValue:)) ?? .info
        var stepLogger = compiler.logger
        stepLogger[metadataKey: "route"] = "\(scope.routeID)"
        return LogStep(message: message, level: level, logger: stepLogger)
    }
}
