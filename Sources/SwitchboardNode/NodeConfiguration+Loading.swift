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
import NIOSSL
import SwitchboardStorage

// Reading a node config file: every key checked, every problem reported at its line.
extension NodeConfiguration {
    /// The keys a node config may have, with what they mean (for errors and docs).
    public static let keys: [(key: String, doc: String)] = [
        ("http.listen", "Address of the HTTP listener routes bind to (default 127.0.0.1:8080)."),
        ("http.max-body-size", "Largest request body accepted (default 10MiB); routes may override with maxBodySize."),
        ("http.connect-timeout", "Default connect timeout for HTTP producers (default 5s)."),
        ("http.max-connections-per-host", "Pooled keep-alive connections per backend (default 64)."),
        ("http.max-connections", "Client connections the listener keeps open; past it new ones are closed at once (default: three quarters of the open-file limit, which the node raises to its hard limit, at most 65536)."),
        ("http.idle-timeout", "A client connection with no request under way closes after this long since its last reply (default 60s)."),
        ("http.header-timeout", "Time a client has to send a whole request head, from its first byte; past it 408 (default 10s)."),
        ("http.body-timeout", "Time a client has to send a whole request body, from the end of its head; past it 408 (default 60s)."),
        ("http.max-header-count", "Most header fields in a request; more get 431 (default 100)."),
        ("http.max-header-size", "Most bytes of a request's target, header names and values; more get 431 (default 16KiB)."),
        ("http.max-buffered-bodies", "Most bytes of request bodies held in memory at once across the listener; past it 503 (default 128MiB)."),
        ("http.body-file-threshold", "A request body larger than this is kept in a temporary file under DATA/tmp while it arrives (default 64KiB)."),
        ("http.tls.cert", "PEM certificate chain the route listener serves TLS with (relative to the config file); with http.tls every route connection is HTTPS."),
        ("http.tls.key", "PEM private key of that certificate (unencrypted)."),
        ("http.tls.client-ca", "PEM certificates of the authorities whose client certificates are accepted (mutual TLS)."),
        ("http.tls.client-auth", "none (default), optional (a client certificate is verified if given) or require (a connection without one is refused)."),
        ("http.tls.min-version", "Lowest TLS version accepted: 1.2 (default) or 1.3."),
        ("xml.max-size", "Largest XML document any step parses (default 64MiB); larger bodies fail the step with 400."),
        ("xml.max-depth", "Deepest element nesting in XML documents (default 256, at most 2048)."),
        ("admin.listen", "Address of the admin API (default 127.0.0.1:8081)."),
        ("admin.token", "Bearer token the admin API requires (or SWITCHBOARD_ADMIN_TOKEN)."),
        ("admin.max-connections", "Connections the admin API serves at once; more wait to be accepted (default 64)."),
        ("admin.idle-timeout", "Time an admin connection may stay without a request or reply before it is closed (default 30s)."),
        ("admin.tls.cert", "PEM certificate chain the admin API serves TLS with; keys as for http.tls."),
        ("admin.tls.key", "PEM private key of the admin API's certificate."),
        ("admin.tls.client-ca", "PEM certificates of the authorities whose client certificates the admin API accepts."),
        ("admin.tls.client-auth", "none (default), optional or require, as for http.tls."),
        ("admin.tls.min-version", "Lowest TLS version the admin API accepts: 1.2 (default) or 1.3."),
        ("routes", "Folder of route files (default Routes)."),
        ("mappings", "Folder of stylesheets, schemas and layouts (default Mappings)."),
        ("data", "Folder for the node's state: audit store, idempotency records (default var)."),
        ("log.level", "trace, debug, info, notice, warning, error or critical (default info)."),
        ("shutdown-timeout", "Time in-flight exchanges get to finish after SIGTERM (default 30s)."),
        ("state.store", "Dead letters, idempotency keys and accepted async messages: SQLite file or postgres:// URL (default DATA/state.db)."),
        ("datasources", "Named databases for sql: endpoints: { NAME: URL } or { NAME: { url, max-connections, connect-timeout, query-timeout, init } }; URL is sqlite:PATH or postgres://user:pass@host:port/db. Without it: main, sqlite:DATA/switchboard.db, init MAPPINGS/sql/main.sql."),
        ("services", "Services for service: endpoints: { NAME: { instances, balance, health, failover, breaker } } (see docs/guide/services.md)."),
        ("on-error", "Failure handling for routes without their own: { retry: { attempts, backoff, factor, max-backoff, jitter, on }, dead-letter }."),
        ("audit.enabled", "Store every exchange event in the audit trail (default true)."),
        ("audit.store", "SQLite file or postgres://user:pass@host:port/db URL (default DATA/audit.db)."),
        ("audit.body", "Body snapshots: none, hash, a size such as 8KiB (first bytes), or hash+SIZE (default hash+4KiB)."),
        ("audit.mask", "Header names stored as *** besides Authorization, Cookie, Set-Cookie, Proxy-Authorization and secret options."),
        ("audit.buffer", "Events queued before routes wait for the store (default 10000)."),
        ("audit.commit-timeout", "How long an exchange waits for its events to be stored before it fails with 503 (default 10s)."),
        ("audit.commit-interval", "Under load, the least time between two SQLite commits, so more exchanges share each (default 0: commit as soon as an exchange waits and the commit before has ended; what queued meanwhile goes in one commit)."),
        ("audit.retention.age", "Events older than this are deleted (default 7d; 0 keeps them)."),
        ("audit.retention.size", "Oldest events are deleted to keep the store under this size (default 1GiB; 0: no limit)."),
        ("audit.sync", "normal (a commit survives the process being killed) or full (also a power cut; slower). SQLite only."),
    ]

    /// Reads a config file.
    ///
    /// - Throws: ``ConfigurationError`` listing every problem with its line and column.
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> NodeConfiguration {
        var configuration = NodeConfiguration(environment: environment)
        configuration.file = file
        let base = (file as NSString).deletingLastPathComponent
        func resolve(_ path: String) -> String {
            if path.hasPrefix("/") || base.isEmpty { return path }
            return (base as NSString).appendingPathComponent(path)
        }
        configuration.routesDirectory = resolve("Routes")
        configuration.mappingsDirectory = resolve("Mappings")
        configuration.dataDirectory = resolve("var")
        guard let root = try ConfigNode.load(path: file, displayName: file), !root.isNull else { return configuration }
        var log = DiagnosticLog()
        guard let entries = root.mapping else {
            log.error(root.location, "a node config is a mapping (http:, admin:, routes:, …), found \(root.kindDescription)")
            try log.throwIfErrors()
            return configuration
        }
        func scalar(_ node: ConfigNode, _ key: String) -> String? {
            guard let value = node.scalar, !node.isNull else {
                log.error(node.location, "'\(key)' expects a single value, found \(node.kindDescription)")
                return nil
            }
            return value
        }
        func section(_ node: ConfigNode, _ name: String, _ handle: (String, ConfigNode, ConfigNode) -> Void) {
            guard let pairs = node.mapping else {
                log.error(node.location, "'\(name)' expects a mapping, found \(node.kindDescription)")
                return
            }
            for pair in pairs { handle(pair.key, pair.keyNode, pair.value) }
        }
        func unknown(_ key: String, _ at: ConfigNode) {
            // A top-level key is compared with the section names, a dotted one with full keys.
            let known = key.contains(".") ? keys.map(\.key) : Array(Set(keys.map { String($0.key.split(separator: ".")[0]) })).sorted()
            var message = "unknown node config key '\(key)'"
            if let guess = closestMatch(to: key, in: known) {
                message += "; did you mean '\(guess)'?"
            } else {
                message += "; expected one of: \(known.joined(separator: ", "))"
            }
            log.error(at.location, message)
        }
        func listen(_ node: ConfigNode, _ key: String) -> Listen? {
            guard let text = scalar(node, key) else { return nil }
            guard let listen = Listen(parsing: text) else {
                log.error(node.contentLocation, "'\(key)' expects host:port such as 127.0.0.1:8080, found '\(text)'")
                return nil
            }
            return listen
        }
        func positiveDuration(_ node: ConfigNode, _ key: String, example: String) -> Duration? {
            guard let text = scalar(node, key) else { return nil }
            guard let duration = parseDuration(text), duration > .zero else {
                log.error(node.contentLocation, "'\(key)' expects a duration above zero such as \(example), found '\(text)'")
                return nil
            }
            return duration
        }
        func positiveInteger(_ node: ConfigNode, _ key: String) -> Int? {
            guard let text = scalar(node, key) else { return nil }
            guard let count = Int(text), count > 0 else {
                log.error(node.contentLocation, "'\(key)' expects a positive integer, found '\(text)'")
                return nil
            }
            return count
        }
        func positiveSize(_ node: ConfigNode, _ key: String, example: String) -> Int? {
            guard let text = scalar(node, key) else { return nil }
            guard let size = parseSize(text), size > 0 else {
                log.error(node.contentLocation, "'\(key)' expects a size such as \(example), found '\(text)'")
                return nil
            }
            return size
        }
        /// `http.tls` or `admin.tls`: the files read and checked now, problems at their keys.
        func tls(_ node: ConfigNode, _ prefix: String) -> ServerTLS? {
            guard let pairs = node.mapping else {
                log.error(node.location, "'\(prefix)' expects a mapping such as { cert: server.pem, key: server.key }")
                return nil
            }
            var files: [String: (path: String, location: SourceLocation)] = [:]
            var clientAuth = ServerTLS.ClientAuth.none
            var minimum = TLSVersion.tlsv12
            var failed = false
            for pair in pairs {
                let key = "\(prefix).\(pair.key)"
                switch pair.key {
                case "cert", "key", "client-ca":
                    guard let text = scalar(pair.value, key), !text.isEmpty else { failed = true; continue }
                    files[pair.key] = (resolve(text), pair.value.contentLocation)
                case "client-auth":
                    guard let text = scalar(pair.value, key) else { failed = true; continue }
                    guard let parsed = ServerTLS.ClientAuth(rawValue: text) else {
                        log.error(pair.value.contentLocation, "'\(key)' expects none, optional or require, found '\(text)'")
                        failed = true
                        continue
                    }
                    clientAuth = parsed
                case "min-version":
                    guard let text = scalar(pair.value, key) else { failed = true; continue }
                    switch text {
                    case "1.2": minimum = .tlsv12
                    case "1.3": minimum = .tlsv13
                    default:
                        log.error(pair.value.contentLocation, "'\(key)' expects 1.2 or 1.3, found '\(text)'")
                        failed = true
                    }
                default:
                    unknown(key, pair.keyNode)
                    failed = true
                }
            }
            for required in ["cert", "key"] where files[required] == nil && pairs.first(where: { $0.key == required }) == nil {
                log.error(node.location, "'\(prefix)' needs '\(required)': the PEM \(required == "cert" ? "certificate chain" : "private key") file")
                failed = true
            }
            if clientAuth != .none, files["client-ca"] == nil {
                log.error(node.location, "'\(prefix).client-auth: \(clientAuth.rawValue)' needs '\(prefix).client-ca': the authorities whose client certificates are accepted")
                failed = true
            }
            guard !failed, let cert = files["cert"], let key = files["key"] else { return nil }
            let settings = ServerTLS.Settings(
                certificateFile: cert.path, keyFile: key.path, clientCAFile: files["client-ca"]?.path, clientAuth: clientAuth, minimumVersion: minimum
            )
            do {
                let loaded = try ServerTLS(settings)
                if loaded.notValidAfter.timeIntervalSinceNow < Double(ServerTLS.expiryWarning.components.seconds) {
                    log.warning(cert.location, "'\(prefix).cert': the certificate in \(cert.path) ends on \(ServerTLS.formatted(loaded.notValidAfter))")
                }
                return loaded
            } catch let error as ServerTLS.LoadError {
                let at = files.values.first { $0.path == error.file }?.location ?? cert.location
                log.error(at, "'\(prefix)': \(error)")
            } catch {
                log.error(cert.location, "'\(prefix)': \(error)")
            }
            return nil
        }
        for entry in entries {
            switch entry.key {
            case "http":
                section(entry.value, "http") { key, keyNode, value in
                    switch key {
                    case "listen":
                        if let parsed = listen(value, "http.listen") { configuration.httpListen = parsed }
                    case "max-body-size":
                        guard let text = scalar(value, "http.max-body-size") else { return }
                        if let size = parseSize(text) {
                            configuration.maxBodySize = size
                        } else {
                            log.error(value.contentLocation, "'http.max-body-size' expects a size such as 10MiB, found '\(text)'")
                        }
                    case "connect-timeout":
                        guard let text = scalar(value, "http.connect-timeout") else { return }
                        if let duration = parseDuration(text) {
                            configuration.connectTimeout = duration
                        } else {
                            log.error(value.contentLocation, "'http.connect-timeout' expects a duration such as 5s, found '\(text)'")
                        }
                    case "idle-timeout":
                        if let duration = positiveDuration(value, "http.idle-timeout", example: "60s") { configuration.httpLimits.idleTimeout = duration }
                    case "header-timeout":
                        if let duration = positiveDuration(value, "http.header-timeout", example: "10s") { configuration.httpLimits.headerTimeout = duration }
                    case "body-timeout":
                        if let duration = positiveDuration(value, "http.body-timeout", example: "60s") { configuration.httpLimits.bodyTimeout = duration }
                    case "max-connections":
                        if let count = positiveInteger(value, "http.max-connections") { configuration.httpLimits.maxConnections = count }
                    case "max-header-count":
                        if let count = positiveInteger(value, "http.max-header-count") { configuration.httpLimits.maxHeaderCount = count }
                    case "max-header-size":
                        if let size = positiveSize(value, "http.max-header-size", example: "16KiB") { configuration.httpLimits.maxHeaderSize = size }
                    case "max-buffered-bodies":
                        if let size = positiveSize(value, "http.max-buffered-bodies", example: "128MiB") { configuration.httpLimits.maxBufferedBodies = size }
                    case "body-file-threshold":
                        if let size = positiveSize(value, "http.body-file-threshold", example: "64KiB") { configuration.httpLimits.bodyFileThreshold = size }
                    case "max-connections-per-host":
                        if let count = positiveInteger(value, "http.max-connections-per-host") { configuration.maxConnectionsPerHost = count }
                    case "tls":
                        configuration.httpTLS = tls(value, "http.tls")
                    default:
                        unknown("http.\(key)", keyNode)
                    }
                }
            case "admin":
                section(entry.value, "admin") { key, keyNode, value in
                    switch key {
                    case "listen":
                        if let parsed = listen(value, "admin.listen") {
                            configuration.adminListen = parsed
                            configuration.adminListenLocation = value.contentLocation
                        }
                    case "token":
                        if let text = scalar(value, "admin.token") {
                            if let token = Self.token(text) {
                                configuration.adminToken = token
                            } else {
                                log.warning(value.contentLocation, "'admin.token' is blank, which is no token")
                            }
                        }
                    case "max-connections":
                        if let count = positiveInteger(value, "admin.max-connections") { configuration.adminMaxConnections = count }
                    case "idle-timeout":
                        if let duration = positiveDuration(value, "admin.idle-timeout", example: "30s") { configuration.adminIdleTimeout = duration }
                    case "tls":
                        configuration.adminTLS = tls(value, "admin.tls")
                    default:
                        unknown("admin.\(key)", keyNode)
                    }
                }
            case "routes":
                if let path = scalar(entry.value, "routes") { configuration.routesDirectory = resolve(path) }
            case "mappings":
                if let path = scalar(entry.value, "mappings") { configuration.mappingsDirectory = resolve(path) }
            case "data":
                if let path = scalar(entry.value, "data") { configuration.dataDirectory = resolve(path) }
            case "log":
                section(entry.value, "log") { key, keyNode, value in
                    guard key == "level" else { return unknown("log.\(key)", keyNode) }
                    guard let text = scalar(value, "log.level") else { return }
                    if let level = Logger.Level(rawValue: text) {
                        configuration.logLevel = level
                    } else {
                        log.error(value.contentLocation, "'log.level' expects trace, debug, info, notice, warning, error or critical, found '\(text)'")
                    }
                }
            case "audit":
                section(entry.value, "audit") { key, keyNode, value in
                    switch key {
                    case "enabled":
                        guard let text = scalar(value, "audit.enabled") else { return }
                        switch text {
                        case "true", "yes", "on": configuration.audit.enabled = true
                        case "false", "no", "off": configuration.audit.enabled = false
                        default: log.error(value.contentLocation, "'audit.enabled' expects true or false, found '\(text)'")
                        }
                    case "store":
                        guard let text = scalar(value, "audit.store") else { return }
                        configuration.audit.store = text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") ? text : resolve(text)
                    case "body":
                        guard let text = scalar(value, "audit.body") else { return }
                        if let policy = AuditPolicy.BodySnapshot(parsing: text) {
                            configuration.audit.body = policy
                        } else {
                            log.error(value.contentLocation, "'audit.body' expects none, hash, a size such as 8KiB, or hash+SIZE, found '\(text)'")
                        }
                    case "mask":
                        if let items = value.sequence {
                            configuration.audit.mask = items.compactMap { scalar($0, "audit.mask") }
                        } else if let text = scalar(value, "audit.mask") {
                            configuration.audit.mask = [text]
                        }
                    case "buffer":
                        guard let text = scalar(value, "audit.buffer") else { return }
                        if let count = Int(text), count > 0 {
                            configuration.audit.buffer = count
                        } else {
                            log.error(value.contentLocation, "'audit.buffer' expects a positive integer, found '\(text)'")
                        }
                    case "commit-timeout":
                        guard let text = scalar(value, "audit.commit-timeout") else { return }
                        if let duration = parseDuration(text), duration > .zero {
                            configuration.audit.commitTimeout = duration
                        } else {
                            log.error(value.contentLocation, "'audit.commit-timeout' expects a duration such as 10s, found '\(text)'")
                        }
                    case "commit-interval":
                        guard let text = scalar(value, "audit.commit-interval") else { return }
                        if let duration = parseDuration(text), duration <= .seconds(1) {
                            configuration.audit.commitInterval = duration
                        } else {
                            log.error(value.contentLocation, "'audit.commit-interval' expects a duration up to 1s such as 1ms or 0, found '\(text)'")
                        }
                    case "sync":
                        guard let text = scalar(value, "audit.sync") else { return }
                        switch text {
                        case "normal": configuration.audit.fullSync = false
                        case "full": configuration.audit.fullSync = true
                        default: log.error(value.contentLocation, "'audit.sync' expects normal or full, found '\(text)'")
                        }
                    case "retention":
                        section(value, "audit.retention") { key, keyNode, value in
                            switch key {
                            case "age":
                                guard let text = scalar(value, "audit.retention.age") else { return }
                                if text == "0" {
                                    configuration.audit.retention.age = nil
                                } else if let duration = parseDuration(text) {
                                    configuration.audit.retention.age = duration
                                } else {
                                    log.error(value.contentLocation, "'audit.retention.age' expects a duration such as 7d, found '\(text)'")
                                }
                            case "size":
                                guard let text = scalar(value, "audit.retention.size") else { return }
                                if text == "0" {
                                    configuration.audit.retention.maxBytes = nil
                                } else if let size = parseSize(text) {
                                    configuration.audit.retention.maxBytes = Int64(size)
                                } else {
                                    log.error(value.contentLocation, "'audit.retention.size' expects a size such as 1GiB, found '\(text)'")
                                }
                            default:
                                unknown("audit.retention.\(key)", keyNode)
                            }
                        }
                    default:
                        unknown("audit.\(key)", keyNode)
                    }
                }
            case "xml":
                section(entry.value, "xml") { key, keyNode, value in
                    switch key {
                    case "max-size":
                        guard let text = scalar(value, "xml.max-size") else { return }
                        if let size = parseSize(text), size > 0, size <= Int(Int32.max) {
                            configuration.xmlMaxSize = size
                        } else {
                            log.error(value.contentLocation, "'xml.max-size' expects a size up to 2GiB such as 64MiB, found '\(text)'")
                        }
                    case "max-depth":
                        guard let text = scalar(value, "xml.max-depth") else { return }
                        if let depth = Int(text), (1...2048).contains(depth) {
                            configuration.xmlMaxDepth = depth
                        } else {
                            log.error(value.contentLocation, "'xml.max-depth' expects a whole number from 1 to 2048, found '\(text)'")
                        }
                    default:
                        unknown("xml.\(key)", keyNode)
                    }
                }
            case "state":
                section(entry.value, "state") { key, keyNode, value in
                    guard key == "store" else { return unknown("state.\(key)", keyNode) }
                    guard let text = scalar(value, "state.store") else { return }
                    configuration.stateStoreLocation = text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") ? text : resolve(text)
                }
            case "datasources":
                section(entry.value, "datasources") { name, _, value in
                    var url: String?
                    var spec = DatasourceSpec(name: name, url: "")
                    if let text = value.scalar, !value.isNull {
                        url = text
                    } else if let pairs = value.mapping {
                        for pair in pairs {
                            let key = "datasources.\(name).\(pair.key)"
                            guard let text = scalar(pair.value, key) else { continue }
                            switch pair.key {
                            case "url": url = text
                            case "init":
                                let path = resolve(text)
                                if FileManager.default.fileExists(atPath: path) {
                                    spec.initFile = path
                                } else {
                                    log.error(pair.value.contentLocation, "'\(key)': the init file \(path) does not exist")
                                }
                            case "max-connections":
                                if let count = Int(text), count > 0 { spec.maxConnections = count } else {
                                    log.error(pair.value.contentLocation, "'\(key)' expects a positive integer, found '\(text)'")
                                }
                            case "connect-timeout", "query-timeout":
                                if let duration = parseDuration(text), duration > .zero {
                                    if pair.key == "connect-timeout" { spec.connectTimeout = duration } else { spec.queryTimeout = duration }
                                } else {
                                    log.error(pair.value.contentLocation, "'\(key)' expects a duration such as 5s, found '\(text)'")
                                }
                            default:
                                log.error(pair.keyNode.location, unknownKeyMessage(pair.key, what: "datasource key", known: ["url", "max-connections", "connect-timeout", "query-timeout", "init"]))
                            }
                        }
                    }
                    guard let url else {
                        log.error(value.location, "datasource '\(name)' needs a URL: sqlite:PATH or postgres://user:password@host:port/database")
                        return
                    }
                    if url.hasPrefix("sqlite:") {
                        spec.url = "sqlite:" + resolve(String(url.dropFirst("sqlite:".count)))
                    } else if PostgresURL.isPostgres(url) {
                        spec.url = url
                    } else {
                        log.error(value.contentLocation, "datasource '\(name)': expected sqlite:PATH or postgres://user:password@host:port/database, found '\(PostgresURL.redact(url))'")
                        return
                    }
                    configuration.configuredDatasources = (configuration.configuredDatasources ?? []) + [spec]
                }
            case "services":
                configuration.services = ServiceDefinition.parseAll(entry.value, log: &log)
            case "on-error":
                configuration.onError = ErrorPolicy.parse(entry.value, log: &log)
            case "shutdown-timeout":
                guard let text = scalar(entry.value, "shutdown-timeout") else { continue }
                if let duration = parseDuration(text) {
                    configuration.shutdownTimeout = duration
                } else {
                    log.error(entry.value.contentLocation, "'shutdown-timeout' expects a duration such as 30s, found '\(text)'")
                }
            default:
                unknown(entry.key, entry.keyNode)
            }
        }
        try log.throwIfErrors()
        configuration.warnings = log.diagnostics.filter { $0.severity == .warning }
        return configuration
    }
}
