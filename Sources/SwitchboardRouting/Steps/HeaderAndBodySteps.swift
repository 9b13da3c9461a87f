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

/// `stop`: ends the route for this message; the message as it is becomes the route's result.
struct StopStep: Processor {
    func process(_ exchange: Exchange) async throws -> StepResult {
        .stop(exchange, detail: "stopped")
    }
}
