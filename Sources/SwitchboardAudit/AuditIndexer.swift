// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Logging
import SwitchboardCore
import Synchronization

/// The index thread (SQLite): makes what the writer wrote searchable, off the writer's
/// path, so no commit waits for SQLite's transactions, checkpoints and their fsyncs. It
/// indexes once enough records wait (the writer wakes it), once the writer has written
/// nothing for a moment, and everything left when the writer stops.
final class AuditIndexer: Sendable {
    /// Wakes the index thread: enough records wait, the writer wrote while it slept with
    /// nothing to index, or the writer has stopped.
    private let wake = DispatchSemaphore(value: 0)
    /// The writer signalled the index thread, which has not taken the signal yet (so a busy
    /// writer signals once, not after every write).
    private let signalled = Atomic<Bool>(false)
    /// Batches the writer has written: the index thread sees it idle when this stays.
    private let writes = Atomic<Int>(0)
    /// The index thread waits with nothing to index: the writer wakes it after a write.
    private let asleep = Atomic<Bool>(false)
    /// The writer has written its last batch.
    private let writerDone = Atomic<Bool>(false)
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// After a write (by the writer thread or a loop): wakes the index thread when enough
    /// records wait, or when it sleeps with nothing to index.
    func wrote(to store: any BlockingAuditStore) {
        // Sequentially consistent with the index thread's look before it sleeps: either it
        // sees this write, or this sees it asleep and wakes it.
        writes.add(1, ordering: .sequentiallyConsistent)
        if store.indexDue || asleep.load(ordering: .sequentiallyConsistent) { signalIndexer() }
    }

    /// The writer has written its last batch: index the rest and return.
    func writerStopped() {
        writerDone.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Wakes the index thread, unless it has a wake it has not taken yet.
    private func signalIndexer() {
        if !signalled.exchange(true, ordering: .relaxed) { wake.signal() }
    }

    /// The index thread: indexes what the writer wrote once enough records wait (the writer
    /// wakes it), once the writer has written nothing for a moment, and when it stops.
    func run(_ store: any BlockingAuditStore) {
        var backoff = Backoff()
        while true {
            if writerDone.load(ordering: .acquiring) {
                backoff.index(store, logger: logger, now: true)
                return
            }
            if store.indexDue, backoff.ready {
                backoff.index(store, logger: logger)
                continue
            }
            let before = writes.load(ordering: .sequentiallyConsistent)
            if store.hasUnindexedRecords {
                if wake.wait(timeout: .now() + backoff.idleWait) == .success {
                    // Taken before looking again, so a signal after the look is not missed.
                    signalled.store(false, ordering: .relaxed)
                    continue
                }
            } else {
                // Nothing to index until the writer writes again, and it wakes a sleeping
                // indexer after every write.
                asleep.store(true, ordering: .sequentiallyConsistent)
                if writes.load(ordering: .sequentiallyConsistent) == before {
                    wake.wait()
                    signalled.store(false, ordering: .relaxed)
                }
                asleep.store(false, ordering: .sequentiallyConsistent)
                continue
            }
            if writes.load(ordering: .relaxed) == before, store.hasUnindexedRecords {
                // The writer has written nothing for a moment: what it wrote is indexed now.
                backoff.index(store, logger: logger)
            }
        }
    }

    /// When the index thread indexes: after a failure it waits before trying again, so a
    /// store that keeps failing is not retried, and logged, many times a second.
    private struct Backoff {
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
                notBefore = .now + .milliseconds(AuditWriter.retryDelayMilliseconds(failures))
                logger.error("audit store indexing failed; retrying", metadata: ["error": "\(error)"])
            }
        }
    }
}
