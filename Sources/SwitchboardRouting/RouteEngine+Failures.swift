// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore

/// Which dead letter channel a delivery uses when the route fails for good.
enum DeadLetterUse: Sendable {
    /// The route's `on-error.dead-letter`, if any.
    case route
    /// The route's, else the node's store: nobody waits for the failure (asynchronous intake).
    case routeOrStore
    /// None: a replay, whose dead letter is already stored and is updated instead.
    case none
}

/// What a replay of a dead letter came to.
public struct ReplayOutcome: Sendable {
    /// The dead letter (the id of the message that failed).
    public var deadLetter: MessageID
    /// The id of the message the replay sent through the route; nil when it could not be
    /// sent (its route is not loaded).
    public var replay: MessageID?
    public var routeID: String
    /// nil when the route succeeded (and the dead letter was removed); else why it failed again.
    public var error: String?

    public var succeeded: Bool { error == nil }

    /// `{"deadLetter": …, "replay": …, "route": …, "succeeded": …, "error": …}`.
    public var json: String {
        var json = "{\"deadLetter\":\(jsonQuoted(deadLetter.description)),\"replay\":\(replay.map { jsonQuoted($0.description) } ?? "null"),\"route\":\(jsonQuoted(routeID))"
        json += ",\"succeeded\":\(error == nil)"
        if let error { json += ",\"error\":\(jsonQuoted(error))" }
        return json + "}"
    }
}

extension RouteEngine {
    /// The header a replayed message carries: the id of the message it replays. Names with
    /// a dot are never sent on the wire; the audit trail keeps it, so traces link the two.
    public static let replayHeader = "replay.of"

    /// Accepted messages routed at once when resuming after a restart.
    static let resumeConcurrency = 16

    func deadLetterTarget(for route: CompiledRoute, _ use: DeadLetterUse) -> DeadLetterTarget? {
        switch use {
        case .route: route.deadLetter
        case .routeOrStore: route.deadLetter ?? state.deadLetters.map { .store($0) }
        case .none: nil
        }
    }

    /// Stores `message` (as the route received it) in the dead letter channel and records
    /// that in the trace.
    ///
    /// - Returns: The dead letter's id, or nil when the channel could not take it (the
    ///   failure then goes back to the source, which keeps the message).
    func handOver(_ message: Message, _ failure: StepFailure, route: CompiledRoute, to target: DeadLetterTarget) async -> MessageID? {
        let start = ContinuousClock.now
        let step = failure.step.summary
        let info: StepInfo
        let detail: String
        do {
            switch target {
            case .store(let store):
                let now = wallClockMilliseconds()
                try await store.add(DeadLetter(
                    message: message, routeID: route.id, step: step, error: failure.reason,
                    attempts: failure.attempts, firstFailedAt: now, lastFailedAt: now
                ))
                info = StepInfo(routeID: route.id, index: -1, path: "dead-letter", kind: "dead-letter", endpoint: "store")
                detail = "stored in the dead letter store; replay with: switchboard replay \(message.id)"
            case .producer(let producer, let description):
                let copy = message.deadLetterCopy(route: route.id, step: step, error: failure.reason, attempts: failure.attempts)
                _ = try await producer.send(Exchange(message: copy, pattern: .inOnly))
                info = StepInfo(routeID: route.id, index: -1, path: "dead-letter", kind: "dead-letter", endpoint: description)
                detail = "handed to \(description)"
            }
        } catch {
            logger.error("the dead letter channel refused a failed message; it goes back to its source", metadata: [
                "route": "\(route.id)", "message-id": "\(message.id)", "error": "\(error)",
            ])
            return nil
        }
        await observers.record(ExchangeEvent(
            phase: .completed, message: message, input: message, routeID: route.id, step: info,
            duration: ContinuousClock.now - start, detail: detail
        ))
        return message.id
    }

    /// Sends a dead letter through its route again, as a new message that carries
    /// ``replayHeader``. The dead letter is removed when the route succeeds, and updated
    /// (attempts, error, replays) when it fails again.
    ///
    /// - Throws: ``ProcessingError`` (404) when there is no such dead letter or its route is
    ///   gone, (503) when the node has no dead letter store.
    public func replay(_ id: MessageID) async throws -> ReplayOutcome {
        guard let store = state.deadLetters else {
            throw ProcessingError("this node has no dead letter store", status: 503)
        }
        guard let letter = try await store.get(id) else {
            throw ProcessingError("no dead letter with id \(id)", status: 404)
        }
        return try await replay(letter, store: store)
    }

    /// Replays every dead letter (of one route, or all), oldest first.
    public func replayAll(routeID: String?, limit: Int = 10_000) async throws -> [ReplayOutcome] {
        guard let store = state.deadLetters else {
            throw ProcessingError("this node has no dead letter store", status: 503)
        }
        if let routeID, route(routeID) == nil {
            throw ProcessingError("no route with id '\(routeID)'", status: 404)
        }
        var outcomes: [ReplayOutcome] = []
        for letter in try await store.list(routeID: routeID, limit: limit) {
            // A letter whose route is gone is reported and kept; the others still go.
            guard self.route(letter.routeID) != nil else {
                outcomes.append(ReplayOutcome(
                    deadLetter: letter.id, replay: nil, routeID: letter.routeID, error: "its route '\(letter.routeID)' is not loaded; kept"
                ))
                continue
            }
            outcomes.append(try await replay(letter, store: store))
        }
        return outcomes
    }

    private func replay(_ letter: DeadLetter, store: any DeadLetterStore) async throws -> ReplayOutcome {
        guard let route = route(letter.routeID) else {
            throw ProcessingError("the route '\(letter.routeID)' of dead letter \(letter.id) is not loaded", status: 404)
        }
        let original = letter.message
        var headers = original.headers
        headers[Self.replayHeader] = original.id.description
        let message = Message(
            correlationID: original.correlationID, headers: headers, body: original.body,
            properties: original.properties, trace: original.trace
        )
        do {
            _ = try await deliver(Exchange(message: message, pattern: .inOnly), to: route, deadLetters: .none)
            try await store.remove(letter.id)
            logger.notice("dead letter replayed", metadata: ["route": "\(route.id)", "dead-letter": "\(letter.id)", "message-id": "\(message.id)"])
            return ReplayOutcome(deadLetter: letter.id, replay: message.id, routeID: route.id, error: nil)
        } catch {
            var updated = letter
            updated.replays += 1
            updated.lastFailedAt = wallClockMilliseconds()
            if let failure = error as? StepFailure {
                updated.attempts += failure.attempts
                updated.error = failure.reason
                updated.step = failure.step.summary
            } else {
                updated.error = "\(error)"
            }
            try await store.add(updated)
            return ReplayOutcome(deadLetter: letter.id, replay: message.id, routeID: route.id, error: updated.error)
        }
    }

    // MARK: Asynchronous intake

    /// What a consumer that acknowledges once a message is stored calls: stores it in the
    /// intake, then routes it in the background.
    ///
    /// - Throws: When the message could not be stored (the source must not acknowledge it).
    func accept(_ exchange: Exchange, for route: CompiledRoute) async throws -> Exchange {
        guard let intake = state.intake else {
            throw ProcessingError("this node has no state store to keep accepted messages", status: 503)
        }
        var exchange = exchange
        exchange.pattern = .inOnly
        if exchange.message.trace == nil {
            exchange.message.trace = .random()
        }
        // Taken before storing and given back once routed: at most `intakeConcurrency`
        // accepted messages are in the background at once; past that the source waits.
        await intakePermits.acquire()
        do {
            try await intake.enqueue(routeID: route.id, exchange.message)
        } catch {
            intakePermits.release()
            throw ProcessingError("the message could not be stored: \(error)", status: 503)
        }
        let stored = exchange
        background.submit {
            await self.routeStored(stored, route: route, intake: intake)
            self.intakePermits.release()
        }
        return exchange
    }

    /// Routes a stored message; forgets it once delivered or dead-lettered. A message the
    /// dead letter channel could not take stays in the intake for the next start.
    func routeStored(_ exchange: Exchange, route: CompiledRoute, intake: any IntakeStore) async {
        do {
            _ = try await deliver(exchange, to: route, deadLetters: .routeOrStore)
        } catch let failure as StepFailure where failure.deadLetter != nil {
            // Safe in the dead letter channel.
        } catch {
            logger.error("an accepted message failed and stays in the intake for the next start", metadata: [
                "route": "\(route.id)", "message-id": "\(exchange.message.id)", "error": "\(error)",
            ])
            return
        }
        do {
            try await intake.finish(exchange.message.id)
        } catch {
            logger.error("could not mark an accepted message done; it will be routed again after a restart", metadata: [
                "route": "\(route.id)", "message-id": "\(exchange.message.id)", "error": "\(error)",
            ])
        }
    }

    /// Routes, in the background, the messages accepted before the last stop and not finished.
    func resumeIntake() async {
        guard let intake = state.intake, routes.contains(where: \.storesBeforeRouting) else { return }
        let pending: [(routeID: String, message: Message)]
        do {
            pending = try await intake.pending()
        } catch {
            logger.error("cannot read the intake; accepted messages are not resumed", metadata: ["error": "\(error)"])
            return
        }
        guard !pending.isEmpty else { return }
        logger.notice("resuming accepted messages", metadata: ["count": "\(pending.count)"])
        var work: [(Exchange, CompiledRoute)] = []
        for (routeID, message) in pending {
            guard let route = route(routeID) else {
                logger.warning("an accepted message's route is not loaded; it stays in the intake", metadata: ["route": "\(routeID)", "message-id": "\(message.id)"])
                continue
            }
            work.append((Exchange(message: message, pattern: .inOnly), route))
        }
        // However many were left, at most `resumeConcurrency` are routed at once.
        let queue = work
        background.submit {
            await withTaskGroup(of: Void.self) { group in
                var next = 0
                while next < queue.count {
                    if next >= RouteEngine.resumeConcurrency { await group.next() }
                    let (exchange, route) = queue[next]
                    group.addTask { await self.routeStored(exchange, route: route, intake: intake) }
                    next += 1
                }
            }
        }
    }
}
