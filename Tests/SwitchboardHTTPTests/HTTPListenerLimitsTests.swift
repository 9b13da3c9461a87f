// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MetricsTestKit
import NIOCore
@testable import SwitchboardHTTP
import Testing

/// What a hostile or broken client can hold of the listener: connections, time for a head or
/// a body, header count and size, memory for bodies; and the request framing it must get right.
struct HTTPListenerLimitsTests {
    typealias RawConnection = HTTPListenerTests.RawConnection

    static let routes = HTTPListenerTests.routes + """

      - id: many
        from: http:/many
        steps:
          - set-header: { name: X-H3, value: changed }
          - set-header: { name: X-New, value: new }
          - set-body: "many"
    """

    /// Sends `text` one byte every `pause`, leaving out the last `keep` bytes, until cancelled.
    static func trickle(_ text: String, keep: Int = 1, pause: Duration = .milliseconds(100), on connection: RawConnection) -> Task<Int, Never> {
        Task {
            var sent = 0
            for character in text.dropLast(keep) {
                if Task.isCancelled { break }
                connection.send(String(character))
                sent += 1
                try? await Task.sleep(for: pause)
            }
            return sent
        }
    }

    static func status(_ text: String) -> String? {
        HTTPListenerTests.replies(in: text).first?.status
    }

    @Test func aHeadTrickledByteByByteGets408AtTheHeaderTimeout() async throws {
        try await SwitchboardUnderTest.run(Self.routes, configure: { $0.headerTimeout = .milliseconds(1500) }) { node in
            let connection = try RawConnection(port: node.port)
            let head = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "a", count: 100))\r\n\r\n"
            // The first byte at once (a connection that sends nothing is closed without a
            // reply), then one every 100 ms: each would have moved an idle timer; the head's
            // deadline does not move.
            connection.send(String(head.prefix(1)))
            let sender = Self.trickle(String(head.dropFirst()), on: connection)
            let reply = await connection.read()
            sender.cancel()
            let sent = await sender.value
            #expect(reply.closed)
            #expect(Self.status(reply.text) == "HTTP/1.1 408 Request Timeout")
            #expect(reply.text.contains("http.header-timeout"))
            #expect(sent < head.count - 1, "the whole head but its last byte went out before any answer")
            #expect(node.adapter.listener.counters.total(.headerTimeout) == 1)
        }
    }

    @Test func aConnectionThatSendsNothingClosesAtTheHeaderTimeoutWithoutAReply() async throws {
        try await SwitchboardUnderTest.run(Self.routes, configure: { $0.headerTimeout = .milliseconds(300) }) { node in
            // The idle timeout is 60 s; a new connection's first head is due within the header timeout.
            let connection = try RawConnection(port: node.port)
            let reply = await connection.read()
            #expect(reply.closed)
            #expect(reply.text.isEmpty)
        }
    }

    @Test func betweenRequestsTheIdleTimeoutAppliesNotTheHeaderTimeout() async throws {
        try await SwitchboardUnderTest.run(Self.routes, configure: { $0.headerTimeout = .milliseconds(200) }) { node in
            let connection = try RawConnection(port: node.port)
            connection.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = await connection.read(until: HTTPListenerTests.hasReplies(1))
            #expect(Self.status(first.text) == "HTTP/1.1 200 OK")
            // Several header timeouts with nothing sent: a keep-alive connection waiting for its
            // next request is idle, not slow.
            try await Task.sleep(for: .seconds(1))
            connection.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            let second = await connection.read(until: HTTPListenerTests.hasReplies(1))
            #expect(Self.status(second.text) == "HTTP/1.1 200 OK")
        }
    }

    @Test func aBodyTrickledByteByByteGets408AtTheBodyTimeout() async throws {
        // No other deadline falls within the test: only the body's can answer.
        try await SwitchboardUnderTest.run(Self.routes, configure: {
            $0.bodyTimeout = .milliseconds(500)
            $0.headerTimeout = .seconds(60)
        }) { node in
            let connection = try RawConnection(port: node.port)
            connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
            let sender = Self.trickle(String(repeating: "b", count: 200), on: connection)
            let reply = await connection.read()
            sender.cancel()
            let sent = await sender.value
            #expect(reply.closed)
            #expect(Self.status(reply.text) == "HTTP/1.1 408 Request Timeout")
            #expect(reply.text.contains("http.body-timeout"))
            #expect(sent < 199)
            #expect(node.adapter.listener.counters.total(.bodyTimeout) == 1)
            #expect(node.adapter.listener.bodyBudget.inUse == 0)
        }
    }

    @Test func connectionsPastTheLimitAreClosedAtOnceAndCounted() async throws {
        let metrics = TestMetrics()
        try await SwitchboardUnderTest.run(Self.routes, metrics: metrics, configure: { $0.maxConnections = 2 }) { node in
            let first = try RawConnection(port: node.port)
            var second: RawConnection? = try RawConnection(port: node.port)
            for connection in [first, second!] {
                connection.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(Self.status(await connection.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK")
            }
            let third = try RawConnection(port: node.port)
            let refused = await third.read()
            #expect(refused.closed)
            #expect(refused.text.isEmpty)
            #expect(node.adapter.listener.counters.total(.connectionLimit) == 1)
            #expect(try metrics.expectCounter("switchboard_http_rejected_total", [("reason", "connection-limit")]).totalValue == 1)
            // The connections kept are served as before.
            first.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(Self.status(await first.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK")
            // Once one closes, a new connection is served.
            second = nil
            var served = false
            for _ in 0..<50 where !served {
                let next = try RawConnection(port: node.port)
                next.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                served = Self.status(await next.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK"
                if !served { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(served)
            _ = second
        }
    }

    @Test func slowClientsAtTheLimitDoNotStopAKeepAliveClient() async throws {
        try await SwitchboardUnderTest.run(Self.routes, configure: {
            $0.maxConnections = 20
            $0.headerTimeout = .milliseconds(500)
        }) { node in
            let client = try RawConnection(port: node.port)
            client.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(Self.status(await client.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK")
            // Ten times the limit of slow clients, coming and going for two seconds.
            let attack = Task {
                var slow: [RawConnection] = []
                let end = ContinuousClock.now + .seconds(2)
                while ContinuousClock.now < end {
                    for _ in 0..<200 {
                        guard let connection = try? RawConnection(port: node.port) else { continue }
                        connection.send("G")
                        slow.append(connection)
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                    if slow.count > 600 { slow.removeFirst(200) }
                }
                return slow.count
            }
            var answered = 0
            for _ in 0..<10 {
                client.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                if Self.status(await client.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK" { answered += 1 }
                try await Task.sleep(for: .milliseconds(100))
            }
            _ = await attack.value
            #expect(answered == 10)
            #expect(node.adapter.listener.counters.total(.connectionLimit) > 0)
        }
    }

    @Test func headsOverTheCountOrSizeLimitGet431() async throws {
        try await SwitchboardUnderTest.run(Self.routes) { node in
            func head(fields: Int, padding: Int = 0) -> String {
                var text = "GET /echo HTTP/1.1\r\nHost: x\r\n"
                for index in 0..<fields { text += "X-H\(index): v\r\n" }
                if padding > 0 { text += "X-Pad: \(String(repeating: "p", count: padding))\r\n" }
                return text + "\r\n"
            }
            // 100 fields with Host: served.
            let within = try RawConnection(port: node.port)
            within.send(head(fields: 99))
            #expect(Self.status(await within.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK")
            for (name, text) in [("101 fields", head(fields: 100)), ("10,000 fields", head(fields: 10_000)), ("17 KiB", head(fields: 0, padding: 17 * 1024))] {
                let connection = try RawConnection(port: node.port)
                connection.send(text)
                let reply = await connection.read()
                #expect(reply.closed, "\(name)")
                #expect(Self.status(reply.text) == "HTTP/1.1 431 Request Header Fields Too Large", "\(name)")
                #expect(reply.text.contains("http.max-header-count"), "\(name)")
            }
            #expect(node.adapter.listener.counters.total(.headerTooLarge) == 3)
        }
    }

    @Test func echoedHeadersAreLeftOutOfRepliesToRequestsWithManyHeaders() async throws {
        try await SwitchboardUnderTest.run(Self.routes) { node in
            let connection = try RawConnection(port: node.port)
            var text = "GET /many HTTP/1.1\r\nHost: x\r\n"
            for index in 0..<40 { text += "X-H\(index): v\(index)\r\n" }
            connection.send(text + "\r\n")
            let reply = try #require(HTTPListenerTests.replies(in: await connection.read(until: HTTPListenerTests.hasReplies(1)).text).first)
            #expect(reply.headers["x-h3"] == "changed")
            #expect(reply.headers["x-new"] == "new")
            #expect(reply.headers["x-h0"] == nil)
            #expect(reply.headers["x-h39"] == nil)
        }
    }

    @Test func aRequestNeedsOneHostAndHTTP10CannotCarryTransferEncoding() async throws {
        try await SwitchboardUnderTest.run(Self.routes) { node in
            let cases = [
                ("no Host", "GET /echo HTTP/1.1\r\n\r\n", "no Host header"),
                ("two Hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "2 Host headers"),
                ("HTTP/1.0 chunked", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding"),
            ]
            for (name, request, reason) in cases {
                let connection = try RawConnection(port: node.port)
                connection.send(request)
                let reply = await connection.read()
                #expect(reply.closed, "\(name)")
                #expect(Self.status(reply.text)?.hasSuffix(" 400 Bad Request") == true, "\(name)")
                #expect(reply.text.contains(reason), "\(name)")
            }
            // HTTP/1.0 needs no Host.
            let old = try RawConnection(port: node.port)
            old.send("GET /echo HTTP/1.0\r\n\r\n")
            #expect(Self.status(await old.read().text) == "HTTP/1.0 200 OK")
        }
    }

    @Test func anHTTP09RequestLineGets400AndAClose() async throws {
        try await SwitchboardUnderTest.run(Self.routes) { node in
            let connection = try RawConnection(port: node.port)
            connection.send("GET /echo\r\n")
            let reply = await connection.read()
            #expect(reply.closed)
            #expect(Self.status(reply.text) == "HTTP/1.1 400 Bad Request")
            #expect(reply.text.contains("HTTP/0.9"))
            // Empty lines before a request line are allowed.
            let padded = try RawConnection(port: node.port)
            padded.send("\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(Self.status(await padded.read(until: HTTPListenerTests.hasReplies(1)).text) == "HTTP/1.1 200 OK")
        }
    }

    @Test func bodiesPastTheMemoryBudgetGet503AndTheBudgetComesBack() async throws {
        try await SwitchboardUnderTest.run(Self.routes, configure: {
            $0.maxBufferedBodies = 100_000
            $0.bodyFileThreshold = 1 << 20
        }) { node in
            let budget = node.adapter.listener.bodyBudget
            let holding = try RawConnection(port: node.port)
            holding.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 80000\r\n\r\n" + String(repeating: "a", count: 60_000))
            for _ in 0..<100 where budget.inUse < 60_000 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(budget.inUse == 60_000)
            let refused = try RawConnection(port: node.port)
            refused.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 80000\r\n\r\n" + String(repeating: "b", count: 60_000))
            let answer = await refused.read(until: HTTPListenerTests.hasReplies(1))
            #expect(Self.status(answer.text) == "HTTP/1.1 503 Service Unavailable")
            #expect(answer.text.contains("http.max-buffered-bodies"))
            #expect(node.adapter.listener.counters.total(.bodyBuffersFull) == 1)
            // The body that fitted is routed once whole.
            holding.send(String(repeating: "a", count: 20_000))
            let reply = HTTPListenerTests.replies(in: await holding.read(until: HTTPListenerTests.hasReplies(1)).text).first
            #expect(reply?.status == "HTTP/1.1 200 OK")
            #expect(reply?.body == "got " + String(repeating: "a", count: 80_000))
            #expect(budget.inUse == 0)
        }
    }

    /// A listener whose bodies past 16 KiB go to files under `directory`, with 1 MiB of body memory.
    static func withSpoolingNode(_ body: @escaping @Sendable (SwitchboardUnderTest, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-bodies-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await SwitchboardUnderTest.run(Self.routes, configure: {
            $0.maxBufferedBodies = 1 << 20
            $0.bodyFileThreshold = 16 * 1024
            $0.bodyFileDirectory = directory
        }) { node in try await body(node, directory) }
    }

    /// Twenty unfinished bodies of 200 KB, half sent (2 MB, twice the memory budget, held at
    /// once), then finished one after another: each must come back whole. `whileHeld` runs
    /// while they are held.
    static func sendHeldBodies(to node: SwitchboardUnderTest, whileHeld: () async throws -> Void = {}) async throws {
        let size = 200_000
        var connections: [RawConnection] = []
        for index in 0..<20 {
            let connection = try RawConnection(port: node.port)
            let letter = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
            connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n" + String(repeating: letter, count: size / 2))
            connections.append(connection)
        }
        try await whileHeld()
        for (index, connection) in connections.enumerated() {
            let letter = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
            connection.send(String(repeating: letter, count: size / 2))
            let reply = HTTPListenerTests.replies(in: await connection.read(until: HTTPListenerTests.hasReplies(1)).text).first
            #expect(reply?.status == "HTTP/1.1 200 OK", "body \(index)")
            #expect(reply?.body == "got " + String(repeating: letter, count: size), "body \(index)")
        }
    }

    @Test func bodiesPastTheFileThresholdWaitInAFileAndArriveWhole() async throws {
        try await Self.withSpoolingNode { node, directory in
            let budget = node.adapter.listener.bodyBudget
            try await Self.sendHeldBodies(to: node) {
                try await Task.sleep(for: .milliseconds(500))
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "body files have no names")
            }
            #expect(node.adapter.listener.counters.total(.bodyBuffersFull) == 0)
            // Chunked, in a file too.
            let chunked = try RawConnection(port: node.port)
            let chunk = String(repeating: "z", count: 30_000)
            chunked.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7530\r\n\(chunk)\r\n7530\r\n\(chunk)\r\n0\r\n\r\n")
            let reply = HTTPListenerTests.replies(in: await chunked.read(until: HTTPListenerTests.hasReplies(1)).text).first
            #expect(reply?.body == "got " + chunk + chunk)
            #expect(budget.inUse == 0)
        }
    }
}
