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

    /// A trail on `store` with a 300 ms commit timeout, its writer running, and an engine
    /// whose `quick` route it observes.
    static func quickRouteUnder300msCommits(_ store: any AuditStore) throws -> (AuditTrail, Task<Void, any Error>, RouteEngine) {
        let trail = AuditTrail(store: store, commitTimeout: .milliseconds(300), retention: .init(age: nil, maxBytes: nil), logger: Self.logger)
        let writer = Task { try await trail.run() }
        let engine = try RouteLoader(catalog: AdapterCatalog([]), observers: [trail], logger: Self.logger, environment: [:])
            .load(sources: [(Self.quickRoute, "routes.yaml")])
        return (trail, writer, engine)
    }

    @Test func aStoreThatCannotKeepUpFailsTheExchangeInsteadOfHangingIt() async throws {
        let store = GatedStore()
        let (trail, writer, engine) = try Self.quickRouteUnder300msCommits(store)
        defer { writer.cancel() }
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
        let (trail, writer, engine) = try Self.quickRouteUnder300msCommits(store)
        defer { writer.cancel() }
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
        return ExchangeScopes.$current.withValue(scope) { events.map { trail.recordWithoutWaiting($0) } }
    }
}
