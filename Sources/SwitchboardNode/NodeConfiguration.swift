// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardAudit
import SwitchboardCore
import SwitchboardRouting
import SwitchboardDatabase
import SwitchboardHTTP
import SwitchboardStorage

/// A node's settings: `switchboard.yaml`, or the embedded defaults when there is none.
///
/// Relative folders resolve against the config file's folder (against the working
/// directory for the defaults).
public struct NodeConfiguration: Sendable {
    public struct Listen: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Whether only this machine can connect.
        public var isLoopback: Bool {
            host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
        }

        /// Parses `host:port`, `[v6]:port` or `:port` (loopback).
        public init?(parsing text: String) {
            var host: Substring
            var port: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                host = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { return nil }
                port = rest.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                host = text[..<colon]
                port = text[text.index(after: colon)...]
            }
            if host.isEmpty { host = "127.0.0.1" }
            guard let number = Int(port), (0...65535).contains(number) else { return nil }
            self.init(host: String(host), port: number)
        }
    }

    /// Where the settings came from: the config file, or nil for the embedded defaults.
    public var file: String?
    public var httpListen = Listen(host: "127.0.0.1", port: 8080)
    public var maxBodySize = 10 * 1024 * 1024
    /// Largest XML document parsed, and deepest element nesting (see `XMLLimits`).
    public var xmlMaxSize = 64 << 20
    public var xmlMaxDepth = 256
    public var connectTimeout: Duration = .seconds(5)
    public var maxConnectionsPerHost = 64
    /// The route listener's limits on what clients may hold (see `HTTPAdapter.Configuration`);
    /// nil: the adapter's default.
    public var httpLimits = HTTPLimits()
    public var adminListen = Listen(host: "127.0.0.1", port: 8081)
    /// Connections the admin API serves at once (more wait in the kernel's queue), and how
    /// long one may stay idle.
    public var adminMaxConnections = 64
    public var adminIdleTimeout: Duration = .seconds(30)
    /// TLS on the route listener (`http.tls`) and the admin API (`admin.tls`), loaded and
    /// checked when the config loads.
    public var httpTLS: ServerTLS?
    public var adminTLS: ServerTLS?
    /// Bearer token the admin API requires; from `admin.token` or `SWITCHBOARD_ADMIN_TOKEN`
    /// (one of blanks only is no token).
    public var adminToken: String?
    /// What the config file holds that works but is likely a mistake.
    public var warnings: [Diagnostic] = []
    /// Where the config file sets `admin.listen`, for errors about it.
    public var adminListenLocation: SourceLocation?
    public var routesDirectory = "Routes"
    public var mappingsDirectory = "Mappings"
    public var dataDirectory = "var"
    public var logLevel: Logger.Level = .info
    /// How long in-flight exchanges may take to finish after SIGTERM before they are cancelled.
    public var shutdownTimeout: Duration = .seconds(30)
    /// The audit trail's settings.
    public var audit = Audit()
    /// Dead letters, idempotency keys and accepted messages: a SQLite file, or a
    /// `postgres://` URL; nil: `state.db` in the data folder.
    public var stateStoreLocation: String?
    /// `on-error` for routes that have none.
    public var onError: ErrorPolicy?
    /// Named databases for `sql:` endpoints; nil: the embedded default (``datasourceList``).
    public var configuredDatasources: [DatasourceSpec]?

    /// The datasources: those configured, else `main`, a SQLite file in the data folder,
    /// whose tables `sql/main.sql` in the mappings folder creates.
    public var datasources: [DatasourceSpec] {
        get {
            if let configuredDatasources { return configuredDatasources }
            var main = DatasourceSpec(name: "main", url: "sqlite:" + (dataDirectory as NSString).appendingPathComponent("switchboard.db"))
            let script = (mappingsDirectory as NSString).appendingPathComponent("sql/main.sql")
            if FileManager.default.fileExists(atPath: script) { main.initFile = script }
            return [main]
        }
        set { configuredDatasources = newValue }
    }
    /// Services for `service:` endpoints (route files may define more).
    public var services: [ServiceDefinition] = []

    /// The state store: `state.store`, or `state.db` in the data folder.
    public var stateStore: String {
        stateStoreLocation ?? (dataDirectory as NSString).appendingPathComponent("state.db")
    }

    /// The `http.*` keys that bound what the route listener's clients may hold.
    public struct HTTPLimits: Sendable, Equatable {
        public var idleTimeout: Duration?
        public var maxConnections: Int?
        public var headerTimeout: Duration?
        public var bodyTimeout: Duration?
        public var maxHeaderCount: Int?
        public var maxHeaderSize: Int?
        public var maxBufferedBodies: Int?
        public var bodyFileThreshold: Int?

        public init() {}
    }

    public struct Audit: Sendable {
        public var enabled = true
        /// A file path (SQLite) or a `postgres://` URL; nil: `audit.db` in the data folder.
        public var store: String?
        public var body: AuditPolicy.BodySnapshot = .default
        /// Header names masked on top of ``AuditPolicy/defaultMask`` and secret option names.
        public var mask: [String] = []
        public var buffer = 10_000
        public var commitTimeout: Duration = .seconds(10)
        /// Under load, the least time between the starts of two commits (SQLite). Zero by
        /// default: the writer commits as soon as an exchange waits and the commit before
        /// has ended (what queued meanwhile goes in one commit).
        public var commitInterval: Duration = .zero
        public var retention = AuditTrail.Retention()
        /// `full`: every commit waits for the disk (SQLite); default `normal`.
        public var fullSync = false

        public init() {}
    }

    /// Temporary files (request bodies that outgrew memory): `tmp` in the data folder.
    public var temporaryDirectory: String {
        (dataDirectory as NSString).appendingPathComponent("tmp")
    }

    /// The audit store: `audit.store`, or `audit.db` in the data folder.
    public var auditStore: String {
        audit.store ?? (dataDirectory as NSString).appendingPathComponent("audit.db")
    }

    /// The embedded defaults.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        adminToken = environment["SWITCHBOARD_ADMIN_TOKEN"].flatMap(Self.token)
    }

    /// A token as given, or nil when it is empty or blanks only.
    static func token(_ text: String) -> String? {
        text.allSatisfy(\.isWhitespace) ? nil : text
    }

    /// What keeps a node with these settings from starting, found without starting it: `run`
    /// refuses to start and `check` fails on the same problems.
    public var startProblems: [Diagnostic] {
        var problems: [Diagnostic] = []
        if adminToken == nil, !adminListen.isLoopback {
            problems.append(Diagnostic(
                at: adminListenLocation ?? SourceLocation(file: file ?? "switchboard.yaml", line: 1, column: 1),
                "admin.listen is \(adminListen), which is not loopback, and no admin token is set; set admin.token or SWITCHBOARD_ADMIN_TOKEN (a token of blanks is none)"
            ))
        }
        return problems
    }
}
