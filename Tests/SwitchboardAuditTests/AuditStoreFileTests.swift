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

/// The embedded store's files: retention, events files and the index built from them.
extension AuditWriterTests {
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
