// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization
import SwitchboardCore

/// An entry exchange's events, gathered while its route runs: the exchange's
/// ``ExchangeScope``, which the engine makes current for the route's task.
///
/// Each event's JSON is written into one buffer, under a lock of the exchange's own, and the
/// whole goes to the trail's queue when the route ends, as one event of role `entryWhole`
/// (one record, one row). Without the log, each event took the trail's lock and was looked up
/// by message among the exchanges running (parking), and had a buffer and an array of its
/// own, joined again when written.
///
/// The trail keeps the logs in a list, so its ticker can queue what a long exchange has
/// gathered (`entryOpen`, its start stored within a fraction of a second, as parking did):
/// the exchange's later events then go the way of events without a log.
final class ExchangeLog: ExchangeScope, @unchecked Sendable {
    let messageID: MessageID
    let trail: AuditTrail
    let since: ContinuousClock.Instant
    /// Where the log is in the trail's list (-1: not in it); only under the trail's lock.
    var slot = -1
    private let state = Mutex<Gathered>(Gathered())

    private struct Gathered: ~Copyable {
        /// The entry route's start: the ids and the row's header snapshot; nil until it came.
        var head: PendingEvent?
        var writer: StoredEventWriter?
        /// The route ended, or the trail took what was gathered: events go elsewhere now.
        var closed = false
        /// The end, when the trail's buffer was full: queued by ``AuditTrail/record(_:)``,
        /// which waits for room.
        var overflow: PendingEvent?
    }

    enum Outcome {
        /// Gathered.
        case kept
        /// The route ended: what was gathered, to be queued.
        case ended(PendingEvent)
        /// Not this log's to keep: the event goes the way of events without a log.
        case notKept
    }

    init(messageID: MessageID, trail: AuditTrail) {
        self.messageID = messageID
        self.trail = trail
        since = .now
    }

    /// Adds `event` (one the trail keeps, of this log's message) to what is gathered.
    func append(_ event: borrowing ExchangeEvent, policy: AuditPolicy) -> Outcome {
        let shape = EventShape(event)
        return state.withLock { gathered -> Outcome in
            if gathered.closed {
                if shape.role.endFailed != nil, let overflow = gathered.overflow.take() { return .ended(overflow) }
                return .notKept
            }
            if gathered.head == nil {
                // The log starts with its entry route's start.
                guard shape.role.isEntryStart else { return .notKept }
                gathered.head = PendingEvent(ids: event, shape: shape, policy: policy)
                // Room for the usual exchange's events (the bench route's come to 1.9 KB).
                gathered.writer = StoredEventWriter(capacity: 2_048 + shape.capacity(event, policy: policy))
            }
            guard var writer = gathered.writer.take() else { return .notKept }
            shape.append(event, policy: policy, to: &writer)
            guard let failed = shape.role.endFailed, var whole = gathered.head.take() else {
                gathered.writer = consume writer
                return .kept
            }
            gathered.closed = true
            whole.json = writer.finish()
            whole.role = .entryWhole(failed: failed)
            // A record is dated by its entry route's end event, as the writer dates rows.
            whole.startedAt = shape.startedAt
            return .ended(whole)
        }
    }

    /// Keeps the end for ``AuditTrail/record(_:)`` when the buffer had no room.
    func keep(overflow: consuming PendingEvent) {
        let overflow = Optional(overflow)
        state.withLock { $0.overflow = overflow }
    }

    /// Closes the log and hands over what it gathered, if anything: the entry route's start
    /// and the events since (`entryOpen`). `wasOpen` false: closed before (by the route's
    /// end or by the trail), and off the trail's list since.
    func takeOpen() -> (wasOpen: Bool, open: PendingEvent?) {
        state.withLock { gathered -> (Bool, PendingEvent?) in
            guard !gathered.closed else { return (false, nil) }
            gathered.closed = true
            guard var open = gathered.head.take(), let writer = gathered.writer.take() else { return (true, nil) }
            open.json = writer.finish()
            open.role = .entryOpen
            return (true, open)
        }
    }

    /// The route is done with the exchange: what the log still holds (the route's end never
    /// came to it) goes to the trail.
    func end() {
        trail.close(self)
    }
}
