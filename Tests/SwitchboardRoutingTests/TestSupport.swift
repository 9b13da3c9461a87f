// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import Synchronization

/// In-memory endpoints for engine tests: `to: test:NAME` records what it receives and
/// answers. Options: `reply` (body of the answer), `fail=true`, `gate=true` (wait until the
/// test opens the gate), `status` (sets http.status on the answer, for symmetry with HTTP).
final class TestEndpoints: Sendable {
    private let received = Mutex<[String: [Exchange]]>([:])
    let gate = AsyncValue<Void>()
    /// What `from: test:NAME?async=true` consumers were handed to deliver with, by name.
    let deliveries = Mutex<[String: Delivery]>([:])

    func record(_ name: String, _ exchange: Exchange) {
        received.withLock { $0[name, default: []].append(exchange) }
    }

    func exchanges(_ name: String) -> [Exchange] {
        received.withLock { $0[name] ?? [] }
    }
}

struct TestAdapter: Adapter {
    static let spec = EndpointSpec(
        schemes: ["test"],
        summary: "in-memory test endpoints",
        consumerSyntax: "test:NAME",
        producerSyntax: "test:NAME",
        options: [
            OptionSpec("reply", .string, roles: [.producer], doc: "answer body"),
            OptionSpec("fail", .bool, default: "false", roles: [.producer], doc: "fail every message"),
            OptionSpec("gate", .bool, default: "false", roles: [.producer], doc: "wait for the test's gate"),
            OptionSpec("delay", .duration, roles: [.producer], doc: "sleep before answering"),
            OptionSpec("failFirst", .int, roles: [.producer], doc: "fail the first N messages, then answer"),
            OptionSpec("failKind", .string, roles: [.producer], doc: "the error kind failures have"),
            OptionSpec("password", .string, secret: true, doc: "a secret"),
            OptionSpec("async", .bool, default: "false", roles: [.consumer], doc: "store before routing; the test delivers through `deliveries`"),
        ]
    )

    let endpoints: TestEndpoints

    func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        TestProducer(
            name: endpoint.path,
            reply: endpoint.options.string("reply"),
            fail: endpoint.options.bool("fail") ?? false,
            gated: endpoint.options.bool("gate") ?? false,
            delay: endpoint.options.duration("delay"),
            failFirst: endpoint.options.int("failFirst") ?? 0,
            failKind: endpoint.options.string("failKind"),
            endpoints: endpoints
        )
    }

    func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        TestConsumer(name: endpoint.path, storesBeforeRouting: endpoint.options.bool("async") ?? false, endpoints: endpoints)
    }

    func consumerBinding(_ endpoint: Endpoint) -> String? {
        "test:\(endpoint.path)"
    }
}

struct TestConsumer: Consumer {
    let name: String
    let storesBeforeRouting: Bool
    let endpoints: TestEndpoints

    func run(_ deliver: @escaping Delivery) async throws {
        endpoints.deliveries.withLock { $0[name] = deliver }
    }
}

struct TestProducer: Producer {
    let name: String
    let reply: String?
    let fail: Bool
    let gated: Bool
    let delay: Duration?
    var failFirst = 0
    var failKind: String?
    let endpoints: TestEndpoints

    func send(_ exchange: Exchange) async throws -> Exchange {
        if gated { await endpoints.gate.value }
        if let delay { try await Task.sleep(for: delay) }
        endpoints.record(name, exchange)
        if fail || endpoints.exchanges(name).count <= failFirst {
            throw ProcessingError("test endpoint '\(name)' refused the message", status: 502, kind: failKind)
        }
        var answer = exchange
        if let reply { answer.message.body = ByteBuffer(string: reply) }
        answer.message.headers.add("X-Visited", name)
        return answer
    }

    func describeReply(_ reply: Exchange) -> String? { "visited \(name)" }
}

/// Keeps every event, in order.
final class RecordingObserver: ExchangeObserver {
    private let events = Mutex<[ExchangeEvent]>([])
    let wantsStepStarts: Bool

    init(wantsStepStarts: Bool = true) {
        self.wantsStepStarts = wantsStepStarts
    }

    func record(_ event: ExchangeEvent) async {
        events.withLock { $0.append(event) }
    }

    var all: [ExchangeEvent] { events.withLock { $0 } }
}

/// Keeps every log line, for the `log` step.
final class LogStore: Sendable {
    let lines = Mutex<[(Logger.Level, String)]>([])
}

struct CapturingLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.lines.withLock { $0.append((event.level, "\(event.message)")) }
    }
}

/// A loaded engine with its test endpoints and observer.
struct Harness {
    let engine: RouteEngine
    let endpoints: TestEndpoints
    let observer: RecordingObserver
    let logs: LogStore

    init(
        _ yaml: String, environment: [String: String] = [:], logLevel: Logger.Level = .info, mappings: String = "Mappings",
        state: NodeState = NodeState(), defaultErrorPolicy: ErrorPolicy? = nil
    ) throws {
        let endpoints = TestEndpoints()
        let observer = RecordingObserver()
        let logs = LogStore()
        var logger = Logger(label: "test") { _ in CapturingLogHandler(store: logs) }
        logger.logLevel = logLevel
        let loader = RouteLoader(
            catalog: AdapterCatalog([TestAdapter(endpoints: endpoints)]),
            observers: [observer],
            logger: logger,
            environment: environment,
            mappingsDirectory: mappings,
            state: state,
            defaultErrorPolicy: defaultErrorPolicy
        )
        self.engine = try loader.load(sources: [(yaml, "routes.yaml")])
        self.endpoints = endpoints
        self.observer = observer
        self.logs = logs
    }

    /// Runs a message through a route.
    func send(_ route: String, _ body: String = "", headers: Headers = Headers()) async throws -> Message {
        let message = Message(headers: headers, body: ByteBuffer(string: body))
        return try await engine.process(routeID: route, Exchange(message: message, pattern: .inOut)).message
    }
}

/// The diagnostics loading `yaml` produces, as printed (`routes.yaml:3:7: error: …`).
func loadErrors(_ yaml: String, environment: [String: String] = [:], mappings: String = "Mappings") -> [String] {
    let loader = RouteLoader(
        catalog: AdapterCatalog([TestAdapter(endpoints: TestEndpoints())]),
        logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
        environment: environment,
        mappingsDirectory: mappings
    )
    do {
        _ = try loader.load(sources: [(yaml, "routes.yaml")])
        return []
    } catch let error as ConfigurationError {
        return error.diagnostics.map(\.description)
    } catch {
        return ["unexpected: \(error)"]
    }
}
