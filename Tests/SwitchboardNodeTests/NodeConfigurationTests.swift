// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardNode
import SwitchboardRouting
import Testing

struct NodeConfigurationTests {
    func write(_ text: String, name: String = "switchboard.yaml") throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent(name).path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func embeddedDefaults() {
        let defaults = NodeConfiguration(environment: [:])
        #expect(defaults.httpListen.description == "127.0.0.1:8080")
        #expect(defaults.adminListen.description == "127.0.0.1:8081")
        #expect(defaults.routesDirectory == "Routes")
        #expect(defaults.mappingsDirectory == "Mappings")
        #expect(defaults.dataDirectory == "var")
        #expect(defaults.maxBodySize == 10 * 1024 * 1024)
        #expect(defaults.adminToken == nil)
        #expect(NodeConfiguration(environment: ["SWITCHBOARD_ADMIN_TOKEN": "t0k"]).adminToken == "t0k")
        #expect(NodeConfiguration(environment: ["SWITCHBOARD_ADMIN_TOKEN": " \t "]).adminToken == nil, "blanks are no token")
    }

    @Test func everyKeyIsReadAndRelativeFoldersResolveAgainstTheConfigFile() throws {
        let file = try write("""
        http:
          listen: "0.0.0.0:9080"
          max-body-size: 2MiB
          connect-timeout: 750ms
          max-connections-per-host: 16
        admin: { listen: ":9081", token: secret-token }
        routes: flows
        mappings: /srv/maps
        data: state
        log: { level: debug }
        shutdown-timeout: 5s
        """)
        let folder = (file as NSString).deletingLastPathComponent
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        #expect(configuration.httpListen == .init(host: "0.0.0.0", port: 9080))
        #expect(configuration.maxBodySize == 2 * 1024 * 1024)
        #expect(configuration.connectTimeout == .milliseconds(750))
        #expect(configuration.maxConnectionsPerHost == 16)
        #expect(configuration.adminListen == .init(host: "127.0.0.1", port: 9081))
        #expect(configuration.adminToken == "secret-token")
        #expect(configuration.routesDirectory == folder + "/flows")
        #expect(configuration.mappingsDirectory == "/srv/maps")
        #expect(configuration.dataDirectory == folder + "/state")
        #expect(configuration.logLevel == .debug)
        #expect(configuration.shutdownTimeout == .seconds(5))
    }

    @Test func listenerLimitsAreReadAndTheirMistakesLocated() throws {
        let file = try write("""
        http:
          max-connections: 500
          idle-timeout: 30s
          header-timeout: 5s
          body-timeout: 2m
          max-header-count: 50
          max-header-size: 8KiB
          max-buffered-bodies: 32MiB
          body-file-threshold: 1MiB
        data: state
        """)
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        var expected = NodeConfiguration.HTTPLimits()
        expected.maxConnections = 500
        expected.idleTimeout = .seconds(30)
        expected.headerTimeout = .seconds(5)
        expected.bodyTimeout = .seconds(120)
        expected.maxHeaderCount = 50
        expected.maxHeaderSize = 8 * 1024
        expected.maxBufferedBodies = 32 << 20
        expected.bodyFileThreshold = 1 << 20
        #expect(configuration.httpLimits == expected)
        #expect(configuration.temporaryDirectory == (file as NSString).deletingLastPathComponent + "/state/tmp")

        let bad = try write("""
        http:
          max-connections: many
          header-timeout: 0s
          max-header-size: big
          max-header-cnt: 5
        """)
        #expect {
            try NodeConfiguration.load(file: bad, environment: [:])
        } throws: { error in
            let text = ((error as? ConfigurationError)?.diagnostics ?? []).map(\.description).joined(separator: "\n")
            return text.contains("2:20: error: 'http.max-connections' expects a positive integer, found 'many'")
                && text.contains("3:19: error: 'http.header-timeout' expects a duration above zero such as 10s, found '0s'")
                && text.contains("4:20: error: 'http.max-header-size' expects a size such as 16KiB, found 'big'")
                && text.contains("5:3: error: unknown node config key 'http.max-header-cnt'; did you mean 'http.max-header-count'?")
        }
    }

    @Test func adminListenerLimitsAreRead() throws {
        let defaults = NodeConfiguration(environment: [:])
        #expect(defaults.adminMaxConnections == 64 && defaults.adminIdleTimeout == .seconds(30))
        let file = try write("""
        admin:
          max-connections: 8
          idle-timeout: 5s
        """)
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        #expect(configuration.adminMaxConnections == 8 && configuration.adminIdleTimeout == .seconds(5))
        let bad = try write("""
        admin:
          max-connections: 0
          idle-timeout: soon
        """)
        let problems = problemsLoading(bad)
        #expect(problems.contains("2:20: error: 'admin.max-connections' expects a positive integer, found '0'"), "\(problems)")
        #expect(problems.contains("3:17: error: 'admin.idle-timeout' expects a duration above zero such as 30s, found 'soon'"), "\(problems)")
    }

    /// The diagnostics loading `file` fails with, one per line ("" when it loads).
    func problemsLoading(_ file: String) -> String {
        do {
            _ = try NodeConfiguration.load(file: file, environment: [:])
            return ""
        } catch {
            return ((error as? ConfigurationError)?.diagnostics ?? []).map(\.description).joined(separator: "\n")
        }
    }

    @Test func aDatasourceInitFileThatDoesNotExistIsAConfigErrorNamingItsPath() throws {
        let file = try write("""
        datasources:
          orders: { url: "sqlite:orders.db", init: sql/missing.sql }
        """)
        let folder = (file as NSString).deletingLastPathComponent
        #expect {
            try NodeConfiguration.load(file: file, environment: [:])
        } throws: { error in
            "\(error)".contains("switchboard.yaml:2:44: error: 'datasources.orders.init': the init file \(folder)/sql/missing.sql does not exist")
        }
    }

    @Test func auditKeysAreReadAndTheirMistakesLocated() throws {
        let file = try write("""
        data: state
        audit:
          body: hash+8KiB
          mask: [X-Api-Key, X-Secret]
          buffer: 500
          commit-timeout: 2s
          commit-interval: 0.5ms
          retention: { age: 3d, size: 0 }
          sync: full
        """)
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        let folder = (file as NSString).deletingLastPathComponent
        #expect(configuration.audit.enabled)
        #expect(configuration.auditStore == folder + "/state/audit.db")
        #expect(configuration.audit.body == .init(hash: true, prefixBytes: 8192))
        #expect(configuration.audit.mask == ["X-Api-Key", "X-Secret"])
        #expect(configuration.audit.buffer == 500)
        #expect(configuration.audit.commitTimeout == .seconds(2))
        #expect(configuration.audit.commitInterval == .microseconds(500))
        #expect(configuration.audit.retention.age == .seconds(3 * 86_400))
        #expect(configuration.audit.retention.maxBytes == nil)
        #expect(configuration.audit.fullSync)

        let postgres = try NodeConfiguration.load(file: try write("audit: { store: \"postgres://u:p@127.0.0.1:5432/db\", enabled: false }"), environment: [:])
        #expect(postgres.auditStore == "postgres://u:p@127.0.0.1:5432/db")
        #expect(!postgres.audit.enabled)

        let bad = try write("""
        audit:
          body: everything
          buffer: -1
          commit-timeout: never
          sync: sometimes
          retention: { age: old }
          color: blue
          commit-interval: 5s
        """)
        #expect {
            try NodeConfiguration.load(file: bad, environment: [:])
        } throws: { error in
            let text = ((error as? ConfigurationError)?.diagnostics ?? []).map(\.description).joined(separator: "\n")
            return text.contains("2:9: error: 'audit.body' expects none, hash, a size such as 8KiB, or hash+SIZE, found 'everything'")
                && text.contains("3:11: error: 'audit.buffer' expects a positive integer, found '-1'")
                && text.contains("4:19: error: 'audit.commit-timeout' expects a duration such as 10s, found 'never'")
                && text.contains("5:9: error: 'audit.sync' expects normal or full, found 'sometimes'")
                && text.contains("'audit.retention.age' expects a duration such as 7d, found 'old'")
                && text.contains("unknown node config key 'audit.color'")
                && text.contains("8:20: error: 'audit.commit-interval' expects a duration up to 1s such as 1ms or 0, found '5s'")
        }
    }

    @Test func datasourcesStateStoreAndOnErrorAreReadAndTheirMistakesLocated() throws {
        let file = try write("""
        datasources:
          main: sqlite:data/main.db
          orders:
            url: postgres://app:s3cret@127.0.0.1:5432/orders
            max-connections: 4
            query-timeout: 2s
        state: { store: state/state.db }
        on-error: { retry: { attempts: 5, backoff: 1s }, dead-letter: true }
        services:
          orders: { instances: [ "http://127.0.0.1:9001", { url: "http://127.0.0.1:9002/", id: b, weight: 2 } ], balance: weighted, failover: 2 }
        """)
        let folder = (file as NSString).deletingLastPathComponent
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        #expect(configuration.datasources.map(\.name) == ["main", "orders"])
        #expect(configuration.datasources[0].url == "sqlite:" + folder + "/data/main.db")
        #expect(configuration.datasources[1].maxConnections == 4)
        #expect(configuration.datasources[1].queryTimeout == .seconds(2))
        #expect(configuration.stateStore == folder + "/state/state.db")
        #expect(configuration.onError?.retry?.attempts == 5)
        #expect(configuration.onError?.retry?.backoff == .seconds(1))
        #expect(configuration.onError?.deadLetter == .store)
        #expect(configuration.services.map(\.name) == ["orders"])
        #expect(configuration.services.first?.balance == .weighted)
        #expect(configuration.services.first?.failover == 2)
        #expect(configuration.services.first?.instances == [
            .init(id: "0", url: "http://127.0.0.1:9001"), .init(id: "b", url: "http://127.0.0.1:9002", weight: 2),
        ])

        let bad = try write("""
        datasources:
          a: mysql://u:hunter2@h/db
          b: { url: "sqlite:x.db", pool: 3 }
          c: { max-connections: 2 }
        on-error: { retry: { attempts: many } }
        """)
        #expect {
            try NodeConfiguration.load(file: bad, environment: [:])
        } throws: { error in
            let text = ((error as? ConfigurationError)?.diagnostics ?? []).map(\.description).joined(separator: "\n")
            return text.contains("switchboard.yaml:2:6: error: datasource 'a': expected sqlite:PATH or postgres://user:password@host:port/database, found 'mysql://u:***@h/db'")
                && !text.contains("hunter2")
                && text.contains("switchboard.yaml:3:28: error: unknown datasource key 'pool'")
                && text.contains("switchboard.yaml:4:6: error: datasource 'c' needs a URL")
                && text.contains("switchboard.yaml:5:32: error: 'on-error.retry.attempts' expects the number of runs in all, 1 to 100, found 'many'")
        }
    }

    @Test func xmlLimitsAreReadAndChecked() throws {
        let defaults = NodeConfiguration(environment: [:])
        #expect(defaults.xmlMaxSize == 64 << 20)
        #expect(defaults.xmlMaxDepth == 256)
        let configuration = try NodeConfiguration.load(file: try write("xml: { max-size: 2MiB, max-depth: 512 }"), environment: [:])
        #expect(configuration.xmlMaxSize == 2 << 20)
        #expect(configuration.xmlMaxDepth == 512)
        let bad = try write("""
        xml:
          max-size: huge
          max-depth: 5000
        """)
        #expect {
            try NodeConfiguration.load(file: bad, environment: [:])
        } throws: { error in
            let text = ((error as? ConfigurationError)?.diagnostics ?? []).map(\.description).joined(separator: "\n")
            return text.contains("2:13: error: 'xml.max-size' expects a size up to 2GiB such as 64MiB, found 'huge'")
                && text.contains("3:14: error: 'xml.max-depth' expects a whole number from 1 to 2048, found '5000'")
        }
    }

    @Test func anEmptyConfigMeansDefaultsBesideTheFile() throws {
        let file = try write("")
        let folder = (file as NSString).deletingLastPathComponent
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        #expect(configuration.routesDirectory == folder + "/Routes")
        #expect(configuration.httpListen.port == 8080)
    }

    @Test func mistakesAreAllReportedWithTheirPlace() throws {
        let file = try write("""
        http:
          listen: "localhost"
          max-body-size: huge
        admn: { listen: ":1" }
        log: { level: chatty }
        """)
        #expect {
            try NodeConfiguration.load(file: file, environment: [:])
        } throws: { error in
            let lines = "\(error)".split(separator: "\n").map { $0.replacingOccurrences(of: file, with: "F") }
            return lines == [
                "F:2:12: error: 'http.listen' expects host:port such as 127.0.0.1:8080, found 'localhost'",
                "F:3:18: error: 'http.max-body-size' expects a size such as 10MiB, found 'huge'",
                "F:4:1: error: unknown node config key 'admn'; did you mean 'admin'?",
                "F:5:15: error: 'log.level' expects trace, debug, info, notice, warning, error or critical, found 'chatty'",
            ]
        }
    }
}
