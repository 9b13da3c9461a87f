// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore

// The buffer's bookkeeping, changed only under its lock.
extension AuditBuffer {
    struct State: ~Copyable {
        /// Records waiting for the writer, and the number it has taken and not yet committed
        /// (the batch is moved out, not copied: the queue then never copies or shifts records).
        var queue: [PendingEvent] = []
        var inFlight = 0
        /// Records held, parked, queued or being written: what the capacity bounds.
        var held: Int { queue.count + inFlight + parkedEvents }
        /// Records ever queued and ever committed; a settle waits for committed ≥ its mark.
        var enqueued: Int64 = 0
        var committed: Int64 = 0
        var writer: CheckedContinuation<Void, Never>?
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
        /// Exchanges waiting for their events; resumed with true once committed, false when
        /// `deadline` passes first.
        var commitWaiters: [(mark: Int64, deadline: ContinuousClock.Instant, loop: (any EventLoop)?, continuation: CheckedContinuation<Bool, Never>)] = []
        /// Entry exchanges still running without a log (their events recorded outside the
        /// engine's scope for them), by message: their events wait here and go to the
        /// queue together with the exchange's end, so the exchange is written as one row
        /// rather than one per commit it spans. They count against the capacity. The ticker
        /// queues those parked longer than ``AuditBuffer/parkLimit`` (a long exchange's start
        /// is stored anyway), and a route that finds the buffer full queues them all (so the
        /// writer can make room).
        var parked: [MessageID: Parked] = [:]
        var parkedEvents = 0
        /// The logs of entry exchanges running (``ExchangeLog``), in no order: the ticker
        /// queues what those older than ``AuditBuffer/parkLimit`` gathered, as it does parked
        /// events. They do not count against the capacity: an exchange's gathered events go
        /// to the queue, waiting for room if need be, when its route ends.
        var logs: [ExchangeLog] = []
        var stopping = false
        /// The ticker asked for a commit of whatever is queued.
        var kicked = false
        /// The writer has stopped; nothing more is committed.
        var finished = false
        /// The writer thread waits on the semaphore: only then does waking it signal (a
        /// writer that is committing looks at the queue again when it is done).
        var threadAsleep = false
        /// A batch is being written, by the writer thread or an event loop: writes go one at a
        /// time, in order (a waiter's mark counts the records committed before it).
        var writing = false
        /// A batch an event loop failed to write, for the writer thread to write again.
        var failed: [PendingEvent]?
        /// The event loops with a write scheduled: an exchange that waits on one of them
        /// does not schedule another (each costs the loop a task).
        var loopWritesScheduled: [ObjectIdentifier] = []

        /// Moves a parked exchange's events to the queue, in order.
        mutating func unpark(_ id: MessageID) {
            guard let slot = parked.index(forKey: id) else { return }
            unpark(at: slot)
        }

        mutating func unpark(at slot: Dictionary<MessageID, Parked>.Index) {
            let exchange = parked.remove(at: slot).value
            queue.append(contentsOf: exchange.events)
            enqueued += Int64(exchange.events.count)
            parkedEvents -= exchange.events.count
        }

        mutating func register(_ log: ExchangeLog) {
            log.slot = logs.count
            logs.append(log)
        }

        mutating func unregister(_ log: ExchangeLog) {
            guard log.slot >= 0, log.slot < logs.count, logs[log.slot] === log else { return }
            let last = logs.removeLast()
            if last !== log {
                logs[log.slot] = last
                last.slot = log.slot
            }
            log.slot = -1
        }

        /// Queues what the logs registered before `cutoff` (all, with nil) have gathered, and
        /// takes them off the list: their exchanges' later events go to the queue directly.
        mutating func takeLogs(before cutoff: ContinuousClock.Instant?) {
            var index = 0
            while index < logs.count {
                let log = logs[index]
                guard cutoff.map({ log.since < $0 }) ?? true else {
                    index += 1
                    continue
                }
                unregister(log)
                if let open = log.takeOpen().open { queue(gathered: open) }
            }
        }

        /// Queues what a log gathered before its route ended, room or not (it did not count
        /// against the capacity while gathered).
        mutating func queue(gathered open: PendingEvent) {
            queue.append(open)
            enqueued += 1
        }

        /// Moves the exchanges parked since before `cutoff` (all, with nil) to the queue,
        /// with (`logs`) what the logs of those running since then have gathered.
        mutating func unpark(before cutoff: ContinuousClock.Instant?, logs: Bool = true) {
            if logs { takeLogs(before: cutoff) }
            guard !parked.isEmpty else { return }
            // Oldest first, so exchanges reach the writer in the order they started.
            var due: [(id: MessageID, since: ContinuousClock.Instant)] = []
            for (id, exchange) in parked where cutoff.map({ exchange.since < $0 }) ?? true {
                due.append((id, exchange.since))
            }
            for entry in due.sorted(by: { $0.since < $1.since }) {
                unpark(entry.id)
            }
        }

        /// Takes the queue for a write: marks the write under way and the records in flight.
        mutating func takeQueue() -> [PendingEvent] {
            var batch: [PendingEvent] = []
            swap(&batch, &queue)
            inFlight = batch.count
            writing = true
            // Room for as many as this batch (up to 1,024): the queue then fills without
            // growing step by step, and an idle one holds little.
            queue.reserveCapacity(min(1_024, max(32, batch.count)))
            return batch
        }

        /// Whether the writer thread has work: the node stops, the ticker kicked, exchanges
        /// wait, or `threshold` records are queued.
        func writerDue(threshold: Int) -> Bool {
            stopping || kicked || !commitWaiters.isEmpty || queue.count >= threshold
        }

        /// The queue, for an event loop to write: when exchanges wait for it and no other
        /// write is under way.
        mutating func takeLoopBatch() -> [PendingEvent]? {
            guard !finished, !writing, !commitWaiters.isEmpty, !queue.isEmpty else { return nil }
            return takeQueue()
        }

        /// What it takes to wake the writer, cleared: call ``AuditBuffer/wakeWriter(_:)`` with
        /// it once the lock is released.
        mutating func takeWake() -> Wake {
            defer {
                writer = nil
                threadAsleep = false
            }
            return Wake(continuation: writer, signal: threadAsleep)
        }
    }

    struct Wake {
        var continuation: CheckedContinuation<Void, Never>?
        var signal: Bool
    }

    struct Parked {
        var events: [PendingEvent]
        let since: ContinuousClock.Instant
    }
}
