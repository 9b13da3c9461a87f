// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// The observers of a node, called in order for every event.
public struct ObserverSet: Sendable {
    public let observers: [any ExchangeObserver]
    /// The same observers, each with its fast paths when it has them (seen once, here).
    private let entries: [Entry]

    private enum Entry: Sendable {
        case plain(any ExchangeObserver)
        case inline(any InlineExchangeObserver)
    }

    /// Whether any observer wants step starts.
    let stepStarts: Bool

    public init(_ observers: [any ExchangeObserver] = []) {
        self.observers = observers
        entries = observers.map { observer in
            if let inline = observer as? any InlineExchangeObserver { return .inline(inline) }
            return .plain(observer)
        }
        stepStarts = observers.contains { $0.wantsStepStarts }
    }

    public var isEmpty: Bool { observers.isEmpty }

    @inline(__always)
    func record(_ event: @autoclosure () -> ExchangeEvent) async {
        guard !entries.isEmpty else { return }
        let event = event()
        for entry in entries {
            switch entry {
            case .inline(let observer):
                if !observer.recordWithoutWaiting(event) { await observer.record(event) }
            case .plain(let observer):
                await observer.record(event)
            }
        }
    }

    /// A step's start, for the observers that want it; the event is not built when none do.
    @inline(__always)
    func recordStepStart(_ event: @autoclosure () -> ExchangeEvent) async {
        guard stepStarts else { return }
        let event = event()
        for entry in entries {
            switch entry {
            case .inline(let observer):
                if observer.wantsStepStarts, !observer.recordWithoutWaiting(event) { await observer.record(event) }
            case .plain(let observer):
                if observer.wantsStepStarts { await observer.record(event) }
            }
        }
    }

    /// The first observer's scope for an exchange delivered to its entry route.
    func scope(for messageID: MessageID) -> (any ExchangeScope)? {
        for case .inline(let observer) in entries {
            if let scope = observer.scope(for: messageID) { return scope }
        }
        return nil
    }

    /// Waits until every observer has stored what it was told about `messageID`.
    func settle(_ messageID: MessageID) async throws {
        for observer in observers {
            try await observer.settle(messageID)
        }
    }
}

/// A compiled step: what it is and where (for events and errors), and what it does.
struct CompiledStep: Sendable {
    let info: StepInfo
    let processor: any Processor
}

/// A sequence of steps: a route's body, or a branch of a choice, filter, split or multicast.
///
/// Runs each step in turn, reports its start, end and failure to the observers, and wraps
/// any error in a ``StepFailure`` naming the route and step.
final class Pipeline: Sendable {
    let steps: [CompiledStep]
    let observers: ObserverSet
    /// The route's `on-error.retry`: a step whose own failure is of a retried kind runs
    /// again after a backoff. A failure from inside a nested pipeline (a branch, a split
    /// part, a called route) was retried there and is not retried again here.
    let retry: RetryPolicy?

    init(steps: [CompiledStep], observers: ObserverSet, retry: RetryPolicy? = nil) {
        self.steps = steps
        self.observers = observers
        self.retry = retry
    }

    /// Runs the steps on `exchange`.
    ///
    /// - Returns: The exchange after the last step, with `.stop` if a step ended the route.
    /// - Throws: ``StepFailure`` for the first step that failed.
    func run(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        for step in steps {
            let result = try await run(step, exchange)
            exchange = result.exchange
            if result.action == .stop { return .stop(exchange) }
        }
        return .next(exchange)
    }

    @inline(__always)
    private func run(_ step: CompiledStep, _ exchange: Exchange) async throws -> StepResult {
        guard let retry else { return try await runOnce(step, exchange, attempt: 1, retry: nil) }
        var attempt = 1
        while true {
            do {
                return try await runOnce(step, exchange, attempt: attempt, retry: retry)
            } catch let failure as RetriableFailure {
                try await Task.sleep(for: failure.delay)
                attempt += 1
            }
        }
    }

    /// Thrown by ``runOnce(_:_:attempt:retry:)`` when the step will run again.
    private struct RetriableFailure: Error {
        let delay: Duration
    }

    @inline(__always)
    private func runOnce(_ step: CompiledStep, _ exchange: Exchange, attempt: Int, retry: RetryPolicy?) async throws -> StepResult {
        guard !observers.isEmpty else {
            do {
                return try await step.processor.process(exchange)
            } catch {
                var failure = StepFailure(wrapping: error, step: step.info, messageID: exchange.message.id)
                if let retry, !(error is StepFailure) {
                    if retry.retries(failure.kind, after: attempt) { throw RetriableFailure(delay: retry.delay(beforeRetry: attempt)) }
                    failure.attempts = attempt
                }
                throw failure
            }
        }
        let start = ContinuousClock.now
        await observers.recordStepStart(ExchangeEvent(phase: .started, message: exchange.message, routeID: step.info.routeID, step: step.info))
        do {
            let result = try await step.processor.process(exchange)
            await observers.record(ExchangeEvent(
                phase: .completed, message: result.exchange.message, input: exchange.message, routeID: step.info.routeID, step: step.info,
                duration: ContinuousClock.now - start, detail: result.detail
            ))
            return result
        } catch {
            var failure = StepFailure(wrapping: error, step: step.info, messageID: exchange.message.id)
            var text = failure.reason
            var retrying: Duration?
            if let retry, !(error is StepFailure) {
                if retry.retries(failure.kind, after: attempt) {
                    let delay = retry.delay(beforeRetry: attempt)
                    retrying = delay
                    text += " (attempt \(attempt) of \(retry.attempts); retrying in \(formatDuration(delay)))"
                } else {
                    failure.attempts = attempt
                    if attempt > 1 {
                        text += " (attempt \(attempt) of \(retry.attempts); giving up)"
                    } else if !retry.on.contains(failure.kind) {
                        text += " (\(failure.kind) failures are not retried)"
                    }
                }
            }
            await observers.record(ExchangeEvent(
                phase: .failed, message: exchange.message, input: exchange.message, routeID: step.info.routeID, step: step.info,
                duration: ContinuousClock.now - start, error: text
            ))
            if let retrying { throw RetriableFailure(delay: retrying) }
            throw failure
        }
    }
}

extension StepFailure {
    /// Wraps `error` as a failure of `step`, keeping an inner step's failure (from a branch)
    /// as it is so the error names the step that actually failed.
    init(wrapping error: any Error, step: StepInfo, messageID: MessageID) {
        switch error {
        case let failure as StepFailure:
            self = failure
        case let processing as ProcessingError:
            let kind = processing.kind ?? (processing.status == 400 ? ErrorKind.validation : ErrorKind.step)
            self.init(step: step, messageID: messageID, reason: processing.message, status: processing.status ?? 500, kind: kind)
        case is CancellationError:
            self.init(step: step, messageID: messageID, reason: "cancelled (the node is shutting down)", status: 503)
        default:
            self.init(step: step, messageID: messageID, reason: String(describing: error))
        }
    }
}
