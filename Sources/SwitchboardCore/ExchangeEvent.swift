// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// Where a step sits: its route, its position, what it is and where it was written.
///
/// Every event of every step carries one, so it is one reference to shared, unchanging
/// storage: copying it costs one reference count, not one per string.
public struct StepInfo: Sendable, Hashable {
    private final class Storage: Sendable {
        let routeID: String
        let index: Int
        let path: String
        let kind: String
        let endpoint: String?
        let location: SourceLocation?
        let jsonFields: [UInt8]

        init(routeID: String, index: Int, path: String, kind: String, endpoint: String?, location: SourceLocation?) {
            self.routeID = routeID
            self.index = index
            self.path = path
            self.kind = kind
            self.endpoint = endpoint
            self.location = location
            var json: [UInt8] = []
            appendEventIdentity(route: routeID, entry: false, kind: kind, stepIndex: index, step: path, endpoint: endpoint, to: &json)
            jsonFields = json
        }
    }

    private var storage: Storage

    /// The route the step belongs to.
    public var routeID: String { storage.routeID }
    /// Position in the route counting nested steps depth-first from 0; stable for a given file.
    public var index: Int { storage.index }
    /// Readable position: `2`, `2.when[1].0` for the first step of a choice's second branch.
    public var path: String { storage.path }
    /// The step kind as written: `to`, `choice`, `set-header`.
    public var kind: String { storage.kind }
    /// The endpoint the step talks to, credentials and secrets removed.
    public var endpoint: String? {
        get { storage.endpoint }
        set { self = StepInfo(routeID: routeID, index: index, path: path, kind: kind, endpoint: newValue, location: location) }
    }
    /// Where the step is written.
    public var location: SourceLocation? { storage.location }
    /// The opening of the JSON object of an event of this step, made once when the step is
    /// compiled: `{"route":…,"entry":false,"kind":…,"stepIndex":…,"step":…` and `,"endpoint":…`
    /// when there is one (the audit trail writes this for every step of every exchange).
    public var jsonFields: [UInt8] { storage.jsonFields }

    public init(routeID: String, index: Int, path: String, kind: String, endpoint: String? = nil, location: SourceLocation? = nil) {
        storage = Storage(routeID: routeID, index: index, path: path, kind: kind, endpoint: endpoint, location: location)
    }

    public static func == (lhs: StepInfo, rhs: StepInfo) -> Bool {
        lhs.storage === rhs.storage
            || (lhs.routeID == rhs.routeID && lhs.index == rhs.index && lhs.path == rhs.path && lhs.kind == rhs.kind
                && lhs.endpoint == rhs.endpoint && lhs.location == rhs.location)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(routeID)
        hasher.combine(index)
        hasher.combine(path)
        hasher.combine(kind)
        hasher.combine(endpoint)
        hasher.combine(location)
    }
}

/// One transition of an exchange: it entered or left a route or a step.
public struct ExchangeEvent: Sendable {
    /// The ``detail`` of an entry route's second end: its events were not stored in time, so
    /// its source was not acknowledged (the caller was answered 503, a file stays) although
    /// the route itself completed.
    public static let notAcknowledged = "not acknowledged"

    public enum Phase: String, Sendable {
        case started
        case completed
        case failed
    }

    public var phase: Phase
    /// The message as the event left it: after the step on `completed`, as it entered on
    /// `started` and `failed`.
    public var message: Message
    /// The message as it entered the step or route, on `completed` and `failed`; observers
    /// compare it with `message` to see what the step changed.
    public var input: Message?
    public var routeID: String
    /// The step, or nil for the route as a whole.
    public var step: StepInfo?
    /// Wall-clock time of the transition, microseconds since the Unix epoch.
    public var timestampMicros: Int64
    /// Time the step (or route) took; nil on `started`.
    public var duration: Duration?
    /// Why the step failed; nil unless `phase == .failed`.
    public var error: String?
    /// A note from the step: the branch a choice took, whether a filter matched, a reply status.
    public var detail: String?
    /// For route events: 0 for the route a consumer delivered the exchange to, 1 and more
    /// for routes it called (`route:`, `direct:`).
    public var callDepth: Int

    /// Inlined where events are made, so the event is built in place (an out-of-line
    /// initializer copied the finished event once more, with every reference it holds).
    @inlinable
    public init(
        phase: Phase,
        message: Message,
        input: Message? = nil,
        routeID: String,
        step: StepInfo?,
        timestampMicros: Int64 = wallClockMicroseconds(),
        duration: Duration? = nil,
        error: String? = nil,
        detail: String? = nil,
        callDepth: Int = 0
    ) {
        self.phase = phase
        self.message = message
        self.input = input
        self.routeID = routeID
        self.step = step
        self.timestampMicros = timestampMicros
        self.duration = duration
        self.error = error
        self.detail = detail
        self.callDepth = callDepth
    }

    public var messageID: MessageID { message.id }
    public var correlationID: String { message.correlationID }
    public var parentID: MessageID? { message.parentID }
    /// Body size in bytes when the event happened.
    public var bodySize: Int { message.body.readableBytes }
}
