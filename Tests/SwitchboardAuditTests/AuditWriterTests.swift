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

@Suite struct AuditWriterTests {
    static func record(_ n: Int) -> AuditRecord {
        AuditRecord(messageID: "m\(n)", correlationID: "c", routeID: "r", entry: true, phase: "completed", startedAt: Int64(n), bodySize: 0)
    }

    static let quickRoute = """
        routes:
          - id: quick
            from: direct:quick
            steps:
              - set-body: { value: done }
        """

    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func aFullBufferMakesRoutesWaitInsteadOfDroppingEvents() async throws {
        let store = GatedStore()
        let trail = AuditTrail(store: store, capacity: 4, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        for n in 0..<4 { await trail.enqueue(Self.record(n)) }
        // The fifth waits for room: the store has committed nothing yet.
        let fifthQueued = AsyncValue<Void>()
        let producer = Task {
            await trail.enqueue(Self.record(4))
            fifthQueued.set(())
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(fifthQueued.current == nil, "the fifth record was queued past the buffer's capacity")
        #expect(trail.bufferDepth == 4)
        store.open()
        await fifthQueued.value
        await producer.value
        await trail.flush()
        #expect(store.committed.map(\.messageID) == (0..<5).map { "m\($0)" })
        trail.stop()
    }

    @Test func aRouteWaitsForRoomWhenTheBufferIsFull() async throws {
        let store = GatedStore()
        let trail = AuditTrail(store: store, capacity: 1, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        let engine = try RouteLoader(catalog: AdapterCatalog([]), observers: [trail], logger: Self.logger, environment: [:])
            .load(sources: [(Self.quickRoute, "routes.yaml")])
        // An exchange's events go to the buffer together when its route ends (its log): the
        // first exchange fills it, and the second's end waits for room.
        let first = Task {
            try await engine.process(routeID: "quick", Exchange(message: Message(body: ByteBuffer(string: "one")), pattern: .inOut))
        }
        for _ in 0..<100 where trail.bufferDepth < 1 { try await Task.sleep(for: .milliseconds(10)) }
        let secondEnded = AsyncValue<Void>()
        let second = Task {
            let reply = try await engine.process(routeID: "quick", Exchange(message: Message(body: ByteBuffer(string: "two")), pattern: .inOut))
            secondEnded.set(())
            return reply
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(trail.bufferDepth == 1, "the second exchange's events were queued past the buffer's capacity")
        #expect(secondEnded.current == nil)
        store.open()
        #expect(try await first.value.message.bodyString == "done")
        #expect(try await second.value.message.bodyString == "done")
        #expect(store.committed.map(\.phase) == ["started", "completed", "completed", "started", "completed", "completed"])
        trail.stop()
    }

    @Test func anExchangeIsAnsweredOnlyAfterItsEventsAreCommitted() async throws {
        let store = GatedStore()
        let trail = AuditTrail(store: store, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        let engine = try RouteLoader(catalog: AdapterCatalog([]), observers: [trail], logger: Self.logger, environment: [:])
            .load(sources: [(Self.quickRoute, "routes.yaml")])
        let answered = AsyncValue<String>()
        let call = Task {
            let reply = try await engine.process(routeID: "quick", Exchange(message: Message(body: ByteBuffer(string: "go")), pattern: .inOut))
            answered.set(reply.message.bodyString)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(answered.current == nil, "the route answered before its audit events were committed")
        store.open()
        #expect(await answered.value == "done")
        try await call.value
        // Route start, the step's end, the route's end: all committed before the answer.
        #expect(store.committed.map(\.phase) == ["started", "completed", "completed"])
        trail.stop()
    }

    @Test func aStoreThatCannotKeepUpFailsTheExchangeInsteadOfHangingIt() async throws {
        let store = GatedStore()
        let trail = AuditTrail(store: store, commitTimeout: .milliseconds(300), retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        let engine = try RouteLoader(catalog: AdapterCatalog([]), observers: [trail], logger: Self.logger, environment: [:])
            .load(sources: [(Self.quickRoute, "routes.yaml")])
        await #expect {
            try await engine.process(routeID: "quick", Exchange(message: Message(body: ByteBuffer(string: "go")), pattern: .inOut))
        } throws: { error in
            guard let error = error as? ProcessingError else { return false }
            return error.status == 503 && error.message.contains("has not stored this exchange's events within 300ms")
        }
        // Nothing is lost: once the store recovers the events are stored.
        store.open()
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(store.committed.map(\.phase) == ["started", "completed", "completed"])
        trail.stop()
    }

    @Test func aSourceRefusedForWantOfStoredEventsIsShownRefusedInItsTrace() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-refused-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // A full disk: every write fails until it is healed.
        let store = try CountingSQLiteStore(path: folder + "/audit.db", failures: .max)
        let trail = AuditTrail(store: store, commitTimeout: .milliseconds(300), retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        let engine = try RouteLoader(catalog: AdapterCatalog([]), observers: [trail], logger: Self.logger, environment: [:])
            .load(sources: [(Self.quickRoute, "routes.yaml")])
        await #expect {
            try await engine.process(routeID: "quick", Exchange(message: Message(body: ByteBuffer(string: "go")), pattern: .inOut))
        } throws: { error in
            (error as? ProcessingError)?.status == 503
        }
        // Space comes back: the route's events are stored, and with them the refusal.
        store.heal()
        var traces: [Trace] = []
        for _ in 0..<250 {
            _ = await trail.flush(timeout: .seconds(10))
            traces = try await store.traces(TraceQuery(routeID: "quick"))
            if traces.first?.notAcknowledged == true { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(traces.count == 1, "listed once though it has two end rows")
        let trace = try #require(traces.first)
        #expect(trace.status == "failed")
        #expect(trace.events.contains { $0.error?.contains("the source was answered 503 and not acknowledged") == true }, "\(trace.events)")
        let text = TraceRenderer().render(trace)
        #expect(text.contains("not acknowledged") && text.contains("503"), "\(text)")
        #expect(try await store.traces(TraceQuery(routeID: "quick", status: .failed)).count == 1)
        #expect(try await store.traces(TraceQuery(routeID: "quick", status: .ok)).isEmpty)
        trail.stop()
    }

    @Test func aTraceIsRefusedWhateverTheOrderItsEventsWereStoredIn() {
        let completed = AuditRecord(messageID: "m", correlationID: "m", routeID: "r", entry: true, phase: "completed", startedAt: 1, bodySize: 0)
        var refused = AuditRecord(messageID: "m", correlationID: "m", routeID: "r", entry: true, phase: "failed", startedAt: 2, bodySize: 0)
        refused.detail = ExchangeEvent.notAcknowledged
        refused.error = "the source was answered 503 and not acknowledged"
        #expect(Trace(messageID: "m", events: [completed, refused]).status == "failed")
        #expect(Trace(messageID: "m", events: [refused, completed]).status == "failed")
        #expect(Trace(messageID: "m", events: [completed]).status == "ok")
    }

    @Test func writesAreGroupCommitted() async throws {
        let store = GatedStore()
        let trail = AuditTrail(store: store, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        // Events nobody waits for stay queued (the ticker stores them within 200 ms); a
        // waiting exchange commits everything queued in one transaction.
        for n in 0..<100 { await trail.enqueue(Self.record(n)) }
        store.open()
        await trail.flush()
        #expect(store.committed.count == 100)
        #expect(store.batches == 1)
        // With nobody waiting, the ticker commits what is queued.
        await trail.enqueue(Self.record(100))
        for _ in 0..<50 where store.committed.count < 101 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(store.committed.count == 101)
        #expect(store.batches == 2)
        trail.stop()
    }

    @Test func aFailedWriteIsTriedAgainAndWhatQueuedMeanwhileFollows() async throws {
        let store = FailingStore(failures: 2)
        let trail = AuditTrail(store: store, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        for n in 0..<10 { await trail.enqueue(Self.record(n)) }
        let first = Task { await trail.flush(timeout: .seconds(10)) }
        // Queued while the first writes fail: stored after the earlier ones, each once.
        try await Task.sleep(for: .milliseconds(20))
        for n in 10..<20 { await trail.enqueue(Self.record(n)) }
        #expect(await first.value)
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(store.committed.map(\.messageID) == (0..<20).map { "m\($0)" })
        #expect(trail.bufferDepth == 0)
        trail.stop()
    }

    @Test func aCancelledWriterRetriesAFailingStoreWithBackOffNotInABusyLoop() async throws {
        // Shutdown past its time limit cancels the writer, which still writes what is queued:
        // a store that keeps failing is tried again after 100 ms, 200, 400, ... (about 20
        // tries in the first minute), not as fast as it fails.
        let store = FailingStore(failures: 1_000_000)
        let trail = AuditTrail(store: store, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        for n in 0..<3 { await trail.enqueue(Self.record(n)) }
        writer.cancel()
        try await Task.sleep(for: .milliseconds(500))
        #expect(store.attempts >= 1)
        #expect(store.attempts <= 20, "\(store.attempts) writes tried")
        #expect(store.committed.isEmpty)
        // Once the store takes them, the writer writes them and returns.
        store.heal()
        try? await writer.value
        #expect(store.committed.map(\.messageID) == ["m0", "m1", "m2"])
    }

    @Test func stoppingCommitsWhatIsQueued() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        let trail = AuditTrail(store: store, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        for n in 0..<50 { await trail.enqueue(Self.record(n)) }
        trail.stop()
        try await trail.run()
        #expect(try await store.traces(TraceQuery(limit: 100)).count == 50)
    }

    @Test func recordsTheIndexRefusesStayAndAreIndexedOnceItTakesThem() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        // A second connection makes the store refuse one message's row, mid-batch.
        let other = try DatabaseQueue(path: path)
        try await other.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON audit_chunks WHEN NEW.message_id = 'm2' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        }
        await #expect(throws: AuditStoreError.self) {
            try await store.append([Self.record(1), Self.record(2), Self.record(3)])
        }
        // The row indexed before the refused one was rolled back with it, and a query says
        // why it cannot index.
        let rows = try await other.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") }
        #expect(rows == 0)
        do {
            _ = try await store.traces(TraceQuery(limit: 10))
            Issue.record("a query answered while records could not be indexed")
        } catch {
            #expect("\(error)".contains("indexing audit events failed: refused"), "\(error)")
        }
        // Once the store takes them, the records written are indexed, each once, without
        // being written again.
        try await other.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m3", "m2", "m1"])
        try await store.append([Self.record(4)])
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m4", "m3", "m2", "m1"])
        try other.close()
        try await store.close()
    }

    @Test func backToBackCommitsAreSpacedByTheCommitInterval() async throws {
        let path = temporarySQLitePath()
        let store = try CountingSQLiteStore(path: path)
        let interval = Duration.seconds(3)
        let trail = AuditTrail(store: store, commitInterval: interval, retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        defer { writer.cancel() }
        // An idle writer commits at once.
        let beforeFirst = ContinuousClock.now
        await trail.enqueue(Self.record(0))
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(store.batches == [1])
        // Two exchanges that wait one after the other within the interval share a commit
        // (without the interval, the first would be committed alone as soon as it waits).
        await trail.enqueue(Self.record(1))
        let first = Task { await trail.flush(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        await trail.enqueue(Self.record(2))
        // The first commit started after `beforeFirst`: if the machine (busy with the other
        // suites) held this test up past the interval since then, the writer was free to
        // commit the first exchange alone, and the grouping says nothing.
        let withinInterval = ContinuousClock.now - beforeFirst < interval
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(await first.value)
        if withinInterval {
            #expect(store.batches == [1, 2])
        }
        #expect(store.batches.reduce(0, +) == 3)
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID).sorted() == ["m0", "m1", "m2"])
        trail.stop()
    }

    /// The events of an exchange that arrived, one step, and its end.
    static func exchangeEvents(_ message: Message) -> (start: ExchangeEvent, step: ExchangeEvent, end: ExchangeEvent) {
        let step = StepInfo(routeID: "r", index: 0, path: "0", kind: "set-body")
        let start = wallClockMicroseconds()
        return (
            ExchangeEvent(phase: .started, message: message, routeID: "r", step: nil, timestampMicros: start),
            ExchangeEvent(
                phase: .completed, message: message, input: message, routeID: "r", step: step, timestampMicros: start + 20, duration: .microseconds(5)
            ),
            ExchangeEvent(phase: .completed, message: message, input: message, routeID: "r", step: nil, timestampMicros: start + 30, duration: .microseconds(30))
        )
    }

    /// The rows in the index, read straight from the table (no query indexes first).
    static func indexedRows(_ queue: DatabaseQueue) async throws -> Int {
        try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") ?? 0 }
    }

    /// A trail over a new SQLite store, its writer running.
    static func runningSQLiteTrail(
        fullSync: Bool = false, failures: Int = 0, firstWriteDelay: Duration = .zero
    ) throws -> (CountingSQLiteStore, AuditTrail, Task<Void, any Error>) {
        let store = try CountingSQLiteStore(path: temporarySQLitePath(), fullSync: fullSync, failures: failures, firstWriteDelay: firstWriteDelay)
        // A slow write's pause outlasts any test: a loaded machine cannot see it end.
        let trail = AuditTrail(
            store: store, policy: AuditPolicy(), capacity: 10_000, commitTimeout: .seconds(10), commitInterval: .zero,
            retention: .init(age: nil, maxBytes: nil), loopWritePause: .seconds(3600), logger: logger
        )
        return (store, trail, Task { try await trail.run() })
    }

    @Test func theWriterIndexesWhatItWroteWhenIdleAndWhenItStops() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        let queue = try DatabaseQueue(path: store.store.path)
        defer { try? queue.close() }
        func rows() async throws -> Int { try await Self.indexedRows(queue) }
        for n in 0..<5 { await trail.enqueue(Self.record(n)) }
        #expect(await trail.flush(timeout: .seconds(10)))
        // Written: the rows come once the writer has had nothing to do for a moment (no
        // query has indexed them; this reads the table directly).
        var seen = try await rows()
        for _ in 0..<500 where seen < 5 {
            try await Task.sleep(for: .milliseconds(20))
            seen = try await rows()
        }
        #expect(seen == 5)
        // Written and not yet indexed when the trail stops: indexed before it returns.
        for n in 5..<8 { await trail.enqueue(Self.record(n)) }
        trail.stop()
        try await writer.value
        #expect(try await rows() == 8)
        #expect(store.batches.reduce(0, +) == 8)
    }

    /// The writer and index threads carry their names to the system (`top -H`, `ps -L`).
    @Test func theWriterAndIndexThreadsAreNamed() async throws {
        let (_, trail, writer) = try Self.runningSQLiteTrail()
        func names() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return Set(tasks.compactMap { task in
                (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            })
        }
        var seen = names()
        for _ in 0..<250 where !seen.isSuperset(of: ["audit-writer", "audit-indexer"]) {
            try await Task.sleep(for: .milliseconds(20))
            seen = names()
        }
        #expect(seen.isSuperset(of: ["audit-writer", "audit-indexer"]))
        trail.stop()
        try await writer.value
    }

    /// Under writes that never pause, the index thread indexes whenever 512 records wait,
    /// again and again, also after it has caught up and gone to sleep in between (not only
    /// once the writer goes idle, or when it stops).
    @Test func theIndexKeepsUpWhileTheWriterNeverPauses() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        let queue = try DatabaseQueue(path: store.store.path)
        defer { try? queue.close() }
        func rows() async throws -> Int { try await Self.indexedRows(queue) }
        var written = 0
        for round in 1...4 {
            // Records without a pause, until two index transactions' worth are indexed.
            let goal = written + 2 * SQLiteAuditStore.indexBatch
            var indexed = try await rows()
            let limit = written + 40 * SQLiteAuditStore.indexBatch
            while written < limit, indexed < goal {
                for _ in 0..<64 {
                    await trail.enqueue(Self.record(written))
                    written += 1
                }
                #expect(await trail.flush(timeout: .seconds(10)))
                indexed = try await rows()
            }
            #expect(indexed >= goal, "round \(round): \(indexed) rows indexed of \(written) written")
            // A pause: the rest is indexed, and the index thread has nothing left to do.
            for _ in 0..<500 where indexed < written {
                try await Task.sleep(for: .milliseconds(20))
                indexed = try await rows()
            }
            #expect(indexed == written)
        }
        trail.stop()
        try await writer.value
        #expect(try await rows() == written)
    }

    /// Indexing runs on a thread of its own: a commit does not wait for SQLite. Another
    /// connection holds SQLite's write lock, so an index transaction waits (up to the 10 s busy
    /// timeout) while records keep being committed to the events files.
    @Test func commitsGoOnWhileTheIndexWaitsForSQLite() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let queue = try DatabaseQueue(path: store.store.path, configuration: configuration)
        defer { try? queue.close() }
        try queue.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        // Enough records for an index transaction, which now waits for the lock.
        for n in 0..<(SQLiteAuditStore.indexBatch + 10) { await trail.enqueue(Self.record(n)) }
        #expect(await trail.flush(timeout: .seconds(8)))
        // Committed while the index still waits (a writer that indexed itself would sit in
        // that transaction until the busy timeout, past this flush's timeout).
        for n in 1_000..<1_005 { await trail.enqueue(Self.record(n)) }
        #expect(await trail.flush(timeout: .seconds(8)))
        let indexed = try await Self.indexedRows(queue)
        #expect(indexed == 0)
        try queue.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        trail.stop()
        try await writer.value
        let rows = try await Self.indexedRows(queue)
        #expect(rows == SQLiteAuditStore.indexBatch + 15)
    }

    @Test func anExchangeThatSpansCommitsIsStoredAsOneRow() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let slow = Message(body: ByteBuffer(string: "slow"))
        let quick = Message(body: ByteBuffer(string: "quick"))
        let slowEvents = Self.exchangeEvents(slow)
        let quickEvents = Self.exchangeEvents(quick)
        // The slow exchange starts; a quick one runs whole and is committed meanwhile.
        #expect(trail.recordWithoutWaiting(slowEvents.start))
        for event in [quickEvents.start, quickEvents.step, quickEvents.end] { #expect(trail.recordWithoutWaiting(event)) }
        try await trail.settle(quick.id)
        #expect(store.batches == [3])
        #expect(trail.bufferDepth == 1)
        for event in [slowEvents.step, slowEvents.end] { #expect(trail.recordWithoutWaiting(event)) }
        try await trail.settle(slow.id)
        #expect(store.batches == [3, 3])
        // One row, holding the three events in order.
        let rows = try await store.rows(of: slow.id.description)
        #expect(rows == 1)
        let trace = try #require(try await store.traces(TraceQuery(messageID: slow.id.description)).first)
        #expect(trace.events.map(\.phase) == ["started", "completed", "completed"])
        trail.stop()
    }

    /// Eight exchanges end in one pass over an event loop and wait for their events.
    static func endOnOneLoop(_ trail: AuditTrail) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The executor the HTTP listener runs a connection's route on.
        let executor = LoopTaskExecutor.on(loop)
        let messages = (0..<8).map { Message(body: ByteBuffer(string: "m\($0)")) }
        // Eight exchanges end in the same pass: their tasks are all started from one job on
        // the loop, so they run one after the other before anything else the loop does.
        let started = AsyncValue<[Task<Void, any Error>]>()
        loop.execute {
            started.set(messages.map { message in
                Task(executorPreference: executor) {
                    let events = Self.exchangeEvents(message)
                    for event in [events.start, events.step, events.end] { #expect(trail.recordWithoutWaiting(event)) }
                    try await trail.settle(message.id)
                }
            })
        }
        for task in await started.value { try await task.value }
        try await group.shutdownGracefully()
    }

    @Test func exchangesEndingInOnePassOverAnEventLoopShareOneCommit() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        // The writer thread is asleep: nothing is queued.
        try await Task.sleep(for: .milliseconds(50))
        try await Self.endOnOneLoop(trail)
        // The first to wait had the loop write only once it had run the others: one commit,
        // written on the loop itself, without waking the writer thread.
        #expect(store.batches == [24])
        #expect(store.writers == ["loop"])
        trail.stop()
    }

    @Test func aWriteThatFailsOnTheLoopIsWrittenAgainByTheWriterThread() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail(failures: 1)
        defer { writer.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        // Settled once the writer thread has written the batch the loop could not.
        try await Self.endOnOneLoop(trail)
        #expect(store.batches == [24])
        #expect(store.writers == ["loop", "audit-writer"])
        #expect(trail.bufferDepth == 0)
        trail.stop()
    }

    @Test func aSlowWriteOnALoopHandsTheNextWritesToTheWriterThread() async throws {
        // The kernel throttling writes to a slow disk: the loop waits, and with it all of its
        // connections. The next writes, for a second, are the writer thread's.
        let (store, trail, writer) = try Self.runningSQLiteTrail(firstWriteDelay: .milliseconds(60))
        defer { writer.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        try await Self.endOnOneLoop(trail)
        try await Self.endOnOneLoop(trail)
        #expect(store.batches == [24, 24])
        #expect(store.writers == ["loop", "audit-writer"])
        trail.stop()
    }

    @Test func withFullSyncTheWriterThreadWritesAndTheLoopsDoNot() async throws {
        // A write that waits for the disk would hold up the loop's connections.
        let (store, trail, writer) = try Self.runningSQLiteTrail(fullSync: true)
        defer { writer.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        try await Self.endOnOneLoop(trail)
        #expect(store.batches == [24])
        #expect(store.writers == ["audit-writer"])
        trail.stop()
    }

    @Test func aLongExchangesStartIsStoredBeforeItEnds() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "long"))
        let events = Self.exchangeEvents(message)
        #expect(trail.recordWithoutWaiting(events.start))
        // The ticker queues it once it has been parked past the limit.
        #expect(try await Self.firstStored(message, in: store).first?.events.map(\.phase) == ["started"])
        // Its later events are queued directly, in a row of their own.
        for event in [events.step, events.end] { #expect(trail.recordWithoutWaiting(event)) }
        try await trail.settle(message.id)
        #expect(try await store.rows(of: message.id.description) == 2)
        trail.stop()
    }

    /// The message's traces once the store has any (up to 4 s).
    static func firstStored(_ message: Message, in store: CountingSQLiteStore) async throws -> [Trace] {
        var stored: [Trace] = []
        for _ in 0..<200 where stored.isEmpty {
            try await Task.sleep(for: .milliseconds(20))
            stored = try await store.traces(TraceQuery(messageID: message.id.description))
        }
        return stored
    }

    /// Records `events` as the engine does for an entry route run within the trail's scope
    /// for `message` (its ``ExchangeLog``), and ends the scope.
    static func recordInScope(_ trail: AuditTrail, _ message: Message, _ events: [ExchangeEvent]) -> [Bool] {
        let scope = trail.scope(for: message.id)
        defer { scope?.end() }
        return ExchangeScope.$current.withValue(scope) { events.map { trail.recordWithoutWaiting($0) } }
    }

    @Test func anExchangesLogGoesToTheBufferWholeWhenItsRouteEnds() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(headers: ["X-Region": "EU"], body: ByteBuffer(string: "whole"))
        let events = Self.exchangeEvents(message)
        let scope = try #require(trail.scope(for: message.id))
        ExchangeScope.$current.withValue(scope) {
            #expect(trail.recordWithoutWaiting(events.start))
            #expect(trail.recordWithoutWaiting(events.step))
            // Gathered in the log: nothing in the buffer until the route ends.
            #expect(trail.bufferDepth == 0)
            #expect(trail.runningLogs == 1)
            #expect(trail.recordWithoutWaiting(events.end))
            // The end takes the log off the trail's list.
            #expect(trail.runningLogs == 0)
        }
        scope.end()
        // The three events are one in the buffer, and one record and row in the store.
        #expect(trail.bufferDepth == 1)
        try await trail.settle(message.id)
        #expect(store.batches == [1])
        #expect(try await store.rows(of: message.id.description) == 1)
        let trace = try #require(try await store.traces(TraceQuery(messageID: message.id.description)).first)
        #expect(trace.events.map(\.phase) == ["started", "completed", "completed"])
        #expect(trace.events.filter { $0.stepKind == "set-body" }.count == 1)
        // The arrival headers went to the row and read back onto the route's start.
        #expect(trace.events.first?.headerPairs == [["X-Region", "EU"]])
        #expect(trace.status == "ok")
        trail.stop()
    }

    @Test func eventsOfOtherMessagesOrAfterTheEndDoNotGoIntoTheLog() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "parent"))
        let child = Message(body: ByteBuffer(string: "child"))
        let events = Self.exchangeEvents(message)
        let childStep = Self.exchangeEvents(child).step
        let late = Self.exchangeEvents(message).step
        let scope = try #require(trail.scope(for: message.id))
        ExchangeScope.$current.withValue(scope) {
            #expect(trail.recordWithoutWaiting(events.start))
            // A child's event (a split part's task sees the scope too) is queued on its own.
            #expect(trail.recordWithoutWaiting(childStep))
            #expect(trail.bufferDepth == 1)
            #expect(trail.recordWithoutWaiting(events.end))
            #expect(trail.bufferDepth == 2)
            // After the end (a dead letter's event), the log takes nothing more.
            #expect(trail.recordWithoutWaiting(late))
            #expect(trail.bufferDepth == 3)
        }
        scope.end()
        try await trail.settle(message.id)
        let trace = try #require(try await store.traces(TraceQuery(messageID: message.id.description)).first)
        #expect(trace.events.map(\.phase) == ["started", "completed", "completed"])
        #expect(try await store.traces(TraceQuery(messageID: child.id.description)).first?.events.count == 1)
        trail.stop()
    }

    @Test func aLongExchangesLogIsQueuedBeforeItsRouteEnds() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "long"))
        let events = Self.exchangeEvents(message)
        let scope = try #require(trail.scope(for: message.id))
        ExchangeScope.$current.withValue(scope) { #expect(trail.recordWithoutWaiting(events.start)) }
        // The ticker queues what the log holds once it is older than the limit, and takes
        // the log off the list.
        #expect(try await Self.firstStored(message, in: store).first?.events.map(\.phase) == ["started"])
        #expect(trail.runningLogs == 0)
        // Its later events are queued directly, in a row of their own.
        ExchangeScope.$current.withValue(scope) {
            for event in [events.step, events.end] { #expect(trail.recordWithoutWaiting(event)) }
        }
        scope.end()
        try await trail.settle(message.id)
        #expect(try await store.rows(of: message.id.description) == 2)
        let trace = try #require(try await store.traces(TraceQuery(messageID: message.id.description)).first)
        #expect(trace.events.map(\.phase) == ["started", "completed", "completed"])
        trail.stop()
    }

    @Test func aLogWhoseRouteNeverEndedIsQueuedWhenItsScopeEnds() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "cut"))
        let events = Self.exchangeEvents(message)
        #expect(Self.recordInScope(trail, message, [events.start, events.step]) == [true, true])
        #expect(trail.bufferDepth == 1)
        #expect(await trail.flush(timeout: .seconds(10)))
        let trace = try #require(try await store.traces(TraceQuery(messageID: message.id.description)).first)
        #expect(trace.events.map(\.phase) == ["started", "completed"])
        // A scope whose route recorded nothing leaves nothing, and no log behind.
        _ = Self.recordInScope(trail, Message(body: ByteBuffer(string: "none")), [])
        #expect(trail.bufferDepth == 0)
        #expect(trail.runningLogs == 0)
        trail.stop()
    }

    @Test func flushStoresWhatTheLogsOfExchangesStillRunningHold() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "running"))
        let scope = try #require(trail.scope(for: message.id))
        ExchangeScope.$current.withValue(scope) { #expect(trail.recordWithoutWaiting(Self.exchangeEvents(message).start)) }
        #expect(trail.runningLogs == 1)
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(store.batches == [1])
        #expect(trail.runningLogs == 0)
        #expect(try await store.traces(TraceQuery(messageID: message.id.description)).first?.events.map(\.phase) == ["started"])
        scope.end()
        trail.stop()
    }

    @Test func flushStoresTheEventsOfExchangesStillRunning() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(body: ByteBuffer(string: "running"))
        #expect(trail.recordWithoutWaiting(Self.exchangeEvents(message).start))
        #expect(await trail.flush(timeout: .seconds(10)))
        #expect(store.batches == [1])
        #expect(trail.bufferDepth == 0)
        trail.stop()
    }

    @Test func theArrivalHeadersAreStoredOnceAndReadBackOntoTheRouteStart() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        var start = Self.record(1)
        start.phase = "started"
        start.headers = #"[["X-Region","EU"]]"#
        // The same message entering again in the same batch (a replay): its headers stay
        // with its own event.
        var again = start
        again.startedAt = 5
        again.headers = #"[["X-Region","US"]]"#
        let end = Self.record(1)
        try await store.append([start, again, end])
        let trace = try #require(try await store.traces(TraceQuery(messageID: "m1")).first)
        #expect(trace.events.filter { $0.phase == "started" }.map(\.headers) == [start.headers, again.headers])
        // The row keeps the first in its headers column (what --header searches), not twice.
        let headers = try await DatabaseQueue(path: path).read { db in
            try String.fetchOne(db, sql: "SELECT headers FROM audit_chunks WHERE message_id = 'm1'")
        }
        #expect(headers == start.headers)
        let events = try #require(try await store.storedEvents(messageID: "m1").first)
        #expect(!events.contains("EU"))
        #expect(events.contains(#""headers":[["X-Region","US"]]"#))
        #expect(try await store.traces(TraceQuery(header: ("x-region", "EU"))).map(\.messageID) == ["m1"])
    }

    @Test func retentionDeletesByAgeAndBySize() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        let now = wallClockMicroseconds()
        let day: Int64 = 86_400_000_000
        var records: [AuditRecord] = []
        for n in 0..<100 {
            var record = Self.record(n)
            record.startedAt = n < 40 ? now - 10 * day : now
            records.append(record)
        }
        try await store.append(records)
        let aged = try await store.prune(before: now - 7 * day, maxBytes: nil)
        #expect(aged == 40)
        #expect(try await store.traces(TraceQuery(limit: 1000)).count == 60)

        // Size: fill with 2 KiB bodies, then keep the store under 256 KiB.
        var big: [AuditRecord] = []
        for n in 0..<400 {
            var record = Self.record(1000 + n)
            record.startedAt = now
            record.bodyPrefix = Array(repeating: UInt8(ascii: "x"), count: 2048)
            big.append(record)
        }
        try await store.append(big)
        let trimmed = try await store.prune(before: nil, maxBytes: 256 * 1024)
        #expect(trimmed > 0)
        let remaining = try await store.traces(TraceQuery(limit: 10_000)).map(\.messageID)
        #expect(remaining.count == 460 - trimmed)
        // The oldest went first.
        #expect(!remaining.contains("m40"))
        #expect(remaining.contains("m1399"))
    }

    @Test func manyRecordsAreIndexedSixteenToAStatementEachIntoItsOwnRow() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        // Two statements of sixteen rows, and five rows one by one.
        var records: [AuditRecord] = []
        for n in 0..<37 {
            var record = Self.record(n)
            record.correlationID = "c\(n)"
            record.detail = "event \(n)"
            records.append(record)
        }
        try await store.append(records)
        for n in [0, 15, 16, 31, 32, 36] {
            let trace = try #require(try await store.traces(TraceQuery(messageID: "m\(n)")).first)
            #expect(trace.events.map(\.detail) == ["event \(n)"])
            #expect(trace.events.map(\.correlationID) == ["c\(n)"])
            #expect(trace.events.map(\.startedAt) == [Int64(n)])
        }
        let rows = try await DatabaseQueue(path: path).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") ?? 0
        }
        #expect(rows == 37)
        #expect(try await store.traces(TraceQuery(correlationID: "c20")).map(\.messageID) == ["m20"])
    }

    @Test func eventsGoToTheEventsFilesAndRowsPointAtThem() async throws {
        let path = temporarySQLitePath()
        // Small files, so the records span several.
        let store = try SQLiteAuditStore(path: path, eventFileBytes: 4096)
        var records: [AuditRecord] = []
        for n in 0..<30 {
            var record = Self.record(n)
            record.bodyPrefix = Array("body \(n) ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 500)
            records.append(record)
        }
        for batch in stride(from: 0, to: 30, by: 5) {
            try await store.append(Array(records[batch..<batch + 5]))
        }
        let rows = try DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "SELECT events, seg, seg_offset, seg_length FROM audit_chunks ORDER BY seq")
        }
        #expect(rows.count == 30)
        #expect(rows.allSatisfy { ($0["events"] as String?) == "" && ($0["seg"] as Int64?) != nil })
        let files = AuditSegments.fileNumbers(in: path + "-events")
        #expect(files.count > 1, "\(files)")
        for n in [0, 17, 29] {
            let trace = try #require(try await store.traces(TraceQuery(messageID: "m\(n)")).first)
            #expect(trace.events.map(\.bodyPrefix) == [records[n].bodyPrefix])
        }
    }

    @Test func aRecordCutShortIsSkippedOnceTheWriterHasMovedOn() async throws {
        let path = temporarySQLitePath()
        do {
            let store = try SQLiteAuditStore(path: path)
            try await store.append([Self.record(1)])
        }
        // What a node killed in the middle of writing a batch leaves: a record's head and
        // part of the rest. The next batch's record, cut short too.
        let file = try #require(AuditSegments.fileNumbers(in: path + "-events").last.map { AuditSegments(storePath: path).path($0) })
        var first: [UInt8] = []
        #expect(try AuditBatch(records: [Self.record(1)]).appendRecords(to: &first) == 1)
        var torn: [UInt8] = []
        #expect(try AuditBatch(records: [Self.record(9)]).appendRecords(to: &torn) == 1)
        // Right after the first record.
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.seek(toOffset: UInt64(first.count))
        try handle.write(contentsOf: Data(torn.dropLast(10)))
        try handle.close()
        // Whoever opens the store next indexes up to it, and no further while nothing
        // follows (the write might still be going on).
        let reader = try SQLiteAuditStore(path: path)
        #expect(try await reader.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m1"])
        // A node that opens the store writes to a new file: the cut record is skipped.
        try await reader.append([Self.record(2)])
        #expect(AuditSegments.fileNumbers(in: path + "-events") == [1, 2])
        let traces = try await reader.traces(TraceQuery(limit: 10))
        #expect(traces.map(\.messageID) == ["m2", "m1"])
        #expect(traces.map { $0.events.count } == [1, 1])
    }

    @Test func recordsLeftUnindexedAreIndexedOnceByWhoeverOpensTheStoreNext() async throws {
        let path = temporarySQLitePath()
        // What a node killed after answering and before indexing leaves: records written,
        // no rows.
        let node = try SQLiteAuditStore(path: path)
        for batch in 0..<20 {
            try node.appendBlocking(AuditBatch(records: (0..<50).map { Self.record(batch * 50 + $0) }))
        }
        let queue = try DatabaseQueue(path: path)
        #expect(try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") } == 0)
        // Two readers (trace --store, say) index at the same time, in small transactions so
        // that they take turns: each record becomes one row.
        let readers = try (0..<2).map { _ in try SQLiteAuditStore(path: path) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in readers {
                group.addTask { try await NIOThreadPool.singleton.runIfActive { try reader.indexBlocking(limit: 7) } }
            }
            try await group.waitForAll()
        }
        let (rows, messages) = try await queue.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_chunks") ?? 0)
        }
        #expect(rows == 1_000)
        #expect(messages == 1_000)
        let trace = try #require(try await readers[0].traces(TraceQuery(messageID: "m777")).first)
        #expect(trace.events.map(\.startedAt) == [777])
        // In the order written.
        let order = try await queue.read { db in try String.fetchAll(db, sql: "SELECT message_id FROM audit_chunks ORDER BY seq") }
        #expect(order == (0..<1_000).map { "m\($0)" })
        try queue.close()
    }

    @Test func prunedRecordsAreNotIndexedAgain() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        try await store.append((0..<10).map { Self.record($0) })
        // Everything pruned; the file being written to stays, with the records in it.
        #expect(try await store.prune(before: Int64.max, maxBytes: nil) == 10)
        #expect(AuditSegments.fileNumbers(in: path + "-events") == [1])
        #expect(try await store.traces(TraceQuery(limit: 100)).isEmpty)
        // Nor by a store opened after.
        let again = try SQLiteAuditStore(path: path)
        try await again.append([Self.record(10)])
        #expect(try await again.traces(TraceQuery(limit: 100)).map(\.messageID) == ["m10"])
    }

    @Test func eventsFilesWrittenBeforeRecordsAreNotReadAsRecords() async throws {
        let path = temporarySQLitePath()
        // A file as the store wrote events before they were records: bare JSON.
        try FileManager.default.createDirectory(atPath: path + "-events", withIntermediateDirectories: true)
        let bare = #"[{"route":"r","entry":true,"kind":"route","phase":"completed","startedAt":1,"bodySize":3,"detail":"before"}]"#
        try bare.write(toFile: path + "-events/000000000001.events", atomically: true, encoding: .utf8)
        let store = try SQLiteAuditStore(path: path)
        // And a row of that time pointing into it.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(
                sql: """
                    INSERT INTO audit_chunks (message_id, correlation_id, entry_route, status, started_at, events, seg, seg_offset, seg_length)
                    VALUES ('old', 'old', 'r', 'completed', 1, '', 1, 0, ?)
                    """,
                arguments: [bare.utf8.count]
            )
        }
        try await store.append([Self.record(1)])
        #expect(AuditSegments.fileNumbers(in: path + "-events") == [1, 2])
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m1", "old"])
        #expect(try await store.traces(TraceQuery(messageID: "old")).first?.events.map(\.detail) == ["before"])
    }

    @Test func aStoreReopenedOnAFullEventsFileWritesToANewOne() async throws {
        let path = temporarySQLitePath()
        var big = Self.record(1)
        big.bodyPrefix = Array(repeating: UInt8(ascii: "x"), count: 3000)
        do {
            let store = try SQLiteAuditStore(path: path, eventFileBytes: 2048)
            try await store.append([big])
            try await store.close()
        }
        #expect(AuditSegments.fileNumbers(in: path + "-events") == [1])
        // With audit.sync: full, the new file's name is synced as well as its bytes.
        let store = try SQLiteAuditStore(path: path, fullSync: true, eventFileBytes: 2048)
        try await store.append([Self.record(2)])
        #expect(AuditSegments.fileNumbers(in: path + "-events") == [1, 2])
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m2", "m1"])
        #expect(try await store.traces(TraceQuery(messageID: "m1")).first?.events.first?.bodyPrefix == big.bodyPrefix)
    }

    @Test func aRowWhoseEventsFileIsGoneIsAnErrorNamingTheFile() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        try await store.append([Self.record(1)])
        let file = try #require(AuditSegments.fileNumbers(in: path + "-events").first.map { store.segments.path($0) })
        try FileManager.default.removeItem(atPath: file)
        do {
            _ = try await store.traces(TraceQuery(messageID: "m1"))
            Issue.record("a trace was read from a missing events file")
        } catch {
            #expect("\(error)".contains("cannot read the audit events file \(file)"), "\(error)")
        }
    }

    @Test func aRowPointingOutsideItsEventsFileIsAnErrorNotACrash() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        try await store.append([Self.record(1), Self.record(2), Self.record(3)])
        // Damaged rows: a negative length, a span past the end, an offset near the largest.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE audit_chunks SET seg_length = -5 WHERE message_id = 'm1'")
            try db.execute(sql: "UPDATE audit_chunks SET seg_length = 1000000000 WHERE message_id = 'm2'")
            try db.execute(sql: "UPDATE audit_chunks SET seg_offset = 9223372036854775000 WHERE message_id = 'm3'")
        }
        for id in ["m1", "m2", "m3"] {
            do {
                _ = try await store.traces(TraceQuery(messageID: id))
                Issue.record("\(id): a trace was read from a damaged row")
            } catch {
                #expect("\(error)".contains("which a stored row points at"), "\(id): \(error)")
            }
        }
    }

    @Test func rowsWrittenBeforeTheEventsFilesStillRead() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path)
        // A row as the store wrote it before: its events inline, no file.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                INSERT INTO audit_chunks (message_id, correlation_id, entry_route, status, started_at, events)
                VALUES ('old', 'old', 'r', 'completed', 1, '[{"route":"r","entry":true,"kind":"route","phase":"completed","startedAt":1,"bodySize":3,"detail":"inline"}]')
                """)
        }
        try await store.append([Self.record(1)])
        let old = try #require(try await store.traces(TraceQuery(messageID: "old")).first)
        #expect(old.events.map(\.detail) == ["inline"])
        #expect(try await store.traces(TraceQuery(limit: 10)).map(\.messageID) == ["m1", "old"])
    }

    @Test func retentionDeletesEventsFilesNoRowPointsInto() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path, eventFileBytes: 4096)
        let now = wallClockMicroseconds()
        let day: Int64 = 86_400_000_000
        for batch in 0..<10 {
            var records: [AuditRecord] = []
            for n in 0..<5 {
                var record = Self.record(batch * 5 + n)
                record.startedAt = batch < 6 ? now - 10 * day : now
                record.bodyPrefix = Array(repeating: UInt8(ascii: "x"), count: 1000)
                records.append(record)
            }
            try await store.append(records)
        }
        let events = path + "-events"
        let before = AuditSegments.fileNumbers(in: events)
        #expect(before.count == 10, "\(before)")
        #expect(try await store.prune(before: now - 7 * day, maxBytes: nil) == 30)
        // The six files of the old batches are gone; the rest still read.
        #expect(AuditSegments.fileNumbers(in: events) == Array(before.dropFirst(6)))
        let remaining = try await store.traces(TraceQuery(limit: 100))
        #expect(remaining.count == 20)
        #expect(remaining.allSatisfy { $0.events.first?.bodyPrefix?.count == 1000 })
        // Everything pruned: only the file being written to stays.
        #expect(try await store.prune(before: now + day, maxBytes: nil) == 20)
        #expect(AuditSegments.fileNumbers(in: events) == [before.last])
    }

    @Test func retentionBySizeCountsTheEventsFiles() async throws {
        let path = temporarySQLitePath()
        let store = try SQLiteAuditStore(path: path, eventFileBytes: 64 * 1024)
        for batch in 0..<20 {
            var records: [AuditRecord] = []
            for n in 0..<10 {
                var record = Self.record(batch * 10 + n)
                record.bodyPrefix = Array(repeating: UInt8(ascii: "x"), count: 4000)
                records.append(record)
            }
            try await store.append(records)
        }
        let events = path + "-events"
        let written = AuditSegments(storePath: path).totalBytes
        #expect(written > 800_000)
        let trimmed = try await store.prune(before: nil, maxBytes: 400 * 1024)
        #expect(trimmed > 0)
        let remaining = try await store.traces(TraceQuery(limit: 1000)).map(\.messageID)
        #expect(remaining.count == 200 - trimmed)
        #expect(remaining.contains("m199"))
        #expect(!remaining.contains("m0"))
        // What is left fits: the files of pruned rows are deleted (one partly pruned file
        // may stay).
        let left = AuditSegments(storePath: path).totalBytes
        #expect(left < 400 * 1024 + 64 * 1024 + 4096 * 10, "\(left)")
        #expect(AuditSegments.fileNumbers(in: events).count < 10)
    }

    @Test func aBatchKeepsOneRecordPerMessageWhoseEventsAreInterleaved() throws {
        // Two messages' events taking turns, then one that recurs after more messages than
        // are looked back over: it gets a second record.
        var records = [Self.record(1), Self.record(2), Self.record(1), Self.record(2)]
        records[2].phase = "failed"
        records[3].detail = "second"
        let others = (10..<(10 + AuditEventRecords.recentMessages)).map { Self.record($0) }
        let batch = AuditBatch(records: records + others + [Self.record(1)])
        var bytes: [UInt8] = []
        #expect(try batch.appendRecords(to: &bytes) == 2 + AuditEventRecords.recentMessages + 1)
        let read = try batch.records()
        #expect(read.map(\.messageID) == ["m1", "m1", "m2", "m2"] + others.map(\.messageID) + ["m1"])
        #expect(read[1].phase == "failed")
        #expect(read[3].detail == "second")
    }

    @Test func aDamagedRecordIsNotRead() throws {
        var bytes: [UInt8] = []
        _ = try AuditBatch(records: [Self.record(1)]).appendRecords(to: &bytes)
        func parse(_ bytes: [UInt8], remaining: Int? = nil) -> String {
            bytes.withUnsafeBytes { buffer in
                switch AuditEventRecords.parse(buffer, remaining: remaining ?? buffer.count) {
                case .record(let record): "record \(record.field(.messageID).map { String(decoding: $0, as: UTF8.self) } ?? "-")"
                case .needs(let length): "needs \(length)"
                case .broken: "broken"
                }
            }
        }
        #expect(parse(bytes) == "record m1")
        // Read in part, with the rest in the file: the reader reads the rest.
        #expect(parse(Array(bytes.prefix(60)), remaining: bytes.count) == "needs \(bytes.count)")
        // Cut short in the file.
        #expect(parse(Array(bytes.dropLast())) == "broken")
        // A trailer that does not match the head, a field running past the end, no message id.
        var trailer = bytes
        trailer[trailer.count - 1] ^= 1
        #expect(parse(trailer) == "broken")
        var overlong = bytes
        overlong[16 + 4] &+= 1
        #expect(parse(overlong) == "broken")
        var noID = bytes
        for index in 20..<24 { noID[index] = 0xFF }
        #expect(parse(noID) == "broken")
        // Zeros (a file's unwritten end after a crash).
        #expect(parse([UInt8](repeating: 0, count: 64)) == "broken")
    }

    @Test func tracesSurviveAJSONRoundTrip() async throws {
        var record = Self.record(1)
        record.headers = "[[\"A\",\"1\"]]"
        record.bodyPrefix = Array("héllo".utf8)
        var binary = Self.record(2)
        binary.bodyPrefix = [0xFF, 0x00, 0x01]
        // A `route:` step is a step, not a route row, though its kind reads "route".
        var routeStep = Self.record(1)
        routeStep.stepKind = "route"
        routeStep.stepPath = "2"
        routeStep.stepIndex = 2
        // Text that must be escaped, and numbers of every width the store writes by hand.
        routeStep.error = "said \"no\"\n\tthen \u{01}\\ é ✓"
        routeStep.detail = "plain"
        routeStep.startedAt = 1_763_700_000_123_456
        routeStep.durationMicros = 0
        routeStep.bodySizeIn = 9_223_372_036_854_775_807
        routeStep.bodyPrefix = Array("<a x=\"1\">\r\n</a>".utf8)
        let trace = Trace(messageID: "m1", events: [record, routeStep], children: [Trace(messageID: "m2", events: [binary])])
        let decoded = try JSONDecoder().decode(Trace.self, from: Data(trace.jsonLine().utf8))
        #expect(decoded == trace)
        #expect(trace.jsonLine().contains("\"bodyText\":\"héllo\""))
        #expect(trace.jsonLine().contains("\"bodyBase64\":\"/wAB\""))
        // The stored form (a row's events, without the message's ids) reads back the same.
        #expect(try AuditBatch(records: [record, routeStep]).records() == [record, routeStep])
    }
}
