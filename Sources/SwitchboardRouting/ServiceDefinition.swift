// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
/// A service as configured (`services:` in route files or the node config): its instances
/// and how calls are spread over them, checked and cut off.
public struct ServiceDefinition: Sendable {
    public enum Balance: String, Sendable, CaseIterable {
        case roundRobin = "round-robin"
        case leastOutstanding = "least-outstanding"
        case weighted
    }

    public struct Instance: Sendable, Equatable {
        public var id: String
        /// Base URL, such as `http://127.0.0.1:9001`; the endpoint's path is added to it.
        public var url: String
        public var version: String?
        public var zone: String?
        public var weight: Int

        public init(id: String, url: String, version: String? = nil, zone: String? = nil, weight: Int = 1) {
            self.id = id
            self.url = url
            self.version = version
            self.zone = zone
            self.weight = weight
        }
    }

    /// Active health checks: `GET url+path` every `every`; `unhealthy` failures in a row
    /// take an instance out, `healthy` successes in a row bring it back.
    public struct HealthCheck: Sendable, Equatable {
        public var path = "/health"
        public var every: Duration = .seconds(5)
        public var timeout: Duration = .seconds(2)
        public var healthy = 2
        public var unhealthy = 3

        public init() {}
    }

    /// A circuit breaker per instance: open after `failures` failures in a row, or when
    /// at least `ratio` of the calls in `window` failed (with `minimumCalls` calls or
    /// more); half-open after `open`, letting `trials` calls through; closed again when
    /// they succeed.
    public struct Breaker: Sendable, Equatable {
        public var failures = 5
        public var ratio: Double?
        public var window: Duration = .seconds(30)
        public var minimumCalls = 10
        public var open: Duration = .seconds(30)
        public var trials = 1

        public init() {}
    }

    /// The largest instance weight (weights are relative; this keeps sums far from overflow).
    public static let maximumWeight = 10_000

    public var name: String
    public var instances: [Instance]
    public var balance: Balance = .roundRobin
    public var health: HealthCheck?
    /// How many other instances a call may fail over to after a connection failure or 5xx.
    public var failover = 1
    public var breaker = Breaker()
    /// Where it is written, for messages.
    public var location: SourceLocation?

    public init(name: String, instances: [Instance] = []) {
        self.name = name
        self.instances = instances
    }
}
