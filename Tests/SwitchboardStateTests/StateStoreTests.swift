// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import SwitchboardState
import SwitchboardTestServers
import Testing

/// The state store contract, run against SQLite and against the PostgreSQL server that
/// `make test` starts (SWITCHBOARD_TEST_POSTGRES).
@Suite(.serialized)
struct StateStoreTests {
    static let postgres = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES"]
    static let logger = Logger(label: "state-tests") { _ in SwiftLogNoOpLogHandler() }

    static func sqlite() throws -> SQLiteStateStore {
        try SQLiteStateStore(path: NSTemporaryDirectory() + "sb-state-\(UUID().uuidString)/state.db")
    }

    static func freshDatabase() throws -> String {
        try PostgresTestServer.freshDatabase(prefix: "state")
    }

    static func letter(route: String, body: String, at time: Int64) -> DeadLetter {
        var headers = Headers()
        headers["X-Order-ID"] = body
        headers["Authorization"] = "Bearer s3cret"
        let message = Message(correlationID: "corr-\(body)", headers: headers, body: ByteBuffer(string: body), properties: ["p": "1"], trace: .random())
        return DeadLetter(message: message, routeID: route, step: "0 to http://x", error: "boom", attempts: 3, firstFailedAt: time, lastFailedAt: time)
    }

    func checkDeadLetters(_ store: any NodeStateStore) async throws {
        let a = Self.letter(route: "orders", body: "a", at: 1000)
        let b = Self.letter(route: "orders", body: "b", at: 2000)
        let c = Self.letter(route: "invoices", body: "c", at: 1500)
        for letter in [b, c, a] { try await store.add(letter) }
        #expect(try await store.list(routeID: nil, limit: 10).map(\.message.bodyString) == ["a", "c", "b"])
        #expect(try await store.list(routeID: "orders", limit: 10).map(\.message.bodyString) == ["a", "b"])
        #expect(try await store.list(routeID: nil, limit: 1).count == 1)
        let read = try #require(try await store.get(a.id))
        #expect(read.message.id == a.message.id)
        #expect(read.message.correlationID == "corr-a")
        #expect(read.message.headers == a.message.headers)
        #expect(read.message.properties == ["p": "1"])
        #expect(read.message.trace == a.message.trace)
        #expect(read.attempts == 3 && read.error == "boom" && read.step == "0 to http://x")
        // Adding again updates in place (a failed replay).
        var updated = read
        updated.replays = 1
        updated.attempts = 5
        updated.error = "boom again"
        try await store.add(updated)
        #expect(try await store.list(routeID: "orders", limit: 10).count == 2)
        let again = try #require(try await store.get(a.id))
        #expect(again.replays == 1 && again.attempts == 5 && again.error == "boom again")
        #expect(try await store.remove(a.id))
        #expect(try await !store.remove(a.id))
        #expect(try await store.get(a.id) == nil)
    }

    func checkIdempotency(_ store: any NodeStateStore) async throws {
        let first = MessageID()
        let second = MessageID()
        #expect(try await store.claim(scope: "r", key: "k1", messageID: first, ttl: .seconds(60)) == .claimed)
        #expect(try await store.claim(scope: "r", key: "k1", messageID: second, ttl: .seconds(60)) == .duplicate(of: first))
        let mine = try await store.claim(scope: "r", key: "k1", messageID: first, ttl: .seconds(60))
        #expect(mine == .alreadyMine || mine == .claimed)
        // Another message's release leaves the claim; the holder's gives it up.
        try await store.release(scope: "r", key: "k1", messageID: second)
        #expect(try await store.claim(scope: "r", key: "k1", messageID: second, ttl: .seconds(60)) == .duplicate(of: first))
        try await store.release(scope: "r", key: "k1", messageID: first)
        #expect(try await store.claim(scope: "r", key: "k1", messageID: second, ttl: .seconds(60)) == .claimed)
        // TTL: a key older than the ttl has lapsed.
        try await Task.sleep(for: .milliseconds(30))
        #expect(try await store.claim(scope: "r", key: "k1", messageID: first, ttl: .milliseconds(10)) == .claimed)
    }

    func checkIntake(_ store: any NodeStateStore) async throws {
        let one = Message(headers: ["X-N": "1"], body: ByteBuffer(string: "one"))
        let two = Message(headers: ["X-N": "2"], body: ByteBuffer(bytes: [0, 255, 10]))
        try await store.enqueue(routeID: "intake", one)
        try await store.enqueue(routeID: "intake", two)
        let pending = try await store.pending()
        #expect(pending.map(\.message.id) == [one.id, two.id])
        #expect(pending.allSatisfy { $0.routeID == "intake" })
        #expect(Array(pending[1].message.body.readableBytesView) == [0, 255, 10])
        try await store.finish(one.id)
        #expect(try await store.pending().map(\.message.id) == [two.id])
    }

    @Test func sqliteKeepsDeadLettersKeysAndTheIntake() async throws {
        let store = try Self.sqlite()
        try await checkDeadLetters(store)
        try await checkIdempotency(store)
        try await checkIntake(store)
    }

    @Test func sqliteKeepsWhatItStoredAcrossReopening() async throws {
        let path = NSTemporaryDirectory() + "sb-state-\(UUID().uuidString)/state.db"
        let message = Message(body: ByteBuffer(string: "kept"))
        do {
            let store = try SQLiteStateStore(path: path)
            try await store.enqueue(routeID: "r", message)
        }
        let reopened = try SQLiteStateStore(path: path, create: false)
        #expect(try await reopened.pending().map(\.message.bodyString) == ["kept"])
        #expect(throws: StateStoreError.self) { try SQLiteStateStore(path: path + ".missing", create: false) }
    }

    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func postgresKeepsDeadLettersKeysAndTheIntake() async throws {
        let store = try await PostgresStateStore(url: try Self.freshDatabase(), logger: Self.logger)
        defer { Task { await store.close() } }
        try await checkDeadLetters(store)
        try await checkIdempotency(store)
        try await checkIntake(store)
    }

    @Test(.enabled(if: postgres != nil, "needs SWITCHBOARD_TEST_POSTGRES; make test starts PostgreSQL"))
    func twoNodesClaimingTheSameKeysAtOnceNeverBothWin() async throws {
        let url = try Self.freshDatabase()
        let nodeA = try await PostgresStateStore(url: url, logger: Self.logger, nodeName: "a")
        let nodeB = try await PostgresStateStore(url: url, logger: Self.logger, nodeName: "b")
        defer { Task { await nodeA.close(); await nodeB.close() } }
        let keys = (0..<50).map { "key-\($0)" }
        let wins = try await withThrowingTaskGroup(of: Int.self) { group in
            for store in [nodeA, nodeB] {
                group.addTask {
                    var won = 0
                    for key in keys where try await store.claim(scope: "s", key: key, messageID: MessageID(), ttl: .seconds(60)) == .claimed {
                        won += 1
                    }
                    return won
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(wins == keys.count, "every key claimed exactly once across the two nodes")
        // Each node resumes only the messages it accepted.
        let message = Message(body: ByteBuffer(string: "a's"))
        try await nodeA.enqueue(routeID: "r", message)
        #expect(try await nodeA.pending().map(\.message.id) == [message.id])
        #expect(try await nodeB.pending().isEmpty)
    }

    @Test func anUnreachableServerIsRefusedWithoutShowingThePassword() async throws {
        await #expect {
            _ = try await PostgresStateStore(url: "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable", logger: Self.logger, connectTimeout: .milliseconds(500))
        } throws: { error in
            let text = "\(error)"
            return text.contains("postgres://u:***@127.0.0.1:1/db") && !text.contains("hunter2")
        }
    }
}
