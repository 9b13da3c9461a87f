// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB
import Logging
import NIOCore
import NIOPosix
@testable import SwitchboardAudit
import SwitchboardCore
@testable import SwitchboardHTTP
import SwitchboardRouting
import Synchronization
import Testing

/// A store that holds every write until the test opens it, and counts what it committed.
final class GatedStore: AuditStore {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>], committed: [AuditRecord], batches: Int)>((false, [], [], 0))

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    var committed: [AuditRecord] { state.withLock { $0.committed } }
    var batches: Int { state.withLock { $0.batches } }

    func append(_ batch: AuditBatch) async throws {
        let records = try batch.records()
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
        state.withLock {
            $0.committed += records
            $0.batches += 1
        }
    }

    func traces(_ query: TraceQuery) async throws -> [Trace] { [] }
    func prune(before: Int64?, maxBytes: Int64?) async throws -> Int { 0 }
    func append(_ change: SLAEventRecord) async throws {}
    func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] { [] }
    func close() async throws {}
}

/// A store whose first `failures` writes fail; it records what it committed.
final class FailingStore: AuditStore {
    private let state: Mutex<(failures: Int, committed: [AuditRecord], attempts: Int)>

    init(failures: Int) {
        state = Mutex((failures, [], 0))
    }

    var committed: [AuditRecord] { state.withLock { $0.committed } }
    /// Writes tried.
    var attempts: Int { state.withLock { $0.attempts } }

    /// The next writes succeed.
    func heal() {
        state.withLock { $0.failures = 0 }
    }

    func append(_ batch: AuditBatch) async throws {
        let records = try batch.records()
        try state.withLock { state in
            state.attempts += 1
            if state.failures > 0 {
                state.failures -= 1
                throw AuditStoreError("the disk is full")
            }
            state.committed += records
        }
    }

    func traces(_ query: TraceQuery) async throws -> [Trace] { [] }
    func prune(before: Int64?, maxBytes: Int64?) async throws -> Int { 0 }
    func append(_ change: SLAEventRecord) async throws {}
    func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] { [] }
    func close() async throws {}
}

/// The SQLite store, counting the writes the trail makes and where each ran; its first
/// `failures` writes fail.
final class CountingSQLiteStore: BlockingAuditStore {
    let store: SQLiteAuditStore
    private let counts = Mutex<[Int]>([])
    private let attempts = Mutex<(failures: Int, threads: [String])>((0, []))
    /// How long the first write takes, at least.
    private let firstWriteDelay: Duration

    init(path: String, fullSync: Bool = false, failures: Int = 0, firstWriteDelay: Duration = .zero) throws {
        store = try SQLiteAuditStore(path: path, fullSync: fullSync)
        self.firstWriteDelay = firstWriteDelay
        attempts.withLock { $0.failures = failures }
    }

    /// The next writes succeed.
    func heal() {
        attempts.withLock { $0.failures = 0 }
    }

    /// Where each write was tried: the thread's name, or `loop` on an event loop.
    var writers: [String] { attempts.withLock { $0.threads } }

    /// The rows the store keeps for one message, once what it wrote is indexed.
    func rows(of messageID: String) async throws -> Int {
        try store.indexBlocking()
        let queue = try DatabaseQueue(path: store.path)
        defer { try? queue.close() }
        return try await queue.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks WHERE message_id = ?", arguments: [messageID]) ?? 0
        }
    }

    /// Events per commit, in order.
    var batches: [Int] { counts.withLock { $0 } }

    func appendBlocking(_ batch: AuditBatch) throws {
        let thread = MultiThreadedEventLoopGroup.currentEventLoop != nil ? "loop" : Self.threadName()
        let first = try attempts.withLock { attempts in
            attempts.threads.append(thread)
            if attempts.failures > 0 {
                attempts.failures -= 1
                throw AuditStoreError("the disk is full")
            }
            return attempts.threads.count == 1
        }
        if first, firstWriteDelay > .zero { Thread.sleep(forTimeInterval: Double(firstWriteDelay.components.attoseconds) / 1e18 + Double(firstWriteDelay.components.seconds)) }
        try store.appendBlocking(batch)
        counts.withLock { $0.append(batch.eventCount) }
    }

    static func threadName() -> String {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
    }

    func indexBlocking(limit: Int) throws { try store.indexBlocking(limit: limit) }
    var hasUnindexedRecords: Bool { store.hasUnindexedRecords }
    var indexDue: Bool { store.indexDue }
    var waitsForDisk: Bool { store.waitsForDisk }
    func append(_ batch: AuditBatch) async throws { try appendBlocking(batch) }
    func traces(_ query: TraceQuery) async throws -> [Trace] { try await store.traces(query) }
    func prune(before: Int64?, maxBytes: Int64?) async throws -> Int { try await store.prune(before: before, maxBytes: maxBytes) }
    func append(_ change: SLAEventRecord) async throws { try await store.append(change) }
    func slaEvents(route: String?, limit: Int) async throws -> [SLAEventRecord] { try await store.slaEvents(route: route, limit: limit) }
    func close() async throws { try await store.close() }
}
