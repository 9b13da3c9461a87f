// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0
//
// Over 500 lines: the buffer, the writer thread, loop writes, the index thread and
// retention still share this type's lock and state; taking them apart, with
// bench/audit-overhead run before and after, is still to do.

import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchboardCore
import Synchronization

/// The audit trail: an exchange observer that stores every event through a bounded buffer
/// and commits whatever has queued up in one write (group commit), one write at a time.
///
/// Routes never wait for the disk on each event, only in two places: when the buffer is
/// full (back-pressure: the route waits for room, nothing is dropped), and at the end of an
/// exchange, when the engine calls ``settle(_:)`` so the source is acknowledged only once
/// the exchange's events are committed.
///
/// An exchange a consumer delivers gathers its events in an ``ExchangeLog`` (the trail's
/// ``scope(for:)``), which goes to the buffer as one event when the route ends.
///
/// Who writes: with the SQLite store (unless `audit.sync: full`), an exchange that waits
/// for its commit has its own event loop write, once the loop has run what it has queued,
/// everything queued by then (the other waiting exchanges' events too). Such a write only
/// hands the bytes to the kernel (tens of microseconds for a batch), while waking a sleeping
/// writer thread cost about 15 us of CPU on the benchmark machine, plus the wait until it
/// runs (bench/HISTORY.md, tenth round). The writer thread writes the rest: what nobody waits
/// for (the ticker's kick, a full half-buffer), a write that failed (it retries with
/// back-off, off the loops), every write with `audit.sync: full`, what is left when the node
/// stops, and everything for a second after a loop's write took over 20 ms (a disk the
/// kernel throttles writes to; a time slice lost to another thread is shorter).
public final class AuditTrail: ExchangeObserver, Service {
    public struct Retention: Sendable, Equatable {
        /// Records older than this are deleted; nil keeps them.
        public var age: Duration?
        /// The store is kept under this size, oldest records deleted first; nil: no limit.
        public var maxBytes: Int64?
        /// How often retention runs.
        public var every: Duration

        public init(age: Duration? = .seconds(7 * 86_400), maxBytes: Int64? = 1 << 30, every: Duration = .seconds(60)) {
            self.age = age
            self.maxBytes = maxBytes
            self.every = every
        }
    }

    public let store: any AuditStore
    public let policy: AuditPolicy
    public let capacity: Int
    /// How long an exchange waits for its events to be committed before it fails.
    public let commitTimeout: Duration
    /// The least time between the starts of two commits that follow each other without a
    /// pause (under load); zero commits as soon as an exchange waits.
    public let commitInterval: Duration
    let retention: Retention
    /// The store event loops write to themselves: a blocking one that does not wait for the disk.
    private let loopStore: (any BlockingAuditStore)?
    /// The writer thread runs: only then do the loops write (before, nothing is written;
    /// after it stops, nothing more is).
    private let loopsWrite = Atomic<Bool>(false)
    /// Until when (uptime nanoseconds) the writer thread writes instead of the loops: a loop
    /// write that took long (the kernel throttling writes to a slow disk) would hold up all
    /// of that loop's connections; a thread that waits holds up only the exchanges waiting.
    private let loopWritesPausedUntil = Atomic<UInt64>(0)
    /// A loop write that takes longer pauses loop writes for ``loopWritePause``.
    static let slowLoopWrite: Duration = .milliseconds(20)
    /// One second in the node; tests that check the pause make it long enough that a slow
    /// machine cannot see it end.
    let loopWritePause: Duration
    private let wake = DispatchSemaphore(value: 0)
    /// Wakes the index thread: enough records wait, the writer wrote while it slept with
    /// nothing to index, or the writer has stopped.
    private let indexWake = DispatchSemaphore(value: 0)
    /// The writer signalled the index thread, which has not taken the signal yet (so a busy
    /// writer signals once, not after every write).
    private let indexSignalled = Atomic<Bool>(false)
    /// Batches the writer thread has written: the index thread sees it idle when this stays.
    private let writes = Atomic<Int>(0)
    /// The index thread waits with nothing to index: the writer wakes it after a write.
    private let indexerAsleep = Atomic<Bool>(false)
    /// The writer thread has written its last batch.
    private let writerDone = Atomic<Bool>(false)
    let logger: Logger
    private let state: Mutex<State>

    private struct State: ~Copyable {
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
        /// queues those parked longer than ``AuditTrail/parkLimit`` (a long exchange's start
        /// is stored anyway), and a route that finds the buffer full queues them all (so the
        /// writer can make room).
        var parked: [MessageID: Parked] = [:]
        var parkedEvents = 0
        /// The logs of entry exchanges running (``ExchangeLog``), in no order: the ticker
        /// queues what those older than ``AuditTrail/parkLimit`` gathered, as it does parked
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

        /// What it takes to wake the writer, cleared: call ``AuditTrail/wakeWriter(_:)`` with
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

    /// How long an exchange's events may stay parked before they are queued without its end.
    static let parkLimit: Duration = .milliseconds(200)

    /// - Parameters:
    ///   - capacity: Records the buffer holds before routes wait.
    public convenience init(
        store: any AuditStore, policy: AuditPolicy = AuditPolicy(), capacity: Int = 10_000, commitTimeout: Duration = .seconds(10),
        commitInterval: Duration = .zero, retention: Retention = Retention(), logger: Logger
    ) {
        self.init(
            store: store, policy: policy, capacity: capacity, commitTimeout: commitTimeout, commitInterval: commitInterval,
            retention: retention, loopWritePause: .seconds(1), logger: logger
        )
    }

    init(
        store: any AuditStore, policy: AuditPolicy, capacity: Int, commitTimeout: Duration, commitInterval: Duration,
        retention: Retention, loopWritePause: Duration, logger: Logger
    ) {
        self.loopWritePause = loopWritePause
        self.commitTimeout = commitTimeout
        self.commitInterval = commitInterval
        self.store = store
        self.policy = policy
        self.capacity = max(1, capacity)
        self.retention = retention
        self.logger = logger
        self.state = Mutex(State())
        // A commit interval paces the writer thread's writes; the loops would not keep it.
        loopStore = commitInterval > .zero ? nil : (store as? any BlockingAuditStore).flatMap { $0.waitsForDisk ? nil : $0 }
    }

    /// Logs of exchanges whose routes are running (tests: none is left behind).
    var runningLogs: Int {
        state.withLock { $0.logs.count }
    }

    /// Records waiting to be committed.
    public var bufferDepth: Int {
        state.withLock { $0.held }
    }

    public func record(_ event: ExchangeEvent) async {
        guard PendingEvent.keeps(event) else { return }
        if recordWithoutWaiting(event) { return }
        // No room. An exchange's end its log gathered waits in the log (taken here); any
        // other event is built again.
        if let log = log(of: event), case .ended(let whole) = log.append(event, policy: policy) {
            await enqueue(whole)
            return
        }
        await enqueue(PendingEvent(event, policy: policy))
    }

    /// The log of the exchange the current task runs, when `event` is its exchange's.
    private func log(of event: borrowing ExchangeEvent) -> ExchangeLog? {
        guard let log = ExchangeScope.current as? ExchangeLog, log.trail === self, log.messageID == event.message.id else { return nil }
        return log
    }

    /// A log for the exchange's events (see ``ExchangeLog``).
    public func scope(for messageID: MessageID) -> ExchangeScope? {
        let log = ExchangeLog(messageID: messageID, trail: self)
        state.withLock { $0.register(log) }
        return log
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

    /// Step starts are not stored: a step's end carries its start time.
    public var wantsStepStarts: Bool { false }

    /// Queues the event when the buffer has room; false when it is full (``record(_:)``
    /// then waits for room).
    public func recordWithoutWaiting(_ event: ExchangeEvent) -> Bool {
        guard PendingEvent.keeps(event) else { return true }
        if let log = log(of: event) {
            switch log.append(event, policy: policy) {
            case .kept:
                return true
            case .ended(let whole):
                var pending: PendingEvent? = whole
                if tryEnqueue(&pending, closing: log) { return true }
                // No room: the engine calls `record`, which takes it from the log and waits.
                if let whole = pending { log.keep(overflow: whole) }
                return false
            case .notKept:
                break
            }
        }
        var pending: PendingEvent? = PendingEvent(event, policy: policy)
        return tryEnqueue(&pending)
    }

    /// Queues `record` unless the buffer is full, moving it out (nil after); wakes the writer
    /// when it is due. Moved rather than copied: a copy retains all the event holds.
    /// `closing`: the log that gathered `record`, taken off the list, room or not.
    private func tryEnqueue(_ record: inout PendingEvent?, closing log: ExchangeLog? = nil) -> Bool {
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
    public func enqueue(_ record: AuditRecord) async {
        await enqueue(PendingEvent(record))
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

    /// Returns once the exchange's events are committed.
    ///
    /// - Throws: ``ProcessingError`` (503) when the store has not committed them within
    ///   `commitTimeout`: the source is then not acknowledged (the caller gets an error, a
    ///   file stays to be picked up again) instead of waiting without end. The events stay
    ///   queued and are stored once the store recovers.
    public func settle(_ messageID: MessageID) async throws {
        // The exchange's end moved its parked events to the queue; other exchanges' parked
        // events are not waited for.
        guard await waitForCommit(timeout: commitTimeout) else {
            throw ProcessingError(
                "the audit store has not stored this exchange's events within \(formatDuration(commitTimeout)) (see the node's log); the message is not acknowledged",
                status: 503
            )
        }
    }

    /// Waits until everything recorded so far (parked events of exchanges still running
    /// included) is committed.
    ///
    /// - Returns: false when `timeout` passed first (checked by the ticker, so up to 200 ms late).
    @discardableResult
    public func flush(timeout: Duration = .seconds(3600)) async -> Bool {
        state.withLock { $0.unpark(before: nil) }
        return await waitForCommit(timeout: timeout)
    }

    /// Waits until everything queued so far is committed.
    private func waitForCommit(timeout: Duration) async -> Bool {
        // Nothing outstanding: no suspension (a continuation resumed at once still costs a
        // round through the executor).
        if state.withLock({ $0.committed >= $0.enqueued || $0.finished }) { return true }
        let deadline = ContinuousClock.now + timeout
        // Resumed on the event loop it waits on, where its connection lives.
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        // On an event loop, the loop writes (see the type's notes); elsewhere the writer does.
        let loopWrites = loop != nil && loopsWrite.load(ordering: .relaxed)
            && DispatchTime.now().uptimeNanoseconds >= loopWritesPausedUntil.load(ordering: .relaxed)
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
                if schedule { loop.execute { self.writeOnLoop(loop) } }
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

    /// Writes, on the calling event loop, what is queued while exchanges wait for it, unless
    /// a write is under way (the writer then takes the next batch itself). A failed batch
    /// goes to the writer thread, which writes it again with back-off.
    private func writeOnLoop(_ loop: any EventLoop) {
        guard let store = loopStore else { return }
        // Exchanges that wait from now on schedule the loop's next write.
        let id = ObjectIdentifier(loop)
        state.withLock { $0.loopWritesScheduled.removeAll { $0 == id } }
        while let events = state.withLock({ $0.takeLoopBatch() }) {
            let batch = AuditBatch(consume events)
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try store.appendBlocking(batch)
                let ended = DispatchTime.now().uptimeNanoseconds
                if ended - started > UInt64(Self.slowLoopWrite.nanoseconds) {
                    loopWritesPausedUntil.store(ended + UInt64(loopWritePause.nanoseconds), ordering: .relaxed)
                    logger.warning(
                        "an audit write on an event loop took \((ended - started) / 1_000_000) ms; the writer thread writes for the next second",
                        metadata: ["records": "\(batch.eventCount)"]
                    )
                }
            } catch {
                logWriteFailure(error, batch)
                let wake = state.withLock { state in
                    state.failed = batch.events
                    return state.takeWake()
                }
                wakeWriter(wake)
                return
            }
            committed(batch.eventCount)
            wrote(to: store)
        }
        // Work for the writer thread that came while this loop wrote (and which the thread,
        // finding a write under way, left): events nobody waits for, or the node stopping.
        // Not exchanges waiting: each has a loop write of its own coming.
        let wake = state.withLock { state -> Wake? in
            let due = state.stopping || state.kicked || state.queue.count >= wakeThreshold
            return due && !state.writing ? state.takeWake() : nil
        }
        if let wake { wakeWriter(wake) }
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
    private func wakeWriter(_ wake: Wake) {
        wake.continuation?.resume()
        if wake.signal { self.wake.signal() }
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

    private var wakeThreshold: Int { max(1, min(512, capacity / 2)) }

    private var queuedCount: Int { state.withLock { $0.queue.count } }

    /// Commits queued records until graceful shutdown, then commits what is left and returns.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pruneLoop() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    self.kick()
                    self.expireWaiters()
                }
            }
            // Graceful shutdown and cancellation (another service failed) both let the
            // writer commit what is queued and return.
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    if let blocking = self.store as? any BlockingAuditStore {
                        // SQLite: the writer is a thread of its own that commits and wakes
                        // the waiting exchanges directly, with no hops through the event
                        // loops, which are busy with requests. Another thread indexes what it
                        // wrote, so no commit waits for SQLite (its transactions, checkpoints
                        // and their fsyncs).
                        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                            if self.loopStore != nil { self.loopsWrite.store(true, ordering: .relaxed) }
                            startThread(named: "audit-writer") { self.threadWriteLoop(blocking) }
                            // It returns once the writer has stopped and it has indexed the rest.
                            startThread(named: "audit-indexer") {
                                self.threadIndexLoop(blocking)
                                done.resume()
                            }
                        }
                    } else {
                        await self.writeLoop()
                    }
                } onGracefulShutdown: {
                    self.stop()
                }
            } onCancel: {
                self.stop()
            }
            group.cancelAll()
        }
    }

    /// Lets the writer drain the buffer and return.
    public func stop() {
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
    private func takeBatch(sleeping: Bool = false) -> [PendingEvent]? {
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
    private func committed(_ count: Int) {
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
    private func finish() {
        let waiters = state.withLock { state -> [(Bool, CheckedContinuation<Bool, Never>)] in
            state.finished = true
            defer { state.commitWaiters = [] }
            return state.commitWaiters.map { ($0.mark <= state.committed, $0.continuation) }
        }
        for (committed, waiter) in waiters { waiter.resume(returning: committed) }
    }

    /// The writer thread: writes each batch (the exchanges waiting for it go on), and wakes
    /// the index thread once enough records wait to be indexed.
    private func threadWriteLoop(_ store: any BlockingAuditStore) {
        var failures = 0
        var pending: AuditBatch?
        var lastStart: ContinuousClock.Instant?
        while true {
            if pending == nil {
                // Back-to-back commits: wait out the interval since the last one started,
                // so that more exchanges share the next. An idle writer commits at once.
                if let lastStart, commitInterval > .zero {
                    let next = lastStart + commitInterval
                    let now = ContinuousClock.now
                    if next > now, queuedCount < wakeThreshold {
                        let wait = (next - now).components
                        Thread.sleep(forTimeInterval: Double(wait.seconds) + Double(wait.attoseconds) / 1e18)
                    }
                }
                guard let events = takeBatch(sleeping: true) else {
                    lastStart = nil
                    wake.wait()
                    continue
                }
                if events.isEmpty {
                    finish()
                    // The index thread indexes the rest and returns: everything written is
                    // searchable once the node has stopped.
                    writerDone.store(true, ordering: .releasing)
                    indexWake.signal()
                    return
                }
                pending = AuditBatch(consume events)
                lastStart = .now
            }
            guard let batch = pending else { continue }
            do {
                try store.appendBlocking(batch)
                failures = 0
            } catch {
                failures += 1
                logWriteFailure(error, batch)
                Thread.sleep(forTimeInterval: Double(Self.retryDelayMilliseconds(failures)) / 1000)
                continue
            }
            pending = nil
            committed(batch.eventCount)
            wrote(to: store)
        }
    }

    /// After a write (by the writer thread or a loop): wakes the index thread when enough
    /// records wait, or when it sleeps with nothing to index.
    private func wrote(to store: any BlockingAuditStore) {
        // Sequentially consistent with the index thread's look before it sleeps: either it
        // sees this write, or this sees it asleep and wakes it.
        writes.add(1, ordering: .sequentiallyConsistent)
        if store.indexDue || indexerAsleep.load(ordering: .sequentiallyConsistent) { signalIndexer() }
    }

    /// Wakes the index thread, unless it has a wake it has not taken yet.
    private func signalIndexer() {
        if !indexSignalled.exchange(true, ordering: .relaxed) { indexWake.signal() }
    }

    /// The index thread: indexes what the writer wrote once enough records wait (the writer
    /// wakes it), once the writer has written nothing for a moment, and when it stops.
    private func threadIndexLoop(_ store: any BlockingAuditStore) {
        var indexer = Indexer()
        while true {
            if writerDone.load(ordering: .acquiring) {
                indexer.index(store, logger: logger, now: true)
                return
            }
            if store.indexDue, indexer.ready {
                indexer.index(store, logger: logger)
                continue
            }
            let before = writes.load(ordering: .sequentiallyConsistent)
            if store.hasUnindexedRecords {
                if indexWake.wait(timeout: .now() + indexer.idleWait) == .success {
                    // Taken before looking again, so a signal after the look is not missed.
                    indexSignalled.store(false, ordering: .relaxed)
                    continue
                }
            } else {
                // Nothing to index until the writer writes again, and it wakes a sleeping
                // indexer after every write.
                indexerAsleep.store(true, ordering: .sequentiallyConsistent)
                if writes.load(ordering: .sequentiallyConsistent) == before {
                    indexWake.wait()
                    indexSignalled.store(false, ordering: .relaxed)
                }
                indexerAsleep.store(false, ordering: .sequentiallyConsistent)
                continue
            }
            if writes.load(ordering: .relaxed) == before, store.hasUnindexedRecords {
                // The writer has written nothing for a moment: what it wrote is indexed now.
                indexer.index(store, logger: logger)
            }
        }
    }

    /// When the index thread indexes: after a failure it waits before trying again, so a
    /// store that keeps failing is not retried, and logged, many times a second.
    private struct Indexer {
        var failures = 0
        var notBefore: ContinuousClock.Instant?

        /// Whether a recent failure no longer says to wait.
        var ready: Bool { notBefore.map { ContinuousClock.now >= $0 } ?? true }

        /// How long the writer must have been idle before its records are indexed (and
        /// at least what is left of a failure's wait).
        var idleWait: DispatchTimeInterval {
            let wait = notBefore.map { max(.milliseconds(20), $0 - .now) } ?? .milliseconds(20)
            return .microseconds(Int(wait.components.seconds) * 1_000_000 + Int(wait.components.attoseconds / 1_000_000_000_000))
        }

        /// Indexes, unless a recent failure says to wait (`now`: at once regardless).
        mutating func index(_ store: any BlockingAuditStore, logger: Logger, now: Bool = false) {
            if !now, !ready { return }
            do {
                try store.indexBlocking(limit: 20_000)
                failures = 0
                notBefore = nil
            } catch {
                // Nothing is lost: the records stay in the events files past the index
                // position, and are indexed once the store takes them.
                failures += 1
                notBefore = .now + .milliseconds(AuditTrail.retryDelayMilliseconds(failures))
                logger.error("audit store indexing failed; retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The writer for stores that write asynchronously (PostgreSQL).
    private func writeLoop() async {
        var failures = 0
        var pending: AuditBatch?
        while true {
            if pending == nil {
                var events: [PendingEvent]? = takeBatch()
                while events == nil {
                    await withCheckedContinuation { continuation in
                        let resumeNow = state.withLock { state in
                            if state.writerDue(threshold: wakeThreshold), !state.queue.isEmpty || state.stopping { return true }
                            state.writer = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                    events = takeBatch()
                }
                guard let events, !events.isEmpty else {
                    finish()
                    return
                }
                pending = AuditBatch(consume events)
            }
            guard let batch = pending else { continue }
            do {
                try await store.append(batch)
                failures = 0
            } catch {
                // Nothing is dropped: the batch is written again (routes wait once the
                // buffer is full).
                failures += 1
                logWriteFailure(error, batch)
                // Not `Task.sleep`: once the node's shutdown has cancelled this task, it
                // returns at once, and a store that keeps failing was retried in a busy loop.
                await Self.pause(milliseconds: Self.retryDelayMilliseconds(failures))
                continue
            }
            pending = nil
            committed(batch.eventCount)
        }
    }

    private func logWriteFailure(_ error: any Error, _ batch: AuditBatch) {
        logger.error("audit store write failed; retrying", metadata: ["error": "\(error)", "records": "\(batch.eventCount)"])
    }

    /// Waits `milliseconds`, cancelled or not.
    private static func pause(milliseconds: Int) async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { continuation.resume() }
        }
    }

    /// 100 ms after the first failure, doubling to at most 5 s.
    private static func retryDelayMilliseconds(_ failures: Int) -> Int {
        min(5_000, 50 << min(failures, 7))
    }

    private func pruneLoop() async {
        guard retention.age != nil || retention.maxBytes != nil else { return }
        while !Task.isCancelled {
            do {
                let before = retention.age.map { wallClockMicroseconds() - Int64($0.components.seconds) * 1_000_000 }
                let deleted = try await store.prune(before: before, maxBytes: retention.maxBytes)
                if deleted > 0 {
                    logger.info("audit retention pruned records", metadata: ["deleted": "\(deleted)"])
                }
            } catch {
                logger.warning("audit retention failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: retention.every)
        }
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
