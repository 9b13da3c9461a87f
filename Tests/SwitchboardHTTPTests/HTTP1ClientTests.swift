// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import SwitchboardTestServers
import Testing

@testable import SwitchboardHTTP

#if canImport(Glibc)
import Glibc
#endif

/// The producers' HTTP/1.1 client against a loopback server whose every answer the test
/// scripts: keep-alive reuse, the keep-alive race, connection limits, chunked and HEAD
/// replies, size limits, timeouts and idle connections.
struct HTTP1ClientTests {
    static func client(maxConnections: Int = 8, idleTimeout: TimeAmount = .seconds(60)) -> HTTP1Client {
        HTTP1Client(settings: .init(connectTimeout: .seconds(2), idleTimeout: idleTimeout, maxConnectionsPerHost: maxConnections))
    }

    static func post(_ client: HTTP1Client, _ port: Int, _ body: String = "hello", method: HTTPMethod = .POST, timeout: TimeAmount = .seconds(5), maxResponseSize: Int = 1 << 20) async throws -> HTTP1Client.Response {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1:\(port)")
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/path?q=1", headers: headers)
        return try await client.execute(
            host: "127.0.0.1", port: port, head: head, body: method == .POST ? ByteBuffer(string: body) : nil,
            timeout: timeout, maxResponseSize: maxResponseSize
        )
    }

    static func ok(_ body: String, extra: String = "") -> ScriptedServer.Reply {
        .answer("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)")
    }

    @Test func reusesOneKeepAliveConnection() async throws {
        let server = try ScriptedServer { _, request in Self.ok("echo \(request.body)") }
        defer { server.stop() }
        let client = Self.client()
        for index in 0..<5 {
            let response = try await Self.post(client, server.port, "n\(index)")
            #expect(response.head.status == .ok)
            #expect(String(buffer: response.body) == "echo n\(index)")
        }
        #expect(server.connections == 1)
        let first = try #require(server.requests.first)
        #expect(first.line == "POST /path?q=1 HTTP/1.1")
        #expect(first.headers["content-length"] == "2")
        await client.shutdown()
    }

    @Test func bodiesOfEverySizeArriveWholeWithTheirLength() async throws {
        let server = try ScriptedServer { _, request in Self.ok("\(request.body.utf8.count)") }
        defer { server.stop() }
        let client = Self.client()
        // Up to HTTPWire.inlineBodyLimit the body follows the head in its buffer; past it, in a buffer of its own.
        let sizes = [0, 1, HTTPWire.inlineBodyLimit, HTTPWire.inlineBodyLimit + 1, 200_000]
        for size in sizes {
            let body = String(repeating: "0123456789", count: size / 10 + 1).prefix(size)
            let response = try await Self.post(client, server.port, String(body))
            #expect(String(buffer: response.body) == "\(size)")
        }
        let requests = server.requests
        #expect(requests.map(\.body) == sizes.map { String(String(repeating: "0123456789", count: $0 / 10 + 1).prefix($0)) })
        #expect(requests.map { $0.headers["content-length"] } == sizes.map { "\($0)" })
        #expect(requests.allSatisfy { $0.line == "POST /path?q=1 HTTP/1.1" && $0.headers["host"] == "127.0.0.1:\(server.port)" })
        #expect(server.connections == 1)
        await client.shutdown()
    }

    @Test func aFieldThatWouldInjectOthersIsRefusedBeforeAnythingIsSent() async throws {
        let server = try ScriptedServer { _, _ in Self.ok("ok") }
        defer { server.stop() }
        let client = Self.client(maxConnections: 1)
        for (name, value) in [("X-Evil", "a\r\nX-Injected: yes"), ("X-Nul", "a\u{0}b"), ("Bad Name", "v"), ("", "v")] {
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "127.0.0.1")
            headers.add(name: name, value: value)
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)
            await #expect(throws: HTTP1Client.Failure.invalidField(name)) {
                try await client.execute(host: "127.0.0.1", port: server.port, head: head, body: nil, timeout: .seconds(5), maxResponseSize: 1024)
            }
        }
        // A method is a token too: one with a space or a line break would rewrite the request line.
        for method in ["GET /admin HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET", "BAD METHOD", ""] {
            let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: "/")
            await #expect(throws: HTTP1Client.Failure.invalidMethod(method)) {
                try await client.execute(host: "127.0.0.1", port: server.port, head: head, body: nil, timeout: .seconds(5), maxResponseSize: 1024)
            }
        }
        // Nothing reached the server, and the only connection slot is still free.
        #expect(server.requests.isEmpty)
        #expect(String(buffer: try await Self.post(client, server.port).body) == "ok")
        await client.shutdown()
    }

    @Test func aReplyCutShortFailsAsClosedMidReply() async throws {
        let server = try ScriptedServer { _, _ in .answerAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b") }
        defer { server.stop() }
        let client = Self.client()
        await #expect(throws: HTTP1Client.Failure.closed(beforeAnyReply: false)) {
            try await Self.post(client, server.port)
        }
        #expect(server.requests.count == 1, "a request that got part of a reply is not resent")
        await client.shutdown()
    }

    @Test func resendsOnceWhenAReusedConnectionClosesBeforeAnswering() async throws {
        // Connection 0 answers its first request and drops the second unanswered, as a
        // server does when its keep-alive timer fires as a request arrives.
        let server = try ScriptedServer { connection, request in
            connection.index == 0 && connection.requests == 2 ? .close : Self.ok("answer \(request.body)")
        }
        defer { server.stop() }
        let client = Self.client()
        _ = try await Self.post(client, server.port, "first")
        let response = try await Self.post(client, server.port, "second")
        #expect(String(buffer: response.body) == "answer second")
        #expect(server.connections == 2)
        #expect(server.requests.map(\.body) == ["first", "second", "second"])
        await client.shutdown()
    }

    @Test func neverResendsOnANewConnection() async throws {
        let server = try ScriptedServer { _, _ in .close }
        defer { server.stop() }
        let client = Self.client()
        await #expect(throws: HTTP1Client.Failure.closed(beforeAnyReply: true)) {
            try await Self.post(client, server.port)
        }
        #expect(server.requests.count == 1)
        await client.shutdown()
    }

    @Test func aRequestOnAConnectionClosedMeanwhileFailsInsteadOfHanging() async throws {
        let server = try ScriptedServer { _, _ in Self.ok("ok") }
        defer { server.stop() }
        let client = Self.client()
        let (connection, _) = try await client.pool(.init(host: "127.0.0.1", port: server.port)).acquire(deadline: .now() + .seconds(5))
        try await connection.channel.close()
        var request = try HTTPRequestBytes(method: .GET, target: "/")
        try request.add("Host", "127.0.0.1")
        request.finish(body: nil)
        // Watched from a task, not awaited: without the fix it would hang until its 30 s timeout.
        let outcome = Mutex<String?>(nil)
        let sending = Task {
            do {
                _ = try await connection.send(request, timeout: .seconds(30), maxResponseSize: 1024)
                outcome.withLock { $0 = "answered" }
            } catch {
                outcome.withLock { $0 = "failure(\(String(reflecting: error)))" }
            }
        }
        var waited = 0
        while outcome.withLock({ $0 }) == nil, waited < 250 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        sending.cancel()
        let seen = outcome.withLock { $0 } ?? "no outcome within 5 s"
        #expect(seen == "failure(SwitchboardHTTP.HTTP1Client.Failure.closed(beforeAnyReply: true))")
        await client.shutdown()
    }

    @Test func connectionCloseRepliesAreNotReused() async throws {
        let server = try ScriptedServer { _, _ in Self.ok("bye", extra: "Connection: close\r\n") }
        defer { server.stop() }
        let client = Self.client()
        for _ in 0..<3 {
            #expect(String(buffer: try await Self.post(client, server.port).body) == "bye")
        }
        #expect(server.connections == 3)
        await client.shutdown()
    }

    @Test func chunkedAndHeadRepliesComplete() async throws {
        let server = try ScriptedServer { _, request in
            if request.line.hasPrefix("HEAD") {
                // A HEAD reply announces a length but carries no body.
                return .answer("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            }
            return .answer("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Part: a\r\nX-Part: b\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        }
        defer { server.stop() }
        let client = Self.client()
        let chunked = try await Self.post(client, server.port)
        #expect(chunked.head.status == .created)
        #expect(String(buffer: chunked.body) == "hello world")
        #expect(chunked.head.headers["X-Part"] == ["a", "b"])
        let head = try await Self.post(client, server.port, method: .HEAD)
        #expect(head.head.headers["Content-Length"] == ["1234"])
        #expect(head.body.readableBytes == 0)
        // The HEAD reply left the connection usable.
        #expect(String(buffer: try await Self.post(client, server.port).body) == "hello world")
        #expect(server.connections == 1)
        await client.shutdown()
    }

    @Test func informationalRepliesAreSkipped() async throws {
        let server = try ScriptedServer { _, _ in
            .answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\ndone")
        }
        defer { server.stop() }
        let client = Self.client()
        let response = try await Self.post(client, server.port)
        #expect(response.head.status == .accepted)
        #expect(String(buffer: response.body) == "done")
        await client.shutdown()
    }

    @Test func connectionsPerHostAreLimited() async throws {
        let server = try ScriptedServer { _, request in
            Thread.sleep(forTimeInterval: 0.05)
            return Self.ok(request.body)
        }
        defer { server.stop() }
        let client = Self.client(maxConnections: 2)
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                // The limit is the point, not the time: a loaded machine gets 30 s, not 5.
                group.addTask { String(buffer: try await Self.post(client, server.port, "r\(index)", timeout: .seconds(30)).body) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(bodies) == Set((0..<8).map { "r\($0)" }))
        #expect(server.connections == 2)
        await client.shutdown()
    }

    @Test func waitingForABusyConnectionCountsAgainstTheTimeout() async throws {
        // One connection, held by a request the server never answers: the second request
        // waits for it and gets its own timeout rather than waiting without end.
        let server = try ScriptedServer { _, _ in .silence }
        defer { server.stop() }
        let client = Self.client(maxConnections: 1)
        let firstDone = Atomic<Bool>(false)
        let first = Task {
            defer { firstDone.store(true, ordering: .relaxed) }
            return try await Self.post(client, server.port, timeout: .seconds(30))
        }
        while server.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        await #expect(throws: HTTP1Client.Failure.timeout) {
            try await Self.post(client, server.port, timeout: .milliseconds(300))
        }
        // It timed out while the first still held the connection, not after it let go.
        let firstFinished = firstDone.load(ordering: .relaxed)
        #expect(!firstFinished)
        #expect(server.connections == 1)
        server.stop()
        _ = try? await first.value
        await client.shutdown()
    }

    @Test func repliesOverTheLimitFail() async throws {
        let server = try ScriptedServer { _, _ in Self.ok(String(repeating: "x", count: 5000)) }
        defer { server.stop() }
        let client = Self.client()
        await #expect(throws: HTTP1Client.Failure.tooLarge) {
            try await Self.post(client, server.port, maxResponseSize: 4096)
        }
        #expect(try await Self.post(client, server.port, maxResponseSize: 5000).body.readableBytes == 5000)
        await client.shutdown()
    }

    @Test func silentServersTimeOut() async throws {
        let server = try ScriptedServer { _, _ in .silence }
        defer { server.stop() }
        let client = Self.client()
        let start = ContinuousClock.now
        await #expect(throws: HTTP1Client.Failure.timeout) {
            try await Self.post(client, server.port, timeout: .milliseconds(200))
        }
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        await client.shutdown()
    }

    // A connection keeps one timer and moves it only earlier: a short timeout after a long
    // one must still fire on time (were it left for the first, this would wait an hour).
    @Test(.timeLimit(.minutes(1)))
    func aShortTimeoutAfterALongOneOnTheSameConnectionFires() async throws {
        let server = try ScriptedServer { connection, _ in connection.requests == 1 ? Self.ok("first") : .silence }
        defer { server.stop() }
        let client = Self.client()
        #expect(String(buffer: try await Self.post(client, server.port, timeout: .seconds(3600)).body) == "first")
        await #expect(throws: HTTP1Client.Failure.timeout) {
            try await Self.post(client, server.port, timeout: .milliseconds(200))
        }
        #expect(server.connections == 1)
        await client.shutdown()
    }

    @Test func anEarlierRequestsDeadlineDoesNotFailTheNextOne() async throws {
        // The second reply comes after the first request's deadline, within its own.
        let server = try ScriptedServer { connection, _ in
            if connection.requests == 2 { Thread.sleep(forTimeInterval: 0.6) }
            return Self.ok("n\(connection.requests)")
        }
        defer { server.stop() }
        let client = Self.client()
        #expect(String(buffer: try await Self.post(client, server.port, timeout: .milliseconds(300)).body) == "n1")
        #expect(String(buffer: try await Self.post(client, server.port, timeout: .seconds(10)).body) == "n2")
        #expect(server.connections == 1)
        await client.shutdown()
    }

    @Test func idleConnectionsAreClosed() async throws {
        let server = try ScriptedServer { _, _ in Self.ok("ok") }
        defer { server.stop() }
        let client = Self.client(idleTimeout: .milliseconds(200))
        // (Reuse within the idle time is reusesOneKeepAliveConnection's; on a loaded machine
        // two requests here can be further apart than any short timeout.)
        _ = try await Self.post(client, server.port)
        #expect(server.connections == 1)
        // Closed by the client once it has been idle that long.
        var waited = 0
        while server.closedByClient == 0, waited < 250 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        #expect(server.closedByClient == 1)
        // The next request opens a new connection.
        _ = try await Self.post(client, server.port)
        #expect(server.connections == 2)
        await client.shutdown()
    }
}

extension HTTP1Client {
    /// Sends `head` (and `body`, if any, with its `Content-Length`) to `host:port` and returns
    /// the whole reply: the tests' way in, as a producer's request would go.
    func execute(host: String, port: Int, head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, maxResponseSize: Int) async throws -> Response {
        var request = try HTTPRequestBytes(method: head.method, target: head.uri)
        for (name, value) in head.headers {
            try request.add(name, value)
        }
        request.finish(body: body)
        return try await execute(on: pool(HostKey(host: host, port: port)), request, timeout: timeout, maxResponseSize: maxResponseSize)
    }
}

/// A loopback HTTP/1.1 server on plain sockets, one thread per connection, answering each
/// request as the test's script says.
final class ScriptedServer: Sendable {
    enum Reply: Sendable {
        /// Write these bytes and keep reading.
        case answer(String)
        /// Write these bytes, then close the connection.
        case answerAndClose(String)
        /// Close the connection without answering.
        case close
        /// Read the request and never answer.
        case silence
    }

    struct Request: Sendable {
        var line: String
        /// Names lower-cased.
        var headers: [String: String]
        var body: String
    }

    struct Connection: Sendable {
        /// 0 for the first connection accepted.
        var index: Int
        /// Requests read on this connection so far, this one included.
        var requests: Int
    }

    let port: Int
    private let listener: Int32
    private let state = Mutex<(connections: Int, requests: [Request], closedByClient: Int, sockets: [Int32])>((0, [], 0, []))
    private let script: @Sendable (Connection, Request) -> Reply

    var connections: Int { state.withLock { $0.connections } }
    var requests: [Request] { state.withLock { $0.requests } }
    /// Connections the client closed (the server read end-of-file between requests).
    var closedByClient: Int { state.withLock { $0.closedByClient } }

    init(_ script: @escaping @Sendable (Connection, Request) -> Reply) throws {
        self.script = script
        let (listener, port) = boundLoopbackSocket()
        guard port > 0, listen(listener, 64) == 0 else {
            close(listener)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.listener = listener
        self.port = port
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    private let stopped = Atomic<Bool>(false)

    /// Closes the listener and every connection still open; once.
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        // Under the lock: a socket's number is reused once closed, so only open ones are shut.
        state.withLock { state in
            for socket in state.sockets { shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let socket = accept(listener, nil, nil)
            guard socket >= 0 else { return }
            let index = state.withLock { state in
                state.sockets.append(socket)
                defer { state.connections += 1 }
                return state.connections
            }
            Thread { [self] in serve(socket, index: index) }.start()
        }
    }

    private func serve(_ socket: Int32, index: Int) {
        defer {
            state.withLock { state in
                state.sockets.removeAll { $0 == socket }
                close(socket)
            }
        }
        var pending: [UInt8] = []
        var count = 0
        while true {
            guard let request = readRequest(socket, &pending) else {
                if pending.isEmpty { state.withLock { $0.closedByClient += 1 } }
                return
            }
            count += 1
            state.withLock { $0.requests.append(request) }
            switch script(Connection(index: index, requests: count), request) {
            case .answer(let text):
                let bytes = Array(text.utf8)
                guard bytes.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return }
            case .answerAndClose(let text):
                let bytes = Array(text.utf8)
                _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return
            case .close:
                return
            case .silence:
                var byte: UInt8 = 0
                _ = recv(socket, &byte, 1, 0)
                return
            }
        }
    }

    /// Reads one request (head and Content-Length body); nil at end of file.
    private func readRequest(_ socket: Int32, _ pending: inout [UInt8]) -> Request? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(socket, &chunk, chunk.count, 0)
            guard count > 0 else { return false }
            pending += chunk[0..<count]
            return true
        }
        var end: Int?
        while end == nil {
            if pending.count >= 4 {
                end = (0...(pending.count - 4)).first { Array(pending[$0..<($0 + 4)]) == separator }
            }
            if end == nil, !fill() { return nil }
        }
        let head = String(decoding: pending[0..<end!], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        pending.removeFirst(end! + 4)
        while pending.count < length {
            if !fill() { return nil }
        }
        let body = String(decoding: pending[0..<length], as: UTF8.self)
        pending.removeFirst(length)
        return Request(line: head[0], headers: headers, body: body)
    }
}
