// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `choice`: the content-based router. Runs the steps of the first `when` whose predicate
/// holds, else the `otherwise` steps, else nothing. The body is parsed at most once for
/// all the predicates.
struct ChoiceStep: Processor {
    struct Branch: Sendable {
        let predicate: CompiledPredicate
        let pipeline: Pipeline
        /// The trace note when this branch is taken, written once at load.
        let detail: String

        init(index: Int, predicate: CompiledPredicate, pipeline: Pipeline) {
            self.predicate = predicate
            self.pipeline = pipeline
            self.detail = "when[\(index)] matched: \(predicate.description)"
        }
    }

    let branches: [Branch]
    let otherwise: Pipeline?

    func process(_ exchange: Exchange) async throws -> StepResult {
        var view = BodyView(exchange.message)
        for branch in branches where try branch.predicate.matches(&view) {
            let result = try await branch.pipeline.run(exchange)
            return StepResult(result.exchange, action: result.action, detail: branch.detail)
        }
        guard let otherwise else {
            return .next(exchange, detail: "no branch matched")
        }
        let result = try await otherwise.run(exchange)
        return StepResult(result.exchange, action: result.action, detail: "otherwise (no when matched)")
    }
}

/// `filter`: the message filter. Messages that match run the filter's steps; the others
/// skip them. Either way the route goes on after the filter (use `stop` inside a `choice`
/// to drop messages).
struct FilterStep: Processor {
    let predicate: CompiledPredicate
    let pipeline: Pipeline
    /// Trace notes, written once at load.
    let matchedDetail: String
    let unmatchedDetail: String

    init(predicate: CompiledPredicate, pipeline: Pipeline) {
        self.predicate = predicate
        self.pipeline = pipeline
        self.matchedDetail = "matched: \(predicate.description)"
        self.unmatchedDetail = "not matched: \(predicate.description)"
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        guard try predicate.matches(exchange) else {
            return .next(exchange, detail: unmatchedDetail)
        }
        let result = try await pipeline.run(exchange)
        return StepResult(result.exchange, action: result.action, detail: matchedDetail)
    }
}

/// `to`: sends the message to an endpoint and continues with the reply.
struct ToStep: Processor {
    let producer: any Producer

    func process(_ exchange: Exchange) async throws -> StepResult {
        let reply = try await producer.send(exchange)
        return .next(reply, detail: producer.describeReply(reply))
    }
}

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

/// `route`: runs another route's steps on the message, as Camel's `direct:` does, and
/// continues with its result.
struct RouteCallStep: Processor {
    let target: String
    let directory: RouteDirectory

    func process(_ exchange: Exchange) async throws -> StepResult {
        guard let route = directory.route(target) else {
            throw ProcessingError("route '\(target)' is not loaded")
        }
        return .next(try await RouteDirectory.call(route, with: exchange), detail: "route '\(target)' done")
    }
}
