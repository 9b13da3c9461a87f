// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardHTTP
import SwitchboardRouting
import SwitchboardTransform
import SwitchboardTestServers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `https://` producers on the adapter's own client: nginx with a certificate from a CA
/// made by openssl here, reached over TLS with the same pooling and errors as `http://`.
@Suite(.timeLimit(.minutes(2)))
struct HTTPSProducerTests {
    /// nginx over TLS on `port`, closing keep-alive connections idle for 4 s, answering
    /// with the TLS version, its connection's serial number and the request's number on it.
    /// Its certificate names `localhost` only (TestCertificates' `localhost.pem`).
    static func startTLSNginx(port: Int, certificates: TestCertificates) throws -> (Process, URL) {
        try NginxBackendTests.startNginx(port: port) { _ in
            """
            server {
                listen 127.0.0.1:\(port) ssl;
                ssl_certificate \(certificates.path("localhost.pem"));
                ssl_certificate_key \(certificates.path("localhost.key"));
                keepalive_timeout 4s;
                location / {
                    default_type application/json;
                    return 200 '{"server":"nginx","tls":"$ssl_protocol","connection":"$connection","request":"$connection_requests","uri":"$request_uri"}';
                }
            }
            """
        }
    }

    @Test func aRouteCallsNginxOverTLSReusingAndRenewingConnections() async throws {
        let port = try NginxBackendTests.freePort()
        let certificates = try await TestCertificates.make()
        let (nginx, folder) = try Self.startTLSNginx(port: port, certificates: certificates)
        defer {
            kill(nginx.processIdentifier, SIGKILL)
            nginx.waitUntilExit()
            try? FileManager.default.removeItem(at: folder)
            certificates.remove()
        }
        let ca = certificates.path("ca.pem")
        try await SwitchboardUnderTest.run("""
        routes:
          - id: trusted
            from: http:/trusted?method=POST
            steps: [ { to: "https://localhost:\(port)/in?ca=\(ca)" } ]
          - id: untrusted
            from: http:/untrusted?method=POST
            steps: [ { to: "https://localhost:\(port)/in" } ]
          - id: wrong-name
            from: http:/wrong-name?method=POST
            steps: [ { to: "https://127.0.0.1:\(port)/in?ca=\(ca)" } ]
        """) { node in
            // nginx may need a moment to bind.
            var first = try await node.request(.POST, "/trusted", body: "{}")
            for _ in 0..<50 where first.status == 502 && first.body.contains("cannot connect") {
                try await Task.sleep(for: .milliseconds(100))
                first = try await node.request(.POST, "/trusted", body: "{}")
            }
            #expect(first.status == 200, "\(first.body)")
            let one = try #require(first.body.json)
            #expect(one["server"] == .string("nginx"))
            #expect(one["uri"] == .string("/in"))
            #expect(one["tls"] == .string("TLSv1.3") || one["tls"] == .string("TLSv1.2"))

            // The pooled connection carries the next request.
            let second = try await node.request(.POST, "/trusted", body: "{}")
            #expect(second.status == 200, "\(second.body)")
            let two = try #require(second.body.json)
            #expect(two["connection"] == one["connection"])
            #expect(two["request"] == .string("2"))

            // nginx closes it after 4 s idle: the next request goes out on a new one.
            try await Task.sleep(for: .milliseconds(4_600))
            let third = try await node.request(.POST, "/trusted", body: "{}")
            #expect(third.status == 200, "\(third.body)")
            let three = try #require(third.body.json)
            #expect(three["connection"] != one["connection"])

            // The system's authorities do not know the test CA.
            let untrusted = try await node.request(.POST, "/untrusted", body: "{}")
            #expect(untrusted.status == 502)
            #expect(untrusted.body.contains("TLS handshake with https://localhost:\(port)/in failed"), "\(untrusted.body)")
            #expect(untrusted.body.uppercased().contains("CERTIFICATE"), "\(untrusted.body)")

            // The certificate names localhost, not 127.0.0.1.
            let wrongName = try await node.request(.POST, "/wrong-name", body: "{}")
            #expect(wrongName.status == 502)
            #expect(wrongName.body.contains("TLS handshake with https://127.0.0.1:\(port)/in?ca="), "\(wrongName.body)")
            #expect(wrongName.body.contains("failed: the server's certificate is not for 127.0.0.1"), "\(wrongName.body)")
        }
    }

    @Test func caIsForHTTPSAndMustLoad() throws {
        let adapter = HTTPAdapter()
        let catalog = AdapterCatalog([adapter])
        func loadError(_ uri: String) -> String {
            do {
                _ = try RouteLoader(catalog: catalog, observers: [], logger: .init(label: "test")).load(sources: [(
                    "routes:\n  - id: r\n    from: http:/r\n    steps: [ { to: \"\(uri)\" } ]\n", "r.yaml"
                )])
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(loadError("http://127.0.0.1:9/x?ca=/etc/hostname").contains("'ca' is for https:// endpoints"))
        let missing = loadError("https://127.0.0.1:9/x?ca=/nonexistent/ca.pem")
        #expect(missing.contains("r.yaml:4:"), "\(missing)")
        #expect(missing.contains("cannot load the certificate authorities of '/nonexistent/ca.pem'"), "\(missing)")
    }
}
