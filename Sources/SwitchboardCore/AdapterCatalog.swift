// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// The adapters a node has, looked up by URI scheme. The node builds it; the route compiler
/// uses it to resolve every `from` and `to` at load.
public struct AdapterCatalog: Sendable {
    public private(set) var adapters: [any Adapter]
    private var byScheme: [String: Int]

    public init(_ adapters: [any Adapter] = []) {
        self.adapters = []
        self.byScheme = [:]
        for adapter in adapters { add(adapter) }
    }

    /// Adds an adapter for every scheme its spec lists; a later adapter wins a scheme.
    public mutating func add(_ adapter: any Adapter) {
        adapters.append(adapter)
        for scheme in type(of: adapter).spec.schemes {
            byScheme[scheme] = adapters.count - 1
        }
    }

    public var schemes: [String] { byScheme.keys.sorted() }

    public func adapter(for scheme: String) -> (any Adapter)? {
        byScheme[scheme].map { adapters[$0] }
    }

    /// Parses an endpoint URI and checks it against the spec of the adapter its scheme names.
    ///
    /// - Throws: ``EndpointError`` for an unknown scheme, a malformed URI or bad options.
    public func resolve(
        _ text: String,
        role: EndpointRole,
        extraOptions: [(name: String, value: String)] = []
    ) throws -> (endpoint: Endpoint, adapter: any Adapter) {
        guard let scheme = EndpointURI.scheme(of: text) else {
            throw EndpointError("'\(text)' is not an endpoint URI: expected 'scheme:…' with one of the schemes \(schemes.joined(separator: ", "))", offset: 0)
        }
        guard let adapter = adapter(for: scheme) else {
            var message = "unknown scheme '\(scheme)'"
            if let guess = closestMatch(to: scheme, in: schemes) {
                message += "; did you mean '\(guess)'?"
            } else {
                message += "; known schemes: \(schemes.joined(separator: ", "))"
            }
            throw EndpointError(message, offset: 0)
        }
        let endpoint = try Endpoint(parsing: text, spec: type(of: adapter).spec, role: role, extraOptions: extraOptions)
        return (endpoint, adapter)
    }
}
