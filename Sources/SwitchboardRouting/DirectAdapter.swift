// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `direct:NAME`: routes that are called by other routes rather than by a protocol.
///
/// `from: direct:NAME` makes a route with no consumer; `to: direct:NAME` (like the `route`
/// step) runs it in the caller's exchange and continues with its result.
struct DirectAdapter: Adapter {
    static let scheme = "direct"

    static let spec = EndpointSpec(
        schemes: [scheme],
        summary: "Calls between routes in the same node: a route `from: direct:NAME` runs when another route sends to `direct:NAME`.",
        consumerSyntax: "direct:NAME",
        producerSyntax: "direct:NAME",
        options: []
    )

    let directory: RouteDirectory

    func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        guard !endpoint.path.isEmpty else { throw EndpointError("'direct:' needs a name, as in direct:audit") }
        return DirectConsumer()
    }

    func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        guard !endpoint.path.isEmpty else { throw EndpointError("'direct:' needs a name, as in direct:audit") }
        return DirectProducer(name: endpoint.path, directory: directory)
    }

    func consumerBinding(_ endpoint: Endpoint) -> String? {
        "direct:\(endpoint.path)"
    }
}

/// Nothing to listen to: direct routes run when called.
struct DirectConsumer: Consumer {
    func run(_ deliver: @escaping Delivery) async throws {}
}

struct DirectProducer: Producer {
    let name: String
    let directory: RouteDirectory

    func send(_ exchange: Exchange) async throws -> Exchange {
        guard let route = directory.route(directName: name) else {
            throw ProcessingError("no route has 'from: direct:\(name)'")
        }
        return try await RouteDirectory.call(route, with: exchange)
    }
}
