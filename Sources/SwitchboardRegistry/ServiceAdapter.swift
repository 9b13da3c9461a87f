// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import ServiceLifecycle
import NIOCore
import SwitchboardCore
import Synchronization

/// `to: service:NAME[@VERSION][/path]`: calls a registered service over HTTP, choosing an
/// instance by the service's balance and failing over on a connection failure or a 5xx.
public final class ServiceAdapter: Adapter {
    public static let spec = EndpointSpec(
        schemes: ["service"],
        summary: "Calls a service by name (services: in config, or registered through the admin API) over HTTP: load balancing, health checks, failover, circuit breakers.",
        consumerSyntax: "-",
        producerSyntax: "service:NAME[@VERSION][/PATH]",
        options: [
            OptionSpec("method", .choice(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]), roles: [.producer],
                       doc: "The HTTP method (default: the message's http.method, else POST with a body and GET without)."),
            OptionSpec("timeout", .duration, default: "30s", roles: [.producer], doc: "Time allowed for each instance's request and reply."),
        ]
    )

    public let registry: ServiceRegistry
    /// Makes the HTTP producer for a full URL with options (`http://host:port/path?timeout=5s`).
    let makeHTTPProducer: @Sendable (String) throws -> any Producer

    public init(registry: ServiceRegistry, makeHTTPProducer: @escaping @Sendable (String) throws -> any Producer) {
        self.registry = registry
        self.makeHTTPProducer = makeHTTPProducer
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        var target = endpoint.path
        var path = ""
        if let slash = target.firstIndex(of: "/") {
            path = String(target[slash...])
            target = String(target[..<slash])
        }
        let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
        guard let name = parts.first, !name.isEmpty else {
            throw EndpointError("'service:' needs a service name, as in service:orders or service:orders@v2/path")
        }
        var query: [String] = []
        if let method = endpoint.options.string("method") { query.append("method=\(method)") }
        if let timeout = endpoint.options.string("timeout") { query.append("timeout=\(timeout)") }
        return ServiceProducer(
            service: name, version: parts.count > 1 ? parts[1] : nil, suffix: path + (query.isEmpty ? "" : "?" + query.joined(separator: "&")),
            registry: registry, makeHTTPProducer: makeHTTPProducer
        )
    }

    /// Runs the health checks until cancelled or graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.checkHealth()
        }
    }

    private func checkHealth() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                for target in registry.dueHealthChecks() {
                    group.addTask { await self.probe(target) }
                }
                do {
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    return
                }
            }
        }
    }

    func probe(_ target: ServiceRegistry.HealthTarget) async {
        let url = target.url + "?method=GET&failOnServerError=false&timeout=\(target.check.timeout.milliseconds)ms"
        var ok = false
        do {
            let reply = try await makeHTTPProducer(url).send(Exchange(message: Message(), pattern: .inOut))
            if let status = reply.message.headers["http.status"].flatMap({ Int($0) }) { ok = (200..<400).contains(status) }
        } catch {
            ok = false
        }
        registry.reportHealth(service: target.service, id: target.id, ok: ok)
    }
}

/// One `service:` endpoint.
struct ServiceProducer: Producer {
    let service: String
    let version: String?
    /// Path and query added to the instance's base URL.
    let suffix: String
    let registry: ServiceRegistry
    let makeHTTPProducer: @Sendable (String) throws -> any Producer
    private let producers = ProducerCache()

    init(service: String, version: String?, suffix: String, registry: ServiceRegistry, makeHTTPProducer: @escaping @Sendable (String) throws -> any Producer) {
        self.service = service
        self.version = version
        self.suffix = suffix
        self.registry = registry
        self.makeHTTPProducer = makeHTTPProducer
    }

    final class ProducerCache: Sendable {
        let producers = Mutex<[String: any Producer]>([:])
    }

    private func producer(for url: String) throws -> any Producer {
        if let cached = producers.producers.withLock({ $0[url] }) { return cached }
        let made = try makeHTTPProducer(url)
        producers.producers.withLock { $0[url] = made }
        return made
    }

    func send(_ exchange: Exchange) async throws -> Exchange {
        var tried: Set<String> = []
        var lastFailure: ProcessingError?
        let failover = registry.failover(of: service)
        for _ in 0...failover {
            let lease: ServiceRegistry.Lease
            do {
                lease = try registry.lease(service, version: version, excluding: tried)
            } catch let error as ProcessingError {
                if let lastFailure {
                    throw ProcessingError("\(lastFailure.message); \(error.message)", status: lastFailure.status, kind: lastFailure.kind)
                }
                throw error
            }
            tried.insert(lease.id)
            let start = ContinuousClock.now
            do {
                var reply = try await producer(for: lease.url + suffix).send(exchange)
                registry.finish(lease, success: true, latency: ContinuousClock.now - start)
                reply.message.headers["service.instance"] = lease.id
                return reply
            } catch let error as ProcessingError where error.kind == ErrorKind.connection || error.kind == ErrorKind.serverError {
                // The instance is down or failing: the next one may serve this call.
                registry.finish(lease, success: false, latency: ContinuousClock.now - start)
                lastFailure = ProcessingError("service '\(service)' instance \(lease.id): \(error.message)", status: error.status, kind: error.kind)
            } catch {
                registry.finish(lease, success: (error as? ProcessingError)?.kind != ErrorKind.timeout, latency: ContinuousClock.now - start)
                throw error
            }
        }
        throw lastFailure ?? ProcessingError("service '\(service)' has no available instance", status: 503, kind: ErrorKind.connection)
    }

    func describeReply(_ reply: Exchange) -> String? {
        let status = reply.message.headers["http.status"].map { "HTTP \($0)" } ?? ""
        return "\(status) from instance \(reply.message.headers["service.instance"] ?? "?")"
    }
}
