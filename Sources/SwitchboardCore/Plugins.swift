// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// A protocol plugin: it owns what its endpoints share (listeners, connection pools) and
/// builds consumers and producers from endpoints already checked against its `spec`.
///
/// The core never names a concrete adapter; the node's adapter catalog lists them.
public protocol Adapter: Sendable {
    /// The endpoint URI schemes this adapter serves and their options.
    static var spec: EndpointSpec { get }

    /// Builds the consumer a route's `from` names.
    ///
    /// - Parameter endpoint: The endpoint, parsed and checked against ``spec``.
    /// - Returns: A consumer that starts delivering once its `run(_:)` is called.
    /// - Throws: An ``EndpointError`` when the endpoint cannot be served.
    func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer

    /// Builds the producer a `to` (or `wire-tap`, `multicast`) step names.
    func makeProducer(_ endpoint: Endpoint) throws -> any Producer

    /// A key that two consumers of this adapter may not share, such as the method and path
    /// an HTTP consumer binds. Routes with equal keys are refused at load.
    func consumerBinding(_ endpoint: Endpoint) -> String?

    /// Runs what the adapter shares between endpoints (a listener, say) until cancelled
    /// or until graceful shutdown has drained it. Adapters with nothing to run return at once.
    func run() async throws

    /// Releases what the adapter holds (client connection pools). Called once, after every
    /// route and background job has stopped.
    func shutdown() async
}

extension Adapter {
    public func consumerBinding(_ endpoint: Endpoint) -> String? { nil }
    public func run() async throws {}
    public func shutdown() async {}
    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        throw EndpointError("'\(endpoint.scheme):' cannot be used in 'from'")
    }
    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        throw EndpointError("'\(endpoint.scheme):' cannot be used in 'to'")
    }
}

/// What a consumer calls for each exchange it takes in: runs the route and returns the
/// final exchange (the reply, for in-out exchanges). It throws when the route failed.
public typealias Delivery = @Sendable (Exchange) async throws -> Exchange

/// Listens or polls until cancelled, handing each exchange to the engine.
public protocol Consumer: Sendable {
    /// Delivers exchanges until the task is cancelled or graceful shutdown begins.
    ///
    /// A consumer acknowledges its source (answers the HTTP request, archives the file)
    /// only after `deliver` returned.
    func run(_ deliver: @escaping Delivery) async throws

    /// Whether the source is acknowledged once the message is stored durably, before it is
    /// routed (HTTP `mode=async`: 202 Accepted). The engine then stores each message in the
    /// node's intake, routes it in the background, and routes what is left after a restart.
    var storesBeforeRouting: Bool { get }
}

extension Consumer {
    public var storesBeforeRouting: Bool { false }
}

/// Sends an exchange to an endpoint and returns the resulting exchange (the reply).
public protocol Producer: Sendable {
    func send(_ exchange: Exchange) async throws -> Exchange

    /// A short note on a reply for the trace, such as `HTTP 200`; nil when there is nothing to say.
    func describeReply(_ reply: Exchange) -> String?
}

extension Producer {
    public func describeReply(_ reply: Exchange) -> String? { nil }
}

/// One step of a route: every routing step and every transformer.
public protocol Processor: Sendable {
    func process(_ exchange: Exchange) async throws -> StepResult
}

/// A condition on an exchange, for `choice`, `filter` and the like.
public protocol Predicate: Sendable {
    func matches(_ exchange: Exchange) throws -> Bool
}

/// Receives every exchange event: step start, end and failure. The audit trail and the SLA
/// monitor are observers.
public protocol ExchangeObserver: Sendable {
    func record(_ event: ExchangeEvent) async

    /// Whether the observer is told when a step starts (a step's end carries its start time
    /// and duration). When no observer wants them the engine does not build those events.
    var wantsStepStarts: Bool { get }

    /// Returns once everything recorded so far about `messageID` is stored durably. The
    /// engine calls it when a route has finished with an exchange, before the consumer
    /// acknowledges the source (answers the request, archives the file).
    ///
    /// - Throws: When the events cannot be stored in time; the exchange then fails and its
    ///   source is not acknowledged.
    func settle(_ messageID: MessageID) async throws
}

extension ExchangeObserver {
    public func settle(_ messageID: MessageID) async throws {}

    public var wantsStepStarts: Bool { true }
}

/// The fast paths of the package's own observers (the audit trail, the SLA monitor): not
/// part of the public observer API. The engine sees whether an observer has them once, when
/// its observer set is made.
package protocol InlineExchangeObserver: ExchangeObserver {
    /// Records `event` if that needs no waiting, and says whether it did; when it returns
    /// false the engine calls ``ExchangeObserver/record(_:)``. Every event of every
    /// exchange goes through here: the synchronous call spares the async call's frame and
    /// executor checks.
    func recordWithoutWaiting(_ event: ExchangeEvent) -> Bool

    /// A scope of the observer's own for a message a consumer delivers to its entry route,
    /// or nil (the default). The engine makes it ``ExchangeScopes/current`` while the route
    /// runs, and ends it when the route is done, before ``ExchangeObserver/settle(_:)``: the
    /// audit trail gathers the exchange's events there instead of looking the exchange up
    /// for each. The engine takes the first observer's scope that is not nil.
    func scope(for messageID: MessageID) -> (any ExchangeScope)?
}

extension InlineExchangeObserver {
    package func scope(for messageID: MessageID) -> (any ExchangeScope)? { nil }
}

/// What an observer keeps for one exchange while its entry route runs (see
/// ``InlineExchangeObserver/scope(for:)``). Tasks the route starts see it too: an observer
/// checks that an event is of the scope's own exchange before using it.
package protocol ExchangeScope: AnyObject, Sendable {
    /// Called once the route is done with the exchange, whether it completed or failed.
    func end()
}

package enum ExchangeScopes {
    /// The scope of the exchange the current task runs, if its observer gave one.
    @TaskLocal package static var current: (any ExchangeScope)?
}

/// What a step hands back to the route engine.
public struct StepResult: Sendable {
    public enum Action: Sendable {
        /// Go on with the next step.
        case next
        /// End the route here; the exchange as it is now is the route's result.
        case stop
    }

    public var exchange: Exchange
    public var action: Action
    /// A short note for the trace: the branch a choice took and why, whether a filter matched.
    public var detail: String?

    public init(_ exchange: Exchange, action: Action = .next, detail: String? = nil) {
        self.exchange = exchange
        self.action = action
        self.detail = detail
    }

    public static func next(_ exchange: Exchange, detail: String? = nil) -> StepResult {
        StepResult(exchange, action: .next, detail: detail)
    }

    public static func stop(_ exchange: Exchange, detail: String? = nil) -> StepResult {
        StepResult(exchange, action: .stop, detail: detail)
    }
}
