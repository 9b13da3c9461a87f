import SwitchboardCore

/// The observers of a node, called in order for every event.
public struct ObserverSet: Sendable {
    public let observers: [any ExchangeObserver]

    public init(_ observers: [any ExchangeObserver] = []) {
        self.observers = observers
    }

    public var isEmpty: Bool { observers.isEmpty }

    @inline(__always)
    func record(_ event: @autoclosure () -> ExchangeEvent) async {
        guard !observers.isEmpty else { return }
        let event = event()
        for observer in observers {
            await observer.record(event)
        }
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

    init(steps: [CompiledStep], observers: ObserverSet) {
        self.steps = steps
        self.observers = observers
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
        guard !observers.isEmpty else {
            do {
                return try await step.processor.process(exchange)
            } catch {
                throw StepFailure(wrapping: error, step: step.info, messageID: exchange.message.id)
            }
        }
        let start = ContinuousClock.now
        await observers.record(ExchangeEvent(phase: .started, message: exchange.message, routeID: step.info.routeID, step: step.info))
        do {
            let result = try await step.processor.process(exchange)
            await observers.record(ExchangeEvent(
                phase: .completed, message: result.exchange.message, input: exchange.message, routeID: step.info.routeID, step: step.info,
                duration: ContinuousClock.now - start, detail: result.detail
            ))
            return result
        } catch {
            let failure = StepFailure(wrapping: error, step: step.info, messageID: exchange.message.id)
            await observers.record(ExchangeEvent(
                phase: .failed, message: exchange.message, input: exchange.message, routeID: step.info.routeID, step: step.info,
                duration: ContinuousClock.now - start, error: failure.reason
            ))
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
            self.init(step: step, messageID: messageID, reason: processing.message, status: processing.status ?? 500)
        case is CancellationError:
            self.init(step: step, messageID: messageID, reason: "cancelled (the node is shutting down)", status: 503)
        default:
            self.init(step: step, messageID: messageID, reason: String(describing: error))
        }
    }
}
