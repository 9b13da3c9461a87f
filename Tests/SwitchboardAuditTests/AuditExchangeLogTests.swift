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

/// Each exchange's own log of events: what goes into it, and when it goes to the buffer.
extension AuditWriterTests {
    @Test func anExchangesLogGoesToTheBufferWholeWhenItsRouteEnds() async throws {
        let (store, trail, writer) = try Self.runningSQLiteTrail()
        defer { writer.cancel() }
        let message = Message(headers: ["X-Region": "EU"], body: ByteBuffer(string: "whole"))
        let events = Self.exchangeEvents(message)
        let scope = try #require(trail.scope(for: message.id))
        ExchangeScopes.$current.withValue(scope) {
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
        ExchangeScopes.$current.withValue(scope) {
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
        ExchangeScopes.$current.withValue(scope) { #expect(trail.recordWithoutWaiting(events.start)) }
        // The ticker queues what the log holds once it is older than the limit, and takes
        // the log off the list.
        #expect(try await Self.firstStored(message, in: store).first?.events.map(\.phase) == ["started"])
        #expect(trail.runningLogs == 0)
        // Its later events are queued directly, in a row of their own.
        ExchangeScopes.$current.withValue(scope) {
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
        ExchangeScopes.$current.withValue(scope) { #expect(trail.recordWithoutWaiting(Self.exchangeEvents(message).start)) }
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
}
