// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import SwitchboardState
import Synchronization
import Testing

/// Retry, dead letters, replay and idempotent steps, on the engine with a real SQLite
/// state store in a temporary folder.
struct FailureHandlingTests {
    /// A mappings folder holding `items.yaml`: 12-byte records I + qty(3) + sku(8).
    static func itemsLayout() throws -> String {
        let mappings = NSTemporaryDirectory() + "sb-mappings-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mappings, withIntermediateDirectories: true)
        try """
        name: items
        record-length: 12
        line-ending: lf
        records:
          - name: item
            tag: { start: 1, value: "I" }
            fields:
              - { name: kind, start: 1, length: 1, const: "I" }
              - { name: qty, start: 2, length: 3, type: integer }
              - { name: sku, start: 5, length: 8 }
        structure:
          - { record: item, repeat: true }
        """.write(toFile: mappings + "/items.yaml", atomically: true, encoding: .utf8)
        return mappings
    }

    static func store() throws -> SQLiteStateStore {
        let folder = NSTemporaryDirectory() + "switchboard-state-" + UUID().uuidString
        return try SQLiteStateStore(path: folder + "/state.db")
    }

    static func route(_ to: String, onError: String, steps: String = "") -> String {
        """
        routes:
          - id: orders
            from: test:in
            on-error: \(onError)
            steps:
        \(steps)      - to: "\(to)"
        """
    }

    @Test func aStepThatFailsWithARetriedKindRunsAgainUntilItSucceeds() async throws {
        let harness = try Harness(Self.route("test:backend?failFirst=2&failKind=connection", onError: "{ retry: { attempts: 3, backoff: 1ms, jitter: false } }"))
        let reply = try await harness.send("orders", "order 1")
        #expect(reply.headers["X-Visited"] == "backend")
        #expect(harness.endpoints.exchanges("backend").count == 3)
        // Each attempt is in the trace: two failures saying so, then the success.
        let toEvents = harness.observer.all.filter { $0.step?.kind == "to" && $0.phase != .started }
        #expect(toEvents.map(\.phase) == [.failed, .failed, .completed])
        #expect(toEvents[0].error?.contains("attempt 1 of 3; retrying in") == true, "\(toEvents[0].error ?? "")")
    }

    @Test func attemptsCountEveryRunAndTheLastFailureSaysSo() async throws {
        let harness = try Harness(Self.route("test:backend?fail=true&failKind=5xx", onError: "{ retry: { attempts: 4, backoff: 1ms } }"))
        await #expect {
            _ = try await harness.send("orders", "order 1")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.attempts == 4 && failure.kind == "5xx" && failure.deadLetter == nil
        }
        #expect(harness.endpoints.exchanges("backend").count == 4)
        let last = harness.observer.all.last { $0.step?.kind == "to" && $0.phase == .failed }
        #expect(last?.error?.hasSuffix("(attempt 4 of 4; giving up)") == true, "\(last?.error ?? "")")
    }

    @Test func kindsNotListedAreNotRetried() async throws {
        // Validation failures are the message's fault: running again cannot help.
        let harness = try Harness(Self.route("test:backend?fail=true&failKind=validation", onError: "{ retry: { attempts: 5, backoff: 1ms } }"))
        await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "x") }
        #expect(harness.endpoints.exchanges("backend").count == 1)
        // Naming the kind makes it retried.
        let named = try Harness(Self.route("test:backend?fail=true&failKind=validation", onError: "{ retry: { attempts: 2, backoff: 1ms, on: [validation] } }"))
        await #expect(throws: StepFailure.self) { _ = try await named.send("orders", "x") }
        #expect(named.endpoints.exchanges("backend").count == 2)
    }

    @Test func aFailureInsideABranchIsRetriedThereOnlyNotAgainByTheBranchingStep() async throws {
        let harness = try Harness("""
        routes:
          - id: orders
            from: test:in
            on-error: { retry: { attempts: 3, backoff: 1ms } }
            steps:
              - choice:
                  - when: { header: X-Region, equals: EU }
                    steps: [ { to: "test:eu?fail=true&failKind=connection" } ]
                  - otherwise: [ { to: "test:other" } ]
        """)
        var headers = Headers()
        headers["X-Region"] = "EU"
        await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "x", headers: headers) }
        #expect(harness.endpoints.exchanges("eu").count == 3)
    }

    @Test func theNodeDefaultAppliesToRoutesWithoutTheirOwn() async throws {
        var policy = ErrorPolicy()
        var retry = RetryPolicy()
        retry.attempts = 2
        retry.backoff = .milliseconds(1)
        policy.retry = retry
        let harness = try Harness("""
        routes:
          - id: orders
            from: test:in
            steps: [ { to: "test:backend?fail=true&failKind=timeout" } ]
        """, defaultErrorPolicy: policy)
        await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "x") }
        #expect(harness.endpoints.exchanges("backend").count == 2)
    }

    @Test func backoffGrowsByTheFactorUpToTheCap() {
        var retry = RetryPolicy()
        retry.backoff = .milliseconds(100)
        retry.factor = 2
        retry.maxBackoff = .milliseconds(500)
        retry.jitter = false
        #expect(retry.delay(beforeRetry: 1) == .milliseconds(100))
        #expect(retry.delay(beforeRetry: 2) == .milliseconds(200))
        #expect(retry.delay(beforeRetry: 3) == .milliseconds(400))
        #expect(retry.delay(beforeRetry: 4) == .milliseconds(500))
        retry.jitter = true
        for _ in 0..<50 {
            let delay = retry.delay(beforeRetry: 2)
            #expect(delay >= .milliseconds(100) && delay <= .milliseconds(200))
        }
    }

    @Test func aCallerThatWasAnswered400IsNotDeadLetteredUnlessTheRouteAsks() async throws {
        func failure(_ harness: Harness, _ pattern: ExchangePattern) async -> StepFailure? {
            do {
                _ = try await harness.engine.process(routeID: "orders", Exchange(message: Message(body: ByteBuffer(string: "bad")), pattern: pattern))
            } catch let failure as StepFailure {
                return failure
            } catch {}
            return nil
        }
        let store = try Self.store()
        let byDefault = try Harness(Self.route("test:backend?fail=true&failKind=validation", onError: "{ dead-letter: true }"), state: NodeState(store))
        // A request-reply caller has its answer (400): nothing to keep.
        let answered = await failure(byDefault, .inOut)
        #expect(answered?.kind == "validation")
        #expect(answered?.deadLetter == nil)
        // A message nobody waits for (a file, an async request) is kept.
        #expect(await failure(byDefault, .inOnly)?.deadLetter != nil)
        // The route chooses the kinds.
        let asked = try Harness(Self.route("test:backend?fail=true&failKind=validation", onError: "{ dead-letter: { to: true, on: [validation, 5xx] } }"), state: NodeState(store))
        #expect(await failure(asked, .inOut)?.deadLetter != nil)
        let narrow = try Harness(Self.route("test:backend?fail=true&failKind=validation", onError: "{ dead-letter: { to: true, on: [connection] } }"), state: NodeState(store))
        #expect(await failure(narrow, .inOnly)?.deadLetter == nil)
        let errors = loadErrors(Self.route("test:backend", onError: "{ dead-letter: { to: true, on: [validaton] } }"))
        #expect(errors.contains { $0.contains("'on-error.dead-letter.on' lists kinds of failure: connection, timeout, 5xx, validation, step") }, "\(errors)")
    }

    @Test func aMessageThatFailsForGoodGoesToTheDeadLetterStoreAsReceived() async throws {
        let store = try Self.store()
        let harness = try Harness(
            Self.route("test:backend?fail=true&failKind=connection", onError: "{ retry: { attempts: 2, backoff: 1ms }, dead-letter: true }",
                       steps: "      - set-body: \"changed ${body}\"\n"),
            state: NodeState(store)
        )
        var headers = Headers()
        headers["X-Order-ID"] = "42"
        headers["Authorization"] = "Bearer secret"
        var thrown: StepFailure?
        do {
            _ = try await harness.send("orders", "original body", headers: headers)
        } catch let failure as StepFailure {
            thrown = failure
        }
        let failure = try #require(thrown)
        let id = try #require(failure.deadLetter)
        let letter = try #require(try await store.get(id))
        #expect(letter.routeID == "orders")
        #expect(letter.step == "1 to test:backend?fail=true&failKind=connection")
        #expect(letter.attempts == 2)
        #expect(letter.error == "test endpoint 'backend' refused the message")
        #expect(letter.message.bodyString == "original body")
        #expect(letter.message.headers["X-Order-ID"] == "42")
        // Listings mask secrets.
        #expect(letter.json(mask: ["Authorization"]).contains("[\"Authorization\",\"***\"]"))
        #expect(!letter.json(mask: ["Authorization"]).contains("secret"))
        // The trace says where the message went.
        let event = harness.observer.all.last { $0.step?.kind == "dead-letter" }
        #expect(event?.detail?.contains("stored in the dead letter store") == true)
    }

    @Test func aReplaySendsTheDeadLetterAgainAndRemovesItWhenItSucceeds() async throws {
        let store = try Self.store()
        // The backend refuses the first two messages: the original (1 attempt) and the first replay.
        let harness = try Harness(
            Self.route("test:backend?failFirst=2&failKind=5xx", onError: "{ dead-letter: true }"),
            state: NodeState(store)
        )
        var thrown: StepFailure?
        do {
            _ = try await harness.send("orders", "order 7")
        } catch let failure as StepFailure {
            thrown = failure
        }
        let id = try #require(thrown?.deadLetter)

        let first = try await harness.engine.replay(id)
        #expect(!first.succeeded)
        let kept = try #require(try await store.get(id))
        #expect(kept.replays == 1)
        #expect(kept.attempts == 2)
        #expect(try await store.list(routeID: nil, limit: 10).count == 1, "a failed replay is not stored twice")

        let second = try await harness.engine.replay(id)
        #expect(second.succeeded)
        #expect(try await store.get(id) == nil)
        let delivered = harness.endpoints.exchanges("backend").last
        #expect(delivered?.message.bodyString == "order 7")
        #expect(delivered?.message.headers[RouteEngine.replayHeader] == id.description)
        #expect(delivered?.message.id != id)
        #expect(delivered?.message.correlationID == kept.message.correlationID)

        await #expect(throws: ProcessingError.self) { _ = try await harness.engine.replay(id) }
    }

    @Test func replayAllTakesEveryDeadLetterOfARoute() async throws {
        let store = try Self.store()
        let harness = try Harness(Self.route("test:backend?failFirst=3", onError: "{ dead-letter: true }"), state: NodeState(store))
        for index in 0..<3 {
            await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "order \(index)") }
        }
        #expect(try await store.list(routeID: "orders", limit: 10).count == 3)
        let outcomes = try await harness.engine.replayAll(routeID: "orders")
        #expect(outcomes.count == 3 && outcomes.allSatisfy(\.succeeded))
        #expect(try await store.list(routeID: nil, limit: 10).isEmpty)
        #expect(harness.endpoints.exchanges("backend").suffix(3).map(\.message.bodyString) == ["order 0", "order 1", "order 2"])
    }

    @Test func aDeadLetterWhoseRouteIsGoneIsReportedAndKeptWhileTheOthersReplay() async throws {
        let store = try Self.store()
        let harness = try Harness(Self.route("test:backend", onError: "{ dead-letter: true }"), state: NodeState(store))
        let now = wallClockMilliseconds()
        let orphan = DeadLetter(message: Message(body: ByteBuffer(string: "old")), routeID: "removed", step: "0 to x", error: "e", attempts: 1, firstFailedAt: now - 10, lastFailedAt: now - 10)
        let current = DeadLetter(message: Message(body: ByteBuffer(string: "new")), routeID: "orders", step: "0 to x", error: "e", attempts: 1, firstFailedAt: now, lastFailedAt: now)
        try await store.add(orphan)
        try await store.add(current)
        let outcomes = try await harness.engine.replayAll(routeID: nil)
        #expect(outcomes.map(\.succeeded) == [false, true])
        #expect(outcomes.first?.replay == nil)
        #expect(outcomes.first?.error == "its route 'removed' is not loaded; kept")
        #expect(try await store.list(routeID: nil, limit: 10).map(\.id) == [orphan.id])
        #expect(harness.endpoints.exchanges("backend").map(\.message.bodyString) == ["new"])
    }

    @Test func deadLettersCanGoToAnEndpointInstead() async throws {
        let harness = try Harness(Self.route("test:backend?fail=true", onError: "{ dead-letter: \"test:parking\" }"))
        await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "order 1") }
        let parked = try #require(harness.endpoints.exchanges("parking").first)
        #expect(parked.message.bodyString == "order 1")
        #expect(parked.message.headers["X-Dead-Letter-Route"] == "orders")
        #expect(parked.message.headers["X-Dead-Letter-Error"] == "test endpoint 'backend' refused the message")
    }

    @Test func anIdempotentStepDropsARepeatedKeyAndGivesItUpWhenTheMessageFails() async throws {
        let store = try Self.store()
        let harness = try Harness("""
        routes:
          - id: orders
            from: test:in
            steps:
              - idempotent: { key: "${header.X-Order-ID}", ttl: 1h }
              - choice:
                  - when: { header: X-Fail, exists: true }
                    steps: [ { to: "test:broken?fail=true" } ]
                  - otherwise: [ { to: "test:backend" } ]
        """, state: NodeState(store))
        var headers = Headers()
        headers["X-Order-ID"] = "A-1"
        _ = try await harness.send("orders", "first", headers: headers)
        _ = try await harness.send("orders", "again", headers: headers)
        #expect(harness.endpoints.exchanges("backend").map(\.message.bodyString) == ["first"])
        let duplicate = harness.observer.all.last { $0.step?.kind == "idempotent" && $0.phase == .completed }
        #expect(duplicate?.detail?.hasPrefix("duplicate of ") == true, "\(duplicate?.detail ?? "")")

        // A failed message gives its key up, so the sender's retry goes through.
        headers["X-Order-ID"] = "B-2"
        var failing = headers
        failing["X-Fail"] = "1"
        await #expect(throws: StepFailure.self) { _ = try await harness.send("orders", "fails", headers: failing) }
        _ = try await harness.send("orders", "retried", headers: headers)
        #expect(harness.endpoints.exchanges("backend").map(\.message.bodyString) == ["first", "retried"])
    }

    @Test func idempotencyKeysExpireAfterTheirTTL() async throws {
        let store = try Self.store()
        let first = MessageID()
        let second = MessageID()
        #expect(try await store.claim(scope: "s", key: "k", messageID: first, ttl: .seconds(3600)) == .claimed)
        #expect(try await store.claim(scope: "s", key: "k", messageID: second, ttl: .seconds(3600)) == .duplicate(of: first))
        #expect(try await store.claim(scope: "s", key: "k", messageID: first, ttl: .seconds(3600)) == .alreadyMine)
        // A ttl shorter than the key's age: the key has lapsed and the new message takes it.
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await store.claim(scope: "s", key: "k", messageID: second, ttl: .milliseconds(10)) == .claimed)
        #expect(try await store.claim(scope: "other", key: "k", messageID: first, ttl: .seconds(3600)) == .claimed)
    }

    @Test func routeFileMistakesInOnErrorAreReportedWithTheirPlace() {
        let errors = loadErrors("""
        routes:
          - id: orders
            from: test:in
            on-error:
              retry: { attempts: 0, backof: 1s, on: [connection, flaky] }
              dead-letter: maybe
            steps: [ { to: test:x } ]
        """)
        #expect(errors.contains("routes.yaml:5:26: error: 'on-error.retry.attempts' expects the number of runs in all, 1 to 100, found '0'"), "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:29: error: unknown on-error.retry key 'backof'") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:58: error: unknown failure kind 'flaky'") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:6:20: error: 'on-error.dead-letter' expects true") }, "\(errors)")
    }

    @Test func deadLettersAndIdempotencyNeedAStateStore() {
        let errors = loadErrors("""
        routes:
          - id: orders
            from: test:in
            on-error: { dead-letter: true }
            steps: [ { idempotent: "${header.X-ID}" }, { to: test:x } ]
        """)
        #expect(errors.contains("routes.yaml:4:15: error: route 'orders' sends failed messages to the dead letter store, but the node has no state store"), "\(errors)")
        #expect(errors.contains("routes.yaml:5:16: error: 'idempotent' keeps its keys in the node's state store, and this node has none"), "\(errors)")
    }

    @Test(arguments: [false, true])
    func splitPartsThatFailGoToRejectsAndTheOthersGoOn(parallel: Bool) async throws {
        let harness = try Harness("""
        routes:
          - id: batch
            from: test:in
            on-error: { retry: { attempts: 2, backoff: 1ms } }
            steps:
              - split:
                  lines: true
                  parallel: \(parallel)
                  rejects: "test:rejects"
                  steps:
                    - choice:
                        - when: { header: split.index, in: ["1", "3"] }
                          steps: [ { to: "test:broken?fail=true&failKind=connection" } ]
                        - otherwise: [ { to: "test:backend" } ]
              - to: test:after
        """)
        _ = try await harness.send("batch", "r0\nr1\nr2\nr3\nr4")
        #expect(harness.endpoints.exchanges("backend").map(\.message.bodyString).sorted() == ["r0", "r2", "r4"])
        let rejected = harness.endpoints.exchanges("rejects").sorted { $0.message.bodyString < $1.message.bodyString }
        #expect(rejected.map(\.message.bodyString) == ["r1", "r3"])
        #expect(rejected.first?.message.headers["X-Dead-Letter-Attempts"] == "2")
        #expect(rejected.first?.message.headers["X-Dead-Letter-Error"] == "test endpoint 'broken' refused the message")
        #expect(harness.endpoints.exchanges("broken").count == 4, "each bad part was retried once")
        #expect(harness.endpoints.exchanges("after").count == 1, "the route went on")
        let split = harness.observer.all.last { $0.step?.kind == "split" && $0.phase == .completed }
        #expect(split?.detail == "5 parts, 2 rejected to test:rejects")
    }

    @Test func withoutRejectsAFailedPartFailsTheSplit() async throws {
        let harness = try Harness("""
        routes:
          - id: batch
            from: test:in
            steps:
              - split:
                  lines: true
                  steps: [ { to: "test:broken?failFirst=2" } ]
        """)
        await #expect(throws: StepFailure.self) { _ = try await harness.send("batch", "a\nb\nc") }
    }

    @Test func recordsOfAFixedWidthFileThatDoNotParseGoToRejectsWhenTheRouteSaysSo() async throws {
        let mappings = try Self.itemsLayout()
        let route = { (rejects: String) in
            """
            routes:
              - id: items
                from: test:in
                steps:
                  - split:
                      fixed-width: items.yaml
                      path: item
            \(rejects)
                      steps: [ { to: "test:backend" } ]
            """
        }
        let file = "I001SKU-0001\nI0x2SKU-0002\nX00000000000\nI003SKU-0003\n"
        let tolerant = try Harness(route("          rejects: test:rejects"), mappings: mappings)
        _ = try await tolerant.send("items", file)
        #expect(tolerant.endpoints.exchanges("backend").map(\.message.bodyString) == [
            #"{"qty":1,"sku":"SKU-0001"}"#, #"{"qty":3,"sku":"SKU-0003"}"#,
        ])
        let rejected = tolerant.endpoints.exchanges("rejects")
        #expect(rejected.map(\.message.bodyString) == ["I0x2SKU-0002", "X00000000000"])
        #expect(rejected.first?.message.headers["X-Dead-Letter-Error"] == "line 2, record item, field qty (columns 2-4): expected digits, found '0x2'")
        #expect(rejected.first?.message.headers["X-Dead-Letter-Line"] == "2")
        #expect(rejected.first?.message.headers["X-Dead-Letter-Route"] == "items")

        // Without rejects the file is refused, naming the record.
        let strict = try Harness(route(""), mappings: mappings)
        await #expect {
            _ = try await strict.send("items", file)
        } throws: { error in
            "\(error)".contains("line 2, record item, field qty (columns 2-4): expected digits, found '0x2'")
        }
        #expect(strict.endpoints.exchanges("backend").isEmpty)
    }

    @Test func aFixedWidthFileLeftOnDiskIsSplitAsItIsRead() async throws {
        let mappings = try Self.itemsLayout()
        // 5,000 records, the 10th one broken.
        var text = ""
        for index in 0..<5000 {
            text += index == 9 ? "I0x0SKU-BAD!\n" : "I" + String(format: "%03d", index % 1000) + String(format: "SKU-%04d", index) + "\n"
        }
        let file = mappings + "/big.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let harness = try Harness("""
        routes:
          - id: items
            from: test:in
            steps:
              - split:
                  fixed-width: items.yaml
                  path: item
                  rejects: test:rejects
                  steps: [ { to: "test:backend" } ]
              - to: test:after
        """, mappings: mappings)
        var properties: [String: String] = [:]
        properties[Message.bodyFileProperty] = file
        let message = Message(properties: properties)
        _ = try await harness.engine.process(routeID: "items", Exchange(message: message, pattern: .inOnly))
        let delivered = harness.endpoints.exchanges("backend")
        #expect(delivered.count == 4999)
        #expect(delivered.first?.message.bodyString == #"{"qty":0,"sku":"SKU-0000"}"#)
        #expect(delivered.last?.message.headers["split.index"] == "4998")
        #expect(delivered.last?.message.properties[Message.bodyFileProperty] == nil)
        #expect(harness.endpoints.exchanges("rejects").map(\.message.bodyString) == ["I0x0SKU-BAD!"])
        #expect(harness.endpoints.exchanges("after").count == 1)
        let split = harness.observer.all.last { $0.step?.kind == "split" && $0.phase == .completed }
        #expect(split?.detail == "4999 parts, streamed, 1 rejected to test:rejects")

        // A part that fails without rejects stops the reading and fails the split.
        let strict = try Harness("""
        routes:
          - id: items
            from: test:in
            steps:
              - split:
                  fixed-width: items.yaml
                  path: item
                  steps: [ { to: "test:backend?failFirst=3000" } ]
        """, mappings: mappings)
        await #expect(throws: StepFailure.self) {
            _ = try await strict.engine.process(routeID: "items", Exchange(message: message, pattern: .inOnly))
        }
        #expect(strict.endpoints.exchanges("backend").count == 1)
    }

    @Test func acceptedMessagesRoutedInTheBackgroundAreBounded() async throws {
        let store = try Self.store()
        var state = NodeState(store)
        state.intakeConcurrency = 3
        let harness = try Harness("""
            routes:
              - id: intake
                from: test:in?async=true
                steps:
                  - to: test:slow?gate=true
            """, state: state)
        let run = Task { try await harness.engine.run() }
        defer { run.cancel() }
        var registered: Delivery?
        for _ in 0..<500 where registered == nil {
            registered = harness.endpoints.deliveries.withLock { $0["in"] }
            if registered == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let deliver = try #require(registered)
        let accepted = AcceptedCount()
        let senders = Task {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<8 {
                    group.addTask {
                        _ = try? await deliver(Exchange(message: Message(body: ByteBuffer(string: "m\(n)")), pattern: .inOnly))
                        accepted.count.withLock { $0 += 1 }
                    }
                }
            }
        }
        // Three are stored and held at the gate while they route; the other five wait to
        // be stored, unanswered, instead of piling up in the background.
        for _ in 0..<500 where accepted.count.withLock({ $0 }) < 3 { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(accepted.count.withLock { $0 } == 3)
        #expect(try await store.pending().count == 3)
        harness.endpoints.gate.set(())
        await senders.value
        #expect(accepted.count.withLock { $0 } == 8)
        for _ in 0..<500 where try await !store.pending().isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(harness.endpoints.exchanges("slow").count == 8)
        #expect(try await store.pending().isEmpty)
    }
}

/// Calls that came back, counted from several tasks.
final class AcceptedCount: Sendable {
    let count = Mutex(0)
}
