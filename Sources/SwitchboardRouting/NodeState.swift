// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore

/// A message that failed for good, kept so it can be looked at and replayed.
public struct DeadLetter: Sendable {
    /// The message as the route received it (headers and body before any step changed them).
    public var message: Message
    public var routeID: String
    /// The step that failed: its path and kind, such as `2 to http://127.0.0.1:9001/orders`.
    public var step: String
    public var error: String
    /// Attempts of the failing step on the last run, plus earlier runs' (replays).
    public var attempts: Int
    /// When the message first failed for good, and last (after a failed replay), in
    /// milliseconds since 1970.
    public var firstFailedAt: Int64
    public var lastFailedAt: Int64
    /// How many replays were tried.
    public var replays: Int

    public init(message: Message, routeID: String, step: String, error: String, attempts: Int, firstFailedAt: Int64, lastFailedAt: Int64, replays: Int = 0) {
        self.message = message
        self.routeID = routeID
        self.step = step
        self.error = error
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt
        self.lastFailedAt = lastFailedAt
        self.replays = replays
    }

    /// The dead letter's id: the id of the message that failed.
    public var id: MessageID { message.id }
}

extension StepInfo {
    /// `2 to http://127.0.0.1:9001/orders`: the step's path, kind and endpoint.
    public var summary: String {
        endpoint.map { "\(path) \(kind) \($0)" } ?? "\(path) \(kind)"
    }
}

extension Message {
    /// A copy to hand to a dead letter endpoint, with headers saying where and why it
    /// failed: `X-Dead-Letter-Route`, `-Step`, `-Error`, `-Attempts`, `-Message-ID`.
    public func deadLetterCopy(route: String, step: String, error: String, attempts: Int) -> Message {
        var copy = self
        copy.headers["X-Dead-Letter-Route"] = route
        copy.headers["X-Dead-Letter-Step"] = step
        copy.headers["X-Dead-Letter-Error"] = error
        copy.headers["X-Dead-Letter-Attempts"] = String(attempts)
        copy.headers["X-Dead-Letter-Message-ID"] = id.description
        return copy
    }
}

/// The durable dead letter channel: failed messages, listed, replayed, then removed.
public protocol DeadLetterStore: Sendable {
    /// Stores a dead letter, replacing one with the same id (a failed replay).
    func add(_ letter: DeadLetter) async throws
    /// The dead letters, oldest first, of one route or all.
    func list(routeID: String?, limit: Int) async throws -> [DeadLetter]
    func get(_ id: MessageID) async throws -> DeadLetter?
    /// Removes a dead letter; false when there was none.
    @discardableResult
    func remove(_ id: MessageID) async throws -> Bool
}

/// What an idempotency check found for a key.
public enum IdempotencyClaim: Sendable, Equatable {
    /// The key was not seen within its time to live; it is now held by this message.
    case claimed
    /// This same message holds the key already: it is being delivered again after a
    /// crash, and goes on.
    case alreadyMine
    /// Another message holds the key: this one is a duplicate of it.
    case duplicate(of: MessageID)
}

/// Keys of messages already seen, for `idempotent` steps.
public protocol IdempotencyStore: Sendable {
    /// Claims `key` in `scope` for `messageID` unless another message claimed it less than
    /// `ttl` ago.
    func claim(scope: String, key: String, messageID: MessageID, ttl: Duration) async throws -> IdempotencyClaim
    /// Gives up a claim after the message failed, so a later delivery of the same key
    /// (a retry by the sender, a replay) goes through.
    func release(scope: String, key: String, messageID: MessageID) async throws
}

/// Messages accepted by an asynchronous source and not yet routed to the end.
public protocol IntakeStore: Sendable {
    /// Stores the message before the source is told it was accepted.
    func enqueue(routeID: String, _ message: Message) async throws
    /// Forgets a message once its route finished with it (delivered or dead-lettered).
    func finish(_ id: MessageID) async throws
    /// Messages stored and not removed, oldest first: those to route after a restart.
    func pending() async throws -> [(routeID: String, message: Message)]
}

/// One store that keeps dead letters, idempotency keys and the intake.
public protocol NodeStateStore: DeadLetterStore, IdempotencyStore, IntakeStore {
    /// Releases connections; called once at shutdown.
    func close() async
}

extension NodeStateStore {
    public func close() async {}
}

/// The node's durable state that routes use: dead letters, idempotency keys, the
/// asynchronous intake. Each is nil when the node has no state store.
public struct NodeState: Sendable {
    public var deadLetters: (any DeadLetterStore)?
    public var idempotency: (any IdempotencyStore)?
    public var intake: (any IntakeStore)?

    /// Routes are only being checked (`switchboard check`): what needs the stores is not
    /// refused for their absence.
    public var checkOnly = false

    /// Accepted messages (asynchronous intake) being routed at once. Past it, a source that
    /// stores before routing waits to store its next message (an HTTP caller gets its 202
    /// later): the background work stays bounded however fast messages arrive.
    public var intakeConcurrency = 256

    public init(deadLetters: (any DeadLetterStore)? = nil, idempotency: (any IdempotencyStore)? = nil, intake: (any IntakeStore)? = nil) {
        self.deadLetters = deadLetters
        self.idempotency = idempotency
        self.intake = intake
    }

    /// One store that keeps all three.
    public init(_ store: some DeadLetterStore & IdempotencyStore & IntakeStore) {
        self.init(deadLetters: store, idempotency: store, intake: store)
    }

    /// For checking routes offline.
    public static var checking: NodeState {
        var state = NodeState()
        state.checkOnly = true
        return state
    }
}

/// A message's envelope (everything but the body) as JSON, for the stores that keep messages.
public enum MessageEnvelope {
    private struct Envelope: Codable {
        var id: String
        var correlation: String
        var parent: String?
        var headers: [[String]]
        var properties: [String: String]
        var trace: String?
    }

    /// The envelope of `message` as UTF-8 JSON.
    public static func encode(_ message: Message) -> String {
        let envelope = Envelope(
            id: message.id.description,
            correlation: message.correlationID,
            parent: message.parentID?.description,
            headers: message.headers.map { [$0.name, $0.value] },
            properties: message.properties,
            trace: message.trace?.traceparent
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let data = try? encoder.encode(envelope) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Rebuilds a message from its envelope and body.
    ///
    /// - Throws: ``ProcessingError`` when the envelope is not one ``encode(_:)`` wrote.
    public static func decode(_ json: String, body: [UInt8]) throws -> Message {
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: Data(json.utf8))
        } catch {
            throw ProcessingError("a stored message's envelope is unreadable: \(error)")
        }
        guard let id = MessageID(envelope.id) else {
            throw ProcessingError("a stored message has an invalid id '\(envelope.id)'")
        }
        var headers = Headers()
        for pair in envelope.headers where pair.count == 2 {
            headers.add(pair[0], pair[1])
        }
        return Message(
            id: id,
            correlationID: envelope.correlation,
            parentID: envelope.parent.flatMap { MessageID($0) },
            headers: headers,
            body: ByteBuffer(bytes: body),
            properties: envelope.properties,
            trace: envelope.trace.flatMap(TraceContext.init(traceparent:))
        )
    }
}
