// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardNode
import SwitchboardTestServers
import Testing

/// `http.tls` and `admin.tls` in the node config: problems at their `file:line:column`, and
/// both listeners served over HTTPS.
@Suite(.timeLimit(.minutes(2)))
struct NodeTLSTests {
    static func config(_ text: String, in certificates: TestCertificates) throws -> String {
        let file = certificates.path("switchboard.yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    static func loadError(_ file: String) -> String {
        do {
            _ = try NodeConfiguration.load(file: file, environment: [:])
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test func problemsAreReportedAtTheirKeys() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        // Relative paths resolve against the config file's folder.
        let good = try Self.config("""
        http:
          tls: { cert: server.pem, key: server.key, client-ca: ca.pem, client-auth: optional, min-version: "1.3" }
        """, in: certificates)
        let loaded = try NodeConfiguration.load(file: good, environment: [:])
        let tls = try #require(loaded.httpTLS)
        #expect(tls.settings.certificateFile == certificates.path("server.pem"))
        #expect(tls.settings.clientAuth == .optional)

        let expired = Self.loadError(try Self.config("""
        http:
          tls:
            cert: expired.pem
            key: expired.key
        """, in: certificates))
        #expect(expired.contains("switchboard.yaml:3:11:"), "\(expired)")
        #expect(expired.contains("expired on 2020-01-02"), "\(expired)")

        let mismatch = Self.loadError(try Self.config("""
        admin:
          tls:
            cert: server.pem
            key: server2.key
        """, in: certificates))
        #expect(mismatch.contains("switchboard.yaml:4:10:"), "\(mismatch)")
        #expect(mismatch.contains("'admin.tls'") && mismatch.contains("is not the key of the certificate"), "\(mismatch)")

        let wrong = Self.loadError(try Self.config("""
        http:
          tls: { cert: server.pem, client-auth: always, min-verison: "1.2" }
        """, in: certificates))
        #expect(wrong.contains("switchboard.yaml:2:41: error: 'http.tls.client-auth' expects none, optional or require"), "\(wrong)")
        #expect(wrong.contains("unknown node config key 'http.tls.min-verison'; did you mean 'http.tls.min-version'?"), "\(wrong)")
        #expect(wrong.contains("'http.tls' needs 'key'"), "\(wrong)")

        let requireWithoutCA = Self.loadError(try Self.config("""
        http:
          tls: { cert: server.pem, key: server.key, client-auth: require }
        """, in: certificates))
        #expect(requireWithoutCA.contains("needs 'http.tls.client-ca'"), "\(requireWithoutCA)")
    }

    @Test func bothListenersServeHTTPS() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try FileManager.default.createDirectory(atPath: certificates.path("routes"), withIntermediateDirectories: true)
        try """
        routes:
          - id: hello
            from: https:/hello?method=GET
            steps: [ { set-body: "hello" } ]
        """.write(toFile: certificates.path("routes/hello.yaml"), atomically: true, encoding: .utf8)
        let file = try Self.config("""
        http: { listen: "127.0.0.1:0", tls: { cert: server.pem, key: server.key } }
        admin: { listen: "127.0.0.1:0", tls: { cert: server.pem, key: server.key } }
        routes: routes
        data: var
        """, in: certificates)
        let configuration = try NodeConfiguration.load(file: file, environment: [:])
        let node = try await SwitchboardNode(configuration: configuration, logger: Logger(label: "node-tls") { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let http = try #require(await node.httpPort)
            let admin = try #require(await node.adminPort)
            let ca = ["--cacert", certificates.path("ca.pem")]
            let route = try await Curl.run(ca + ["https://localhost:\(http)/hello"])
            #expect(route.status == 0 && route.output == "hello", "\(route.errors)")
            let health = try await Curl.run(ca + ["https://localhost:\(admin)/health"])
            #expect(health.status == 0 && health.output.hasPrefix(#"{"status":"ok""#), "\(health.errors)")
            let metrics = try await Curl.run(ca + ["https://localhost:\(admin)/metrics"])
            #expect(metrics.output.contains(#"switchboard_tls_certificate_expiry_seconds{listener="http"}"#), "\(metrics.status) \(metrics.errors) \(metrics.output.prefix(400))")
            #expect(try await Curl.run(["http://localhost:\(admin)/health"]).output.isEmpty)
            group.cancelAll()
        }
    }
}
