// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Dispatch
import NIOCore
import NIOPosix
import SwitchboardCore
import Synchronization

/// The audit trail's bounded buffer: events wait here for the writer, an entry exchange's
/// events parked together until its end, and exchanges wait here for their events to be
/// committed. It holds at most `capacity` records (logs of running exchanges aside); a
/// route that finds it full waits for room, nothing is dropped.
///
/// One lock guards it all (``State``); nothing under the lock blocks or resumes anyone:
/// the wakes and resumptions it decides are carried out after the lock is released.
final class AuditBuffer: Sendable {
    let capacity: Int
    /// Records queued that wake the writer: half the buffer, at most 512, so the events of
    /// many exchanges go in one commit.
    let wakeThreshold: Int
    /// Wakes the writer thread when it sleeps (``State/threadAsleep``).
    let writerSignal = DispatchSemaphore(value: 0)
    private let state: Mutex<State>

    /// How long an exchange's events may stay parked before they are queued without its end.
    static let parkLimit: Duration = .milliseconds(200)

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        self.wakeThreshold = max(1, min(512, self.capacity / 2))
        self.state = Mutex(State())
    }

    /// Records held: queued, parked or being written.
    var held: Int {
        state.withLock { $0.held }
    }

    /// Logs of exchanges whose routes are running.
    var runningLogs: Int {
        state.withLock { $0.logs.count }
    }

    var queuedCount: Int {
        state.withLock { $0.queue.count }
    }

    func register(_ log: ExchangeLog) {
        state.withLock { $0.register(log) }
    }

    /// The route is done with `log`'s exchange: off the list, and what it still holds (the
    /// route's end did not come to it) to the queue, room or not (a route waits for room when
    /// it records, not here).
    func close(_ log: ExchangeLog) {
        let (wasOpen, open) = log.takeOpen()
        guard wasOpen else { return }
        state.withLock { state in
            state.unregister(log)
            if let open { state.queue(gathered: open) }
        }
    }

    /// Queues `record` unless the buffer is full, moving it out (nil after); wakes the writer
    /// when it is due. Moved rather than copied: a copy retains all the event holds.
    /// `closing`: the log that gathered `record`, taken off the list, room or not.
    func tryEnqueue(_ record: inout PendingEvent?, closing log: ExchangeLog? = nil) -> Bool {
        guard let role = record?.role, let messageID = record?.messageID else { return true }
        // An entry exchange's start is parked with the time; its later events join it.
        let now: ContinuousClock.Instant? = if case .entryStart = role { .now } else { nil }
        // (false, nil): no room; (true, wake): queued, with what wakes the writer when it is due.
        let (queued, wake) = state.withLock { state -> (Bool, Wake?) in
            if let log { state.unregister(log) }
            guard state.held < capacity || state.stopping else { return (false, nil) }
            if case .message(let id) = messageID, !state.stopping {
                if let now {
                    state.unpark(id)
                    var events: [PendingEvent] = []
                    events.reserveCapacity(4)
                    if let event = record.take() { events.append(event) }
                    state.parked[id] = Parked(events: events, since: now)
                    state.parkedEvents += 1
                    return (true, nil)
                }
                if !state.parked.isEmpty, let slot = state.parked.index(forKey: id) {
                    if let event = record.take() { state.parked.values[slot].events.append(event) }
                    state.parkedEvents += 1
                    guard role.endFailed != nil else { return (true, nil) }
                    // The exchange ended: its events go to the writer together.
                    state.unpark(at: slot)
                    return (true, state.queue.count >= wakeThreshold ? state.takeWake() : nil)
                }
            }
            if let event = record.take() { state.queue.append(event) }
            state.enqueued += 1
            // The writer is woken by an exchange that waits for its events (settle),
            // by a full half-buffer, or by the ticker, not by every event: the events
            // of many exchanges then go in one commit.
            return (true, state.queue.count >= wakeThreshold ? state.takeWake() : nil)
        }
        if let wake { wakeWriter(wake) }
        return queued
    }

    /// Queues `record`, waiting for room when the buffer is full.
    func enqueue(_ record: consuming PendingEvent) async {
        var pending: PendingEvent? = consume record
        while true {
            if tryEnqueue(&pending) { return }
            await withCheckedContinuation { continuation in
                let (resumeNow, wake) = state.withLock { state -> (Bool, Wake?) in
                    if state.held < capacity || state.stopping { return (true, nil) }
                    state.roomWaiters.append(continuation)
                    // Parked events cannot be written until their exchanges end, and those may
                    // be the ones waiting here: they go to the writer now. (Logs do not count
                    // against the capacity: they stay.)
                    guard !state.parked.isEmpty else { return (false, nil) }
                    state.unpark(before: nil, logs: false)
                    return (false, state.takeWake())
                }
                if let wake { wakeWriter(wake) }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Moves every parked exchange's events (and what the logs gathered) to the queue.
    func unparkAll() {
        state.withLock { $0.unpark(before: nil) }
    }

    /// Waits until everything queued so far is committed.
    func waitForCommit(timeout: Duration, writer: AuditWriter) async -> Bool {
        // Nothing outstanding: no suspension (a continuation resumed at once still costs a
        // round through the executor).
        if state.withLock({ $0.committed >= $0.enqueued || $0.finished }) { return true }
        let deadline = ContinuousClock.now + timeout
        // Resumed on the event loop it waits on, where its connection lives.
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        // On an event loop, the loop writes (see the type's notes); elsewhere the writer does.
        let loopWrites = loop != nil && writer.loopWritesNow
        return await withCheckedContinuation { continuation in
            // nil: committed already; else what wakes the writer thread, or (loop writes) whether
            // this loop's write is still to be scheduled.
            let wake = state.withLock { state -> (Wake, schedule: Bool)? in
                if state.committed >= state.enqueued || state.finished { return nil }
                state.commitWaiters.append((state.enqueued, deadline, loop, continuation))
                guard loopWrites, let loop else { return (state.takeWake(), false) }
                let id = ObjectIdentifier(loop)
                if state.loopWritesScheduled.contains(id) { return (Wake(continuation: nil, signal: false), false) }
                state.loopWritesScheduled.append(id)
                return (Wake(continuation: nil, signal: false), true)
            }
            guard let (wake, schedule) = wake else {
                continuation.resume(returning: true)
                return
            }
            if let loop, loopWrites {
                // After what the loop has queued: the exchanges that end in the same pass over
                // its work go in one write.
                if schedule { loop.execute { writer.writeOnLoop(loop) } }
            } else if let loop, wake.continuation != nil || wake.signal {
                // The writer is woken once this loop has run what it has queued: the
                // exchanges that end in the same pass over the loop's work then go in one
                // commit, and the writer thread wakes once for them rather than taking the
                // first alone (bench/HISTORY.md, seventh round: 5.0 against 6.7 KB written and
                // 0.6 against 0.8 context switches a request).
                loop.execute { self.wakeWriter(wake) }
            } else {
                wakeWriter(wake)
            }
        }
    }

    /// The queue, for an event loop to write (see ``State/takeLoopBatch()``).
    func takeLoopBatch() -> [PendingEvent]? {
        state.withLock { $0.takeLoopBatch() }
    }

    /// A loop's write begins: exchanges that wait on it from now on schedule its next one.
    func loopWriteStarted(on loop: any EventLoop) {
        let id = ObjectIdentifier(loop)
        state.withLock { $0.loopWritesScheduled.removeAll { $0 == id } }
    }

    /// A batch an event loop failed to write goes to the writer thread, which writes it again.
    func loopWriteFailed(_ events: [PendingEvent]) {
        let wake = state.withLock { state in
            state.failed = events
            return state.takeWake()
        }
        wakeWriter(wake)
    }

    /// After a loop's writes: work for the writer thread that came meanwhile (and which the
    /// thread, finding a write under way, left): events nobody waits for, or the node
    /// stopping. Not exchanges waiting: each has a loop write of its own coming.
    func wakeWriterAfterLoopWrites() {
        let wake = state.withLock { state -> Wake? in
            let due = state.stopping || state.kicked || state.queue.count >= wakeThreshold
            return due && !state.writing ? state.takeWake() : nil
        }
        if let wake { wakeWriter(wake) }
    }

    /// Waits, as the async writer, until it is due (see ``State/writerDue(threshold:)``).
    func waitUntilWriterDue() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.writerDue(threshold: wakeThreshold), !state.queue.isEmpty || state.stopping { return true }
                state.writer = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Resumes, with false, the waiters whose deadline has passed.
    func expireWaiters(now: ContinuousClock.Instant = .now) {
        let expired = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            var expired: [CheckedContinuation<Bool, Never>] = []
            state.commitWaiters.removeAll { waiter in
                guard waiter.deadline <= now else { return false }
                expired.append(waiter.continuation)
                return true
            }
            return expired
        }
        for waiter in expired { waiter.resume(returning: false) }
    }

    /// Wakes the writer: resumes the async writer's continuation, or signals the thread.
    func wakeWriter(_ wake: Wake) {
        wake.continuation?.resume()
        if wake.signal { writerSignal.signal() }
    }

    /// Wakes the writer if anything is queued, so events nobody waits for (a route still
    /// running, a wire-tap copy) are stored within a fraction of a second.
    func kick() {
        let cutoff = ContinuousClock.now - Self.parkLimit
        let wake = state.withLock { state -> Wake? in
            state.unpark(before: cutoff)
            guard !state.queue.isEmpty else { return nil }
            state.kicked = true
            return state.takeWake()
        }
        if let wake { wakeWriter(wake) }
    }

    /// Lets the writer drain the buffer and return.
    func stop() {
        let (wake, waiters) = state.withLock { state in
            state.stopping = true
            state.unpark(before: nil)
            defer { state.roomWaiters = [] }
            return (state.takeWake(), state.roomWaiters)
        }
        wakeWriter(wake)
        for waiter in waiters { waiter.resume() }
    }

    /// Takes the queue when the writer is due; an empty batch means stop. With `sleeping`,
    /// nil also marks the writer thread asleep, so the next waker signals it.
    func takeBatch(sleeping: Bool = false) -> [PendingEvent]? {
        state.withLock { state in
            // A batch an event loop failed to write: still in flight, still being written.
            if let failed = state.failed.take() { return failed }
            // While an event loop writes, the writer waits: that loop wakes it when done.
            guard state.writerDue(threshold: wakeThreshold), !state.writing, !state.queue.isEmpty || state.stopping else {
                if sleeping { state.threadAsleep = true }
                return nil
            }
            state.kicked = false
            return state.queue.isEmpty ? [] : state.takeQueue()
        }
    }

    /// After a commit: the batch is no longer held; resumes those waiting for it.
    func committed(_ count: Int) {
        let (room, settled) = state.withLock { state in
            state.inFlight = 0
            state.writing = false
            state.committed += Int64(count)
            let committed = state.committed
            let room = state.roomWaiters
            state.roomWaiters = []
            var settled = SettledWaiters(capacity: state.commitWaiters.count)
            state.commitWaiters.removeAll { waiter in
                guard waiter.mark <= committed else { return false }
                settled.add(waiter.continuation, on: waiter.loop)
                return true
            }
            return (room, settled)
        }
        for waiter in room { waiter.resume() }
        settled.resume()
    }

    /// Marks the writer finished and resumes everyone still waiting (the queue is empty by
    /// then, so their events are committed).
    func finish() {
        let waiters = state.withLock { state -> [(Bool, CheckedContinuation<Bool, Never>)] in
            state.finished = true
            defer { state.commitWaiters = [] }
            return state.commitWaiters.map { ($0.mark <= state.committed, $0.continuation) }
        }
        for (committed, waiter) in waiters { waiter.resume(returning: committed) }
    }
}

/// Exchanges whose events are committed, grouped by the event loop each waits on: each
/// other loop gets one task that resumes all of its waiters there, so a commit costs one
/// cross-thread wake per loop rather than one per exchange, and each exchange goes on
/// where its connection is. The loop that wrote resumes its own at once.
struct SettledWaiters {
    private var byLoop: [(loop: any EventLoop, waiters: [CheckedContinuation<Bool, Never>])] = []
    private var elsewhere: [CheckedContinuation<Bool, Never>] = []
    /// The most waiters there can be: each list is made this large once rather than grown.
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func add(_ waiter: CheckedContinuation<Bool, Never>, on loop: (any EventLoop)?) {
        guard let loop else {
            if elsewhere.isEmpty { elsewhere.reserveCapacity(capacity) }
            elsewhere.append(waiter)
            return
        }
        if let index = byLoop.firstIndex(where: { $0.loop === loop }) {
            byLoop[index].waiters.append(waiter)
        } else {
            if byLoop.isEmpty { byLoop.reserveCapacity(4) }
            var waiters: [CheckedContinuation<Bool, Never>] = []
            waiters.reserveCapacity(capacity)
            waiters.append(waiter)
            byLoop.append((loop, waiters))
        }
    }

    func resume() {
        for waiter in elsewhere { waiter.resume(returning: true) }
        for (loop, waiters) in byLoop {
            // A loop that wrote the batch resumes its own waiters without a hop.
            if loop.inEventLoop {
                for waiter in waiters { waiter.resume(returning: true) }
                continue
            }
            loop.execute {
                for waiter in waiters { waiter.resume(returning: true) }
            }
        }
    }
}
