// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SwitchboardCore

/// The audit trail: an exchange observer that stores every event, and the service that
/// runs the parts doing it (docs/architecture/audit.md has their invariants):
///
/// - ``AuditBuffer`` holds events until they are written, parks an entry exchange's events
///   until its end, and keeps the exchanges waiting for their commits;
/// - ``AuditWriter`` writes its batches (group commit), one write at a time, on the
///   waiting exchange's event loop or on the writer thread;
/// - ``AuditIndexer`` makes what was written searchable, on a thread of its own (SQLite);
/// - ``AuditRetention`` prunes the store;
/// - the stores answer the queries (`SQLiteAuditStore+Queries`, `PostgresAuditStore`).
///
/// Routes never wait for the disk on each event, only in two places: when the buffer is
/// full (back-pressure: the route waits for room, nothing is dropped), and at the end of an
/// exchange, when the engine calls ``settle(_:)`` so the source is acknowledged only once
/// the exchange's events are committed.
///
/// An exchange a consumer delivers gathers its events in an ``ExchangeLog`` (the trail's
/// ``scope(for:)``), which goes to the buffer as one event when the route ends.
public final class AuditTrail: InlineExchangeObserver, Service {
    public typealias Retention = AuditRetention

    public let store: any AuditStore
    public let policy: AuditPolicy
    public var capacity: Int { buffer.capacity }
    /// How long an exchange waits for its events to be committed before it fails.
    public let commitTimeout: Duration
    /// The least time between the starts of two commits that follow each other without a
    /// pause (under load); zero commits as soon as an exchange waits.
    public var commitInterval: Duration { writer.commitInterval }
    let retention: Retention
    let buffer: AuditBuffer
    let writer: AuditWriter
    let indexer: AuditIndexer
    let logger: Logger

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
        self.commitTimeout = commitTimeout
        self.store = store
        self.policy = policy
        self.retention = retention
        self.logger = logger
        buffer = AuditBuffer(capacity: capacity)
        indexer = AuditIndexer(logger: logger)
        writer = AuditWriter(
            buffer: buffer, indexer: indexer, store: store, commitInterval: commitInterval, loopWritePause: loopWritePause, logger: logger
        )
    }

    /// Logs of exchanges whose routes are running (tests: none is left behind).
    var runningLogs: Int {
        buffer.runningLogs
    }

    /// Records waiting to be committed.
    public var bufferDepth: Int {
        buffer.held
    }

    public func record(_ event: ExchangeEvent) async {
        guard PendingEvent.keeps(event) else { return }
        if recordWithoutWaiting(event) { return }
        // No room. An exchange's end its log gathered waits in the log (taken here); any
        // other event is built again.
        if let log = log(of: event), case .ended(let whole) = log.append(event, policy: policy) {
            await buffer.enqueue(whole)
            return
        }
        await buffer.enqueue(PendingEvent(event, policy: policy))
    }

    /// The log of the exchange the current task runs, when `event` is its exchange's.
    private func log(of event: borrowing ExchangeEvent) -> ExchangeLog? {
        // The scope's exact type is compared rather than cast (`as?` from an existential is a
        // runtime call, and this runs for every event).
        guard let scope = ExchangeScopes.current, type(of: scope) == ExchangeLog.self else { return nil }
        let log = unsafeDowncast(scope as AnyObject, to: ExchangeLog.self)
        guard log.trail === self, log.messageID == event.message.id else { return nil }
        return log
    }

    /// A log for the exchange's events (see ``ExchangeLog``).
    package func scope(for messageID: MessageID) -> (any ExchangeScope)? {
        let log = ExchangeLog(messageID: messageID, trail: self)
        buffer.register(log)
        return log
    }

    /// The route is done with `log`'s exchange (see ``AuditBuffer/close(_:)``).
    func close(_ log: ExchangeLog) {
        buffer.close(log)
    }

    /// Step starts are not stored: a step's end carries its start time.
    public var wantsStepStarts: Bool { false }

    /// Queues the event when the buffer has room; false when it is full (``record(_:)``
    /// then waits for room).
    package func recordWithoutWaiting(_ event: ExchangeEvent) -> Bool {
        guard PendingEvent.keeps(event) else { return true }
        if let log = log(of: event) {
            switch log.append(event, policy: policy) {
            case .kept:
                return true
            case .ended(let whole):
                var pending: PendingEvent? = whole
                if buffer.tryEnqueue(&pending, closing: log) { return true }
                // No room: the engine calls `record`, which takes it from the log and waits.
                if let whole = pending { log.keep(overflow: whole) }
                return false
            case .notKept:
                break
            }
        }
        var pending: PendingEvent? = PendingEvent(event, policy: policy)
        return buffer.tryEnqueue(&pending)
    }

    /// Queues `record`, waiting for room when the buffer is full.
    public func enqueue(_ record: AuditRecord) async {
        await buffer.enqueue(PendingEvent(record))
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
        guard await buffer.waitForCommit(timeout: commitTimeout, writer: writer) else {
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
        buffer.unparkAll()
        return await buffer.waitForCommit(timeout: timeout, writer: writer)
    }

    /// Commits queued records until graceful shutdown, then commits what is left and returns.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.retention.run(store: self.store, logger: self.logger) }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    self.buffer.kick()
                    self.buffer.expireWaiters()
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
                            self.writer.allowLoopWrites()
                            startThread(named: "audit-writer") { self.writer.runThread(blocking) }
                            // It returns once the writer has stopped and it has indexed the rest.
                            startThread(named: "audit-indexer") {
                                self.indexer.run(blocking)
                                done.resume()
                            }
                        }
                    } else {
                        await self.writer.run()
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
        buffer.stop()
    }
}
