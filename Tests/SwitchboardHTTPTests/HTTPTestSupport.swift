// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchboardCore
import SwitchboardHTTP
import SwitchboardRouting
import SwitchboardTransform
import Synchronization
import Testing

/// A real HTTP backend on a loopback port.
///
/// - `/echo/...` answers with JSON describing the request it got (method, path, query, headers, body)
///   and sets `X-Backend: echo`.
/// - `/status/CODE` answers with that status and a small body.
/// - `/slow` answers after two seconds.
struct Backend {
    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext

        func respond(to request: Request, context: Context) async throws -> Response {
            let target = request.head.path ?? "/"
            let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
            let query = target.contains("?") ? String(target.split(separator: "?", maxSplits: 1)[1]) : ""
            let body = try await request.body.collect(upTo: 1 << 20)
            if path.hasPrefix("/status/"), let code = Int(path.dropFirst("/status/".count)) {
                return Response(status: .init(code: code), headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "status \(code) from backend")))
            }
            if path == "/slow" {
                try await Task.sleep(for: .seconds(2))
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "slow")))
            }
            var headers: [(key: String, value: JSONValue)] = []
            for field in request.headers {
                headers.append((field.name.canonicalName, .string(field.value)))
            }
            let json = JSONValue.object([
                ("method", .string(request.method.rawValue)),
                ("path", .string(path)),
                ("query", .string(query)),
                ("headers", .object(headers)),
                ("body", .string(String(buffer: body))),
            ])
            var fields: HTTPFields = [.contentType: "application/json"]
            fields[HTTPField.Name("X-Backend")!] = "echo"
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: json.serialized())))
        }
    }

    /// Runs the backend for the duration of `body`.
    static func run<T: Sendable>(_ body: @escaping @Sendable (Int) async throws -> T) async throws -> T {
        let port = AsyncValue<Int>()
        var logger = Logger(label: "backend")
        logger.logLevel = .critical
        let app = Application(
            responder: Responder(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { port.set($0.localAddress?.port ?? 0) },
            logger: logger
        )
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            let result = try await body(await port.value)
            group.cancelAll()
            return result
        }
    }
}

/// The HTTP adapter and a route engine, running for the duration of a test.
struct SwitchboardUnderTest {
    let port: Int
    let observer: EventLog
    let adapter: HTTPAdapter

    /// Loads `yaml` (with `{backend}` replaced by the backend's base URL) and runs `body`
    /// with the node's HTTP port; `configure` may change the listener's settings first.
    static func run(
        _ yaml: String,
        backendPort: Int = 0,
        maxBodySize: Int = 10 * 1024 * 1024,
        idleTimeout: Duration = .seconds(60),
        metrics: (any MetricsFactory)? = nil,
        configure: (inout HTTPAdapter.Configuration) -> Void = { _ in },
        _ body: @escaping @Sendable (SwitchboardUnderTest) async throws -> Void
    ) async throws {
        var logger = Logger(label: "switchboard-test")
        logger.logLevel = .critical
        var configuration = HTTPAdapter.Configuration(host: "127.0.0.1", port: 0, maxBodySize: maxBodySize, idleTimeout: idleTimeout)
        configure(&configuration)
        let adapter = HTTPAdapter(configuration: configuration, metrics: metrics, logger: logger)
        let events = EventLog()
        let text = yaml.replacingOccurrences(of: "{backend}", with: "http://127.0.0.1:\(backendPort)")
        let engine = try RouteLoader(catalog: AdapterCatalog([adapter]), observers: [events], logger: logger)
            .load(sources: [(text, "http-routes.yaml")])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await adapter.run() }
            group.addTask { try await engine.run() }
            do {
                let port = try #require(await adapter.boundPort, "the HTTP listener did not bind")
                try await body(SwitchboardUnderTest(port: port, observer: events, adapter: adapter))
            } catch {
                group.cancelAll()
                await adapter.shutdown()
                throw error
            }
            group.cancelAll()
        }
        await adapter.shutdown()
    }

    /// ``run(_:backendPort:maxBodySize:idleTimeout:_:)`` with the echo ``Backend`` running;
    /// `body` gets the node and the backend's port.
    static func withBackend(
        _ yaml: String, idleTimeout: Duration = .seconds(60), _ body: @escaping @Sendable (SwitchboardUnderTest, Int) async throws -> Void
    ) async throws {
        try await Backend.run { backend in
            try await run(yaml, backendPort: backend, idleTimeout: idleTimeout) { node in try await body(node, backend) }
        }
    }

    /// Sends a request to the node and collects the response.
    func request(
        _ method: HTTPMethod = .POST,
        _ path: String,
        body: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), response.headers, String(buffer: bytes))
    }
}

/// Exchange events seen during a test.
final class EventLog: ExchangeObserver {
    private let events = Mutex<[ExchangeEvent]>([])

    func record(_ event: ExchangeEvent) async {
        events.withLock { $0.append(event) }
    }

    var all: [ExchangeEvent] { events.withLock { $0 } }
}

extension String {
    /// The JSON the echo backend sent, parsed.
    var json: JSONValue? { try? JSONValue(parsing: self) }
}
