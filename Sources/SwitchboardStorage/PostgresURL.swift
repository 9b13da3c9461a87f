// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOSSL
import PostgresNIO
import SwitchboardCore

/// A `postgres://user:password@host:port/database?sslmode=…` URL, taken apart. The audit
/// store, the state store and SQL datasources read theirs with it.
public struct PostgresURL: Sendable {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var user: String
    /// A secret: never logged; ``redacted`` shows `***`.
    public var password: String?
    public var database: String?
    public var tls: TLSMode
    /// The URL with its password replaced by `***`.
    public var redacted: String

    /// Whether `text` names PostgreSQL rather than a file.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// - Parameter what: How the setting is named in errors (`audit.store`).
    /// - Throws: ``ProcessingError`` naming the setting, the password hidden.
    public init(_ url: String, what: String) throws {
        redacted = Self.redact(url)
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw ProcessingError("\(what) '\(redacted)' is not a URL such as postgres://user:password@127.0.0.1:5432/switchboard")
        }
        self.host = host
        port = components.port ?? 5432
        user = components.percentEncodedUser?.removingPercentEncoding ?? "postgres"
        password = components.percentEncodedPassword?.removingPercentEncoding
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard let tls = TLSMode(rawValue: mode) else {
            throw ProcessingError("\(what): sslmode must be disable, prefer or require, found '\(mode)'")
        }
        self.tls = tls
    }

    /// `url` with its password replaced by `***`.
    public static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}

extension PostgresClient.Configuration {
    /// A client configuration for a parsed URL.
    public init(_ url: PostgresURL) {
        let tls: PostgresClient.Configuration.TLS = switch url.tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        self.init(host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: tls)
    }
}

extension PostgresConnection.Configuration {
    /// A single connection's configuration for a parsed URL.
    ///
    /// - Throws: when TLS is asked for and no TLS context can be made.
    public init(_ url: PostgresURL) throws {
        let tls: PostgresConnection.Configuration.TLS = switch url.tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        self.init(host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: tls)
    }
}
