// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import SwitchboardCore

/// `wire-tap`: sends a copy of the message to an endpoint without waiting; the route goes
/// on with the original at once. The copy is a child message (new id, this message as
/// parent) whose outcome is reported to observers and, on failure, logged.
struct WireTapStep: Processor {
    let producer: any Producer
    let info: StepInfo
    let background: BackgroundWork
    let observers: ObserverSet
    let reportFailure: @Sendable (StepFailure) -> Void

    func process(_ exchange: Exchange) async throws -> StepResult {
        var copy = exchange
        copy.message = exchange.message.makeChild(body: exchange.message.body)
        copy.pattern = .inOnly
        let child = copy
        background.submit { [producer, info, observers, reportFailure] in
            let start = ContinuousClock.now
            await observers.recordStepStart(ExchangeEvent(phase: .started, message: child.message, routeID: info.routeID, step: info))
            do {
                let reply = try await producer.send(child)
                await observers.record(ExchangeEvent(
                    phase: .completed, message: child.message, routeID: info.routeID, step: info,
                    duration: ContinuousClock.now - start, detail: producer.describeReply(reply)
                ))
            } catch {
                let failure = StepFailure(wrapping: error, step: info, messageID: child.message.id)
                await observers.record(ExchangeEvent(
                    phase: .failed, message: child.message, routeID: info.routeID, step: info,
                    duration: ContinuousClock.now - start, error: failure.reason
                ))
                reportFailure(failure)
            }
        }
        return .next(exchange, detail: "copy \(child.message.id) sent")
    }
}

extension WireTapStep: StepKind {
    static let spec = StepSpec(
        "wire-tap",
        summary: "Sends a copy of the message to an endpoint without waiting for it; the copy is a child message (its own id, this message as parent).",
        fields: [Field("uri", .uri, required: true, "Endpoint URI. Other keys of the mapping are endpoint options.")],
        scalarField: "uri",
        endpointOptions: true,
        example: "- wire-tap: \"http://127.0.0.1:9003/audit\""
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        guard let producer = compiler.producer(for: step, info: &info) else { return nil }
        let logger = compiler.logger
        return WireTapStep(producer: producer, info: info, background: compiler.background, observers: compiler.observers) { failure in
            logger.warning("wire-tap copy failed", metadata: ["route": "\(failure.step.routeID)", "message-id": "\(failure.messageID)", "error": "\(failure)"])
        }
    }
}
