// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTestServers
import Synchronization
import Testing

/// An HTTP backend that can be switched down (503) and up, and keeps what it accepted.
final class SwitchableBackend: Sendable {
    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let backend: SwitchableBackend

        func respond(to request: Request, context: Context) async throws -> Response {
            let body = try await request.body.collect(upTo: 1 << 20)
            guard backend.up.withLock({ $0 }) else {
                backend.refused.withLock { $0 += 1 }
                return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "down")))
            }
            let order = request.headers[HTTPField.Name("X-Order-ID")!] ?? ""
            backend.accepted.withLock { $0.append((order, String(buffer: body), request.headers[HTTPField.Name("replay.of")!])) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "stored \(order)")))
        }
    }

    let up = Mutex(false)
    let refused = Mutex(0)
    let accepted = Mutex<[(order: String, body: String, replayOf: String?)]>([])
    let port = AsyncValue<Int>()

    /// Runs the backend in `group` and returns its port.
    func start(in group: inout ThrowingTaskGroup<Void, any Error>) async -> Int {
        var logger = Logger(label: "backend")
        logger.logLevel = .critical
        let application = Application(
            responder: Responder(backend: self),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { [port] in port.set($0.localAddress?.port ?? 0) },
            logger: logger
        )
        group.addTask { try await application.run() }
        return await port.value
    }
}

/// Retry, dead letters, replay and asynchronous intake through a real node process and a
/// real HTTP backend.
@Suite(.serialized)
struct FailureHandlingNodeTests {
    /// Runs `body` with the backends listening, given their ports; stops them after.
    static func serving(_ backends: [SwitchableBackend], _ body: ([Int]) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var ports: [Int] = []
            for backend in backends { ports.append(await backend.start(in: &group)) }
            defer { group.cancelAll() }
            try await body(ports)
        }
    }

    static func writeNode(_ folder: String, routes: String) throws -> String {
        try routes.write(toFile: folder + "/routes/main.yaml", atomically: true, encoding: .utf8)
        try """
        http: { listen: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:\(freePort())" }
        routes: routes
        """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        return folder + "/switchboard.yaml"
    }

    @Test func aFailingMessageIsRetriedThenDeadLetteredThenReplayedOnceTheBackendIsBack() async throws {
        let backend = SwitchableBackend()
        try await Self.serving([backend]) { ports in
            let port = ports[0]
            let folder = try CLITests.temporaryFolder()
            let config = try Self.writeNode(folder, routes: """
            routes:
              - id: orders
                from: http:/orders?method=POST
                on-error: { retry: { attempts: 3, backoff: 10ms }, dead-letter: true }
                steps:
                  - to: "http://127.0.0.1:\(port)/store"
            """)
            let node = try await NodeProcess(config: config)
            let answer = try await post("http://127.0.0.1:\(node.httpPort)/orders", "order 99", headers: [("X-Order-ID", "99")])
            #expect(answer.status == 502)
            #expect(backend.refused.withLock { $0 } == 3, "three attempts")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
            let id = try #require(object["deadLetter"] as? String)

            let adminConfig = "--config=\(config)"
            let listing = try CLITests.run(["dead-letters", adminConfig])
            #expect(listing.status == 0, "\(listing.stderr)")
            #expect(listing.stdout.contains(id) && listing.stdout.contains("0 to http://127.0.0.1:\(port)/store"), "\(listing.stdout)")
            #expect(listing.stdout.contains("answered HTTP 503"), "\(listing.stdout)")

            // The backend is still down: the replay fails and the dead letter stays, updated.
            let failed = try CLITests.run(["replay", id, adminConfig])
            #expect(failed.status == 1)
            #expect(failed.stdout.contains("failed again"), "\(failed.stdout)")

            backend.up.withLock { $0 = true }
            let replay = try CLITests.run(["replay", id, adminConfig])
            #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
            #expect(replay.stdout.contains("1 replayed, 1 delivered, 0 failed"), "\(replay.stdout)")
            let delivered = backend.accepted.withLock { $0 }
            #expect(delivered.count == 1)
            #expect(delivered.first?.body == "order 99")
            #expect(delivered.first?.order == "99")
            // Switchboard's own headers (replay.of) are not sent on the wire.
            #expect(delivered.first?.replayOf == nil)

            let empty = try CLITests.run(["dead-letters", adminConfig, "--json"])
            #expect(empty.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "{\"deadLetters\":[]}", "\(empty.stdout)")
            // The replay is traced and linked to the original message.
            let traces = try CLITests.run(["trace", adminConfig, "--header", "replay.of=\(id)", "--json"])
            #expect(traces.status == 0, "\(traces.stderr)")
            #expect(traces.stdout.contains("\"status\":\"ok\""), "\(traces.stdout)")
            try await node.stop()
            // Offline, the store file answers.
            let offline = try CLITests.run(["dead-letters", adminConfig])
            #expect(offline.stdout.contains("no dead letters"), "\(offline.stdout)\(offline.stderr)")
        }
    }

    @Test func sendNamesTheMessageAndItsDeadLetterAndLettersCanBeDiscarded() async throws {
        let backend = SwitchableBackend()
        try await Self.serving([backend]) { ports in
            let folder = try CLITests.temporaryFolder()
            let config = try Self.writeNode(folder, routes: """
            routes:
              - id: orders
                from: http:/orders?method=POST
                on-error: { dead-letter: true }
                steps:
                  - to: "http://127.0.0.1:\(ports[0])/store"
            """)
            try "order".write(toFile: folder + "/order.txt", atomically: true, encoding: .utf8)
            let node = try await NodeProcess(config: config)
            let adminConfig = "--config=\(config)"
            var letters: [String] = []
            for _ in 0..<3 {
                let sent = try CLITests.run(["send", "orders", "--file", folder + "/order.txt", adminConfig])
                #expect(sent.status == 1)
                let lines = sent.stderr.components(separatedBy: "\n")
                #expect(lines.contains { $0.hasPrefix("message ") }, "\(sent.stderr)")
                let letter = try #require(lines.first { $0.hasPrefix("dead letter ") }, "\(sent.stderr)")
                letters.append(String(letter.dropFirst("dead letter ".count).prefix(36)))
            }
            let one = try CLITests.run(["dead-letters", "--discard", letters[0], adminConfig])
            #expect(one.status == 0, "\(one.stderr)")
            #expect(one.stdout == "discarded \(letters[0])\n")
            let again = try CLITests.run(["dead-letters", "--discard", letters[0], adminConfig])
            #expect(again.status == 1)
            #expect(again.stderr.contains("no dead letter with id \(letters[0])"))
            try await node.stop()
            // Offline, from the state store file: the rest of the route's letters.
            let rest = try CLITests.run(["dead-letters", "--discard-all", "--route", "orders", adminConfig])
            #expect(rest.status == 0, "\(rest.stderr)")
            #expect(rest.stdout.contains("discarded \(letters[1])") && rest.stdout.contains("2 dead letters discarded"), "\(rest.stdout)")
            #expect(try CLITests.run(["dead-letters", adminConfig]).stdout.contains("no dead letters"))
        }
    }

    @Test func acceptedAsyncMessagesSurviveASIGKILLAndReachAnIdempotentRouteOnce() async throws {
        let backend = SwitchableBackend()
        try await Self.serving([backend]) { ports in
            let port = ports[0]
            let folder = try CLITests.temporaryFolder()
            let config = try Self.writeNode(folder, routes: """
            routes:
              - id: intake
                from: http:/intake?method=POST&mode=async
                on-error: { retry: { attempts: 100, backoff: 50ms, max-backoff: 100ms }, dead-letter: true }
                steps:
                  - idempotent: { key: "${header.X-Order-ID}" }
                  - to: "http://127.0.0.1:\(port)/store"
            """)
            let first = try await NodeProcess(config: config)
            let orders = (1...20).map { "order-\($0)" }
            var accepted: [String] = []
            for order in orders {
                let answer = try await post("http://127.0.0.1:\(first.httpPort)/intake", "body of \(order)", headers: [("X-Order-ID", order)])
                #expect(answer.status == 202, "\(answer.body)")
                let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
                #expect(object?["status"] as? String == "accepted")
                if let id = object?["id"] as? String { accepted.append(id) }
            }
            #expect(accepted.count == 20)
            // The backend is down: every message is in its retry loop when the node dies.
            for _ in 0..<200 where backend.refused.withLock({ $0 }) < 40 {
                try await Task.sleep(for: .milliseconds(10))
            }
            try await first.kill9()
            // Requests the dead node had already written can still be in the backend's
            // socket buffers: let the backend refuse them (it is still down) before it comes
            // up, or they would be taken as deliveries and the second node's as duplicates.
            var refusedSoFar = -1
            for _ in 0..<50 {
                let now = backend.refused.withLock { $0 }
                if now == refusedSoFar { break }
                refusedSoFar = now
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(backend.accepted.withLock { $0.isEmpty })

            backend.up.withLock { $0 = true }
            let second = try await NodeProcess(config: config)
            // A sender retrying an order already accepted (a new message, the same key).
            let again = try await post("http://127.0.0.1:\(second.httpPort)/intake", "again", headers: [("X-Order-ID", "order-3")])
            #expect(again.status == 202)
            for _ in 0..<1000 where backend.accepted.withLock({ $0.count }) < 20 {
                try await Task.sleep(for: .milliseconds(10))
            }
            // Give a duplicate time to arrive if there were one.
            try await Task.sleep(for: .milliseconds(300))
            try await second.stop()
            let delivered = backend.accepted.withLock { $0 }
            #expect(delivered.map(\.order).sorted() == orders.sorted(), "each order once: \(delivered.map(\.order))")
            #expect(!delivered.contains { $0.body == "again" })
            #expect(second.log.text.withLock { $0 }.contains("resuming accepted messages count=20"), "\(second.log.text.withLock { $0 })")
        }
    }

    @Test func servicesAreConfiguredRegisteredThroughTheAdminAPIAndListed() async throws {
        let backend = SwitchableBackend()
        backend.up.withLock { $0 = true }
        try await Self.serving([backend]) { ports in
            let port = ports[0]
            let folder = try CLITests.temporaryFolder()
            let config = try Self.writeNode(folder, routes: """
            services:
              orders:
                instances: [ "http://127.0.0.1:\(freePort())", "http://127.0.0.1:\(port)" ]
                failover: 1
                breaker: { failures: 1, open: 1h }
            routes:
              - id: orders
                from: http:/orders?method=POST
                steps:
                  - to: "service:orders/store"
            """)
            let node = try await NodeProcess(config: config)
            for index in 0..<4 {
                let answer = try await post("http://127.0.0.1:\(node.httpPort)/orders", "order \(index)", headers: [("X-Order-ID", "\(index)")])
                #expect(answer.status == 200, "\(answer.body)")
            }
            #expect(backend.accepted.withLock { $0.count } == 4)

            // An instance registered at run time, with a TTL.
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(node.adminPort)/admin/services/billing/instances/b1")
            request.method = .PUT
            request.body = .bytes(ByteBuffer(string: #"{"url": "http://127.0.0.1:\#(port)", "version": "v2", "ttl": "1h"}"#))
            let registered = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            #expect(registered.status == .ok)

            let listing = try CLITests.run(["services", "--config=\(config)"])
            #expect(listing.status == 0, "\(listing.stderr)")
            #expect(listing.stdout.contains("billing@v2"), "\(listing.stdout)")
            #expect(listing.stdout.contains("ttl 3600s") || listing.stdout.contains("ttl 3599s"), "\(listing.stdout)")
            let json = try CLITests.run(["services", "--config=\(config)", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let services = try #require(object["services"] as? [[String: Any]])
            #expect(services.compactMap { $0["name"] as? String } == ["billing", "orders"])
            let orders = try #require(services.last?["instances"] as? [[String: Any]])
            #expect(orders.first?["failures"] as? Int == 1, "the dead instance failed once, then its breaker opened: \(orders)")
            #expect(orders.first?["breaker"] as? String == "open")
            #expect(orders.last?["calls"] as? Int == 4)
            // The breaker's change is logged and metered.
            let (_, metrics) = try await NodeTests.get("http://127.0.0.1:\(node.adminPort)/metrics")
            #expect(metrics.contains(#"switchboard_breaker_open{instance="0",service="orders"} 1"#) || metrics.contains(#"switchboard_breaker_open{service="orders",instance="0"} 1"#), "\(metrics)")
            #expect(metrics.contains("switchboard_breaker_transitions_total"), "\(metrics)")
            #expect(node.log.text.withLock { $0 }.contains("circuit breaker opened"))

            var removal = HTTPClientRequest(url: "http://127.0.0.1:\(node.adminPort)/admin/services/billing/instances/b1")
            removal.method = .DELETE
            #expect(try await HTTPClient.shared.execute(removal, timeout: .seconds(5)).status == .ok)
            #expect(try await HTTPClient.shared.execute(removal, timeout: .seconds(5)).status == .notFound)
            try await node.stop()
        }
    }
}
