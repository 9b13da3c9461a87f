// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardHTTP
import SwitchboardRegistry
import SwitchboardRouting
import SwitchboardTestServers
import Synchronization
import Testing

/// A backend that counts its calls and whose /health can be switched to 503.
final class CountingBackend: Sendable {
    let name: String
    let calls = Mutex(0)
    let healthy = Mutex(true)
    let port = AsyncValue<Int>()

    init(_ name: String) {
        self.name = name
    }

    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let backend: CountingBackend

        func respond(to request: Request, context: Context) async throws -> Response {
            if request.uri.path == "/health" {
                return Response(status: backend.healthy.withLock { $0 } ? .ok : .serviceUnavailable)
            }
            backend.calls.withLock { $0 += 1 }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "\(backend.name) \(request.uri.path)")))
        }
    }

    func start(in group: inout ThrowingTaskGroup<Void, any Error>) async -> Int {
        let application = Application(
            responder: Responder(backend: self),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { [port] in port.set($0.localAddress?.port ?? 0) },
            logger: Logger(label: "backend") { _ in SwiftLogNoOpLogHandler() }
        )
        group.addTask { try await application.run() }
        return await port.value
    }
}

/// `service:` calls through the HTTP adapter to real HTTP servers.
@Suite(.serialized)
struct ServiceCallTests {
    static let logger = Logger(label: "services") { _ in SwiftLogNoOpLogHandler() }

    static func engine(_ yaml: String) throws -> (RouteEngine, ServiceRegistry, ServiceAdapter, HTTPAdapter) {
        let http = HTTPAdapter(logger: logger)
        let httpOnly = AdapterCatalog([http])
        let registry = ServiceRegistry(logger: logger)
        let services = ServiceAdapter(registry: registry) { url in
            let resolved = try httpOnly.resolve(url, role: .producer)
            return try resolved.adapter.makeProducer(resolved.endpoint)
        }
        let engine = try RouteLoader(catalog: AdapterCatalog([http, services]), logger: logger, environment: [:]).load(sources: [(yaml, "routes.yaml")])
        try registry.define(engine.services)
        return (engine, registry, services, http)
    }

    /// Runs `body` with the backends listening, given their ports; stops them after.
    static func serving(_ backends: [CountingBackend], _ body: ([Int]) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var ports: [Int] = []
            for backend in backends { ports.append(await backend.start(in: &group)) }
            defer { group.cancelAll() }
            try await body(ports)
        }
    }

    static func call(_ engine: RouteEngine) async throws -> String {
        try await engine.process(routeID: "call", Exchange(message: Message(body: ByteBuffer(string: "x")), pattern: .inOut)).message.bodyString
    }

    @Test func aCallFailsOverToTheNextInstanceWhenOneIsDown() async throws {
        let live = CountingBackend("live")
        try await Self.serving([live]) { ports in
            let port = ports[0]
            let (engine, registry, _, http) = try Self.engine("""
            services:
              orders:
                instances: [ "http://127.0.0.1:\(freePort())", "http://127.0.0.1:\(port)" ]
                balance: round-robin
                failover: 1
                breaker: { failures: 100 }
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:orders/orders" } ]
            """)
            for _ in 0..<10 {
                #expect(try await Self.call(engine) == "live /orders")
            }
            #expect(live.calls.withLock { $0 } == 10)
            let dead = try #require(registry.status().first?.instances.first)
            #expect(dead.failures == 5 && dead.calls == 5, "round-robin sent every other call to the dead instance first: \(dead)")
            await http.shutdown()
        }
    }

    @Test func withoutFailoverTheCallFailsAndTheBreakerTakesTheDeadInstanceOut() async throws {
        let live = CountingBackend("live")
        try await Self.serving([live]) { ports in
            let port = ports[0]
            let (engine, registry, _, http) = try Self.engine("""
            services:
              orders:
                instances: [ "http://127.0.0.1:\(freePort())", "http://127.0.0.1:\(port)" ]
                failover: 0
                breaker: { failures: 2, open: 1h }
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:orders" } ]
            """)
            var failures = 0
            for _ in 0..<10 {
                do { _ = try await Self.call(engine) } catch { failures += 1 }
            }
            #expect(failures == 2, "the dead instance fails twice, then its breaker opens")
            #expect(live.calls.withLock { $0 } == 8)
            #expect(registry.status().first?.instances.first?.breaker == "open")
            await http.shutdown()
        }
    }

    @Test func weightedCallsFollowTheWeights() async throws {
        let light = CountingBackend("light")
        let heavy = CountingBackend("heavy")
        try await Self.serving([light, heavy]) { ports in
            let (lightPort, heavyPort) = (ports[0], ports[1])
            let (engine, _, _, http) = try Self.engine("""
            services:
              orders:
                balance: weighted
                instances:
                  - { url: "http://127.0.0.1:\(lightPort)", weight: 1 }
                  - { url: "http://127.0.0.1:\(heavyPort)", weight: 3 }
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:orders" } ]
            """)
            for _ in 0..<40 { _ = try await Self.call(engine) }
            #expect(light.calls.withLock { $0 } == 10)
            #expect(heavy.calls.withLock { $0 } == 30)
            await http.shutdown()
        }
    }

    @Test func activeHealthChecksTakeAnInstanceOutAndBack() async throws {
        let a = CountingBackend("a")
        let b = CountingBackend("b")
        try await Self.serving([a, b]) { ports in
            let (portA, portB) = (ports[0], ports[1])
            let (engine, registry, services, http) = try Self.engine("""
            services:
              orders:
                instances: [ "http://127.0.0.1:\(portA)", "http://127.0.0.1:\(portB)" ]
                health: { path: /health, every: 100ms, timeout: 1s, healthy: 2, unhealthy: 2 }
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:orders" } ]
            """)
            let checks = Task { try await services.run() }
            func healthOfB() -> Bool? { registry.status().first?.instances.last?.healthy }
            b.healthy.withLock { $0 = false }
            for _ in 0..<300 where healthOfB() != false { try await Task.sleep(for: .milliseconds(20)) }
            #expect(healthOfB() == false)
            let before = b.calls.withLock { $0 }
            for _ in 0..<6 { #expect(try await Self.call(engine) == "a /") }
            #expect(b.calls.withLock { $0 } == before)
            b.healthy.withLock { $0 = true }
            for _ in 0..<300 where healthOfB() != true { try await Task.sleep(for: .milliseconds(20)) }
            #expect(healthOfB() == true)
            var answers: Set<String> = []
            for _ in 0..<4 { answers.insert(try await Self.call(engine)) }
            #expect(answers == ["a /", "b /"])
            checks.cancel()
            _ = await checks.result
            await http.shutdown()
        }
    }

    @Test func aVersionedCallReachesOnlyInstancesOfThatVersion() async throws {
        let old = CountingBackend("old")
        let new = CountingBackend("new")
        try await Self.serving([old, new]) { ports in
            let (oldPort, newPort) = (ports[0], ports[1])
            let (engine, registry, _, http) = try Self.engine("""
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:billing@v2/invoices" } ]
            """)
            registry.register(service: "billing", .init(id: "a", url: "http://127.0.0.1:\(oldPort)", version: "v1"), ttl: .seconds(60))
            registry.register(service: "billing", .init(id: "b", url: "http://127.0.0.1:\(newPort)", version: "v2"), ttl: .seconds(60))
            for _ in 0..<4 { #expect(try await Self.call(engine) == "new /invoices") }
            #expect(old.calls.withLock { $0 } == 0)
            registry.deregister(service: "billing", id: "b")
            await #expect {
                _ = try await Self.call(engine)
            } throws: { error in
                "\(error)".contains("service 'billing' version v2 has no available instance")
            }
            await http.shutdown()
        }
    }

    @Test func serviceMistakesInRouteFilesAreReportedWithTheirPlace() throws {
        #expect {
            _ = try Self.engine("""
            services:
              orders:
                instances: [ "ftp://x", { url: "http://a", weight: 0 } ]
                balance: random
                health: { every: soon }
                breaker: { ratio: 200% }
            routes:
              - id: call
                from: direct:call
                steps: [ { to: "service:orders" } ]
            """)
        } throws: { error in
            let text = "\(error)"
            return text.contains("routes.yaml:3:19: error: 'services.orders.instances' expects http:// or https:// URLs, found 'ftp://x'")
                && text.contains("routes.yaml:3:56: error: 'services.orders.instances.weight' expects a whole number from 1 to 10000, found '0'")
                && text.contains("routes.yaml:4:14: error: 'services.orders.balance' expects one of round-robin, least-outstanding, weighted, found 'random'")
                && text.contains("routes.yaml:5:22: error: 'services.orders.health.every' expects a duration such as 5s, found 'soon'")
                && text.contains("routes.yaml:6:23: error: 'services.orders.breaker.ratio' expects a share of failed calls such as 50% or 0.5, found '200%'")
        }
    }
}
