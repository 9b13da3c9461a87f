// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Foundation
import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// Writes the buffer's batches to the store, one write at a time, in order.
///
/// Who writes: with the SQLite store (unless `audit.sync: full`), an exchange that waits
/// for its commit has its own event loop write, once the loop has run what it has queued,
/// everything queued by then (the other waiting exchanges' events too). Such a write only
/// hands the bytes to the kernel (tens of microseconds for a batch), while waking a sleeping
/// writer thread costs more CPU, plus the wait until it runs (bench/HISTORY.md). The writer
/// thread writes the rest: what nobody waits for (the ticker's kick, a full half-buffer), a
/// write that failed (it retries with back-off, off the loops), every write with
/// `audit.sync: full`, what is left when the node stops, and everything for a second after
/// a loop's write took over 20 ms (a disk the kernel throttles writes to; a time slice lost
/// to another thread is shorter). With PostgreSQL an async task writes instead of the thread.
final class AuditWriter: Sendable {
    let buffer: AuditBuffer
    let indexer: AuditIndexer
    let store: any AuditStore
    /// The store event loops write to themselves: a blocking one that does not wait for the disk.
    let loopStore: (any BlockingAuditStore)?
    /// The least time between the starts of two commits that follow each other without a
    /// pause (under load); zero commits as soon as an exchange waits.
    let commitInterval: Duration
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
    let logger: Logger

    init(buffer: AuditBuffer, indexer: AuditIndexer, store: any AuditStore, commitInterval: Duration, loopWritePause: Duration, logger: Logger) {
        self.buffer = buffer
        self.indexer = indexer
        self.store = store
        self.commitInterval = commitInterval
        self.loopWritePause = loopWritePause
        self.logger = logger
        // A commit interval paces the writer thread's writes; the loops would not keep it.
        loopStore = commitInterval > .zero ? nil : (store as? any BlockingAuditStore).flatMap { $0.waitsForDisk ? nil : $0 }
    }

    /// Whether an exchange waiting on an event loop now has that loop write.
    var loopWritesNow: Bool {
        loopsWrite.load(ordering: .relaxed) && DispatchTime.now().uptimeNanoseconds >= loopWritesPausedUntil.load(ordering: .relaxed)
    }

    /// The writer thread is about to run: from now on the loops may write.
    func allowLoopWrites() {
        if loopStore != nil { loopsWrite.store(true, ordering: .relaxed) }
    }

    /// Writes, on the calling event loop, what is queued while exchanges wait for it, unless
    /// a write is under way (the writer then takes the next batch itself). A failed batch
    /// goes to the writer thread, which writes it again with back-off.
    func writeOnLoop(_ loop: any EventLoop) {
        guard let store = loopStore else { return }
        // Exchanges that wait from now on schedule the loop's next write.
        buffer.loopWriteStarted(on: loop)
        while let events = buffer.takeLoopBatch() {
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
                buffer.loopWriteFailed(batch.events)
                return
            }
            buffer.committed(batch.eventCount)
            indexer.wrote(to: store)
        }
        buffer.wakeWriterAfterLoopWrites()
    }

    /// The writer thread: writes each batch (the exchanges waiting for it go on), and wakes
    /// the index thread once enough records wait to be indexed.
    func runThread(_ store: any BlockingAuditStore) {
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
                    if next > now, buffer.queuedCount < buffer.wakeThreshold {
                        let wait = (next - now).components
                        Thread.sleep(forTimeInterval: Double(wait.seconds) + Double(wait.attoseconds) / 1e18)
                    }
                }
                guard let events = buffer.takeBatch(sleeping: true) else {
                    lastStart = nil
                    buffer.writerSignal.wait()
                    continue
                }
                if events.isEmpty {
                    buffer.finish()
                    // The index thread indexes the rest and returns: everything written is
                    // searchable once the node has stopped.
                    indexer.writerStopped()
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
            buffer.committed(batch.eventCount)
            indexer.wrote(to: store)
        }
    }

    /// The writer for stores that write asynchronously (PostgreSQL).
    func run() async {
        var failures = 0
        var pending: AuditBatch?
        while true {
            if pending == nil {
                var events: [PendingEvent]? = buffer.takeBatch()
                while events == nil {
                    await buffer.waitUntilWriterDue()
                    events = buffer.takeBatch()
                }
                guard let events, !events.isEmpty else {
                    buffer.finish()
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
            buffer.committed(batch.eventCount)
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
    static func retryDelayMilliseconds(_ failures: Int) -> Int {
        min(5_000, 50 << min(failures, 7))
    }
}
