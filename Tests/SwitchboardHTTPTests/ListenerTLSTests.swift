// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardHTTP
import SwitchboardTestServers
import Testing

/// TLS on the route listener (`http.tls`), tried with curl: HTTPS with a private CA,
/// client certificates required, and a certificate rotated without a restart.
@Suite(.timeLimit(.minutes(2)))
struct ListenerTLSTests {
    static let route = """
    routes:
      - id: hello
        from: https:/hello?method=POST
        steps: [ { set-body: "hello over TLS" } ]
    """

    @Test func servesHTTPSAndRotatesItsCertificate() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        // The node serves copies, which the test then replaces.
        let live = (certificates.path("live.pem"), certificates.path("live.key"))
        try FileManager.default.copyItem(atPath: certificates.path("server.pem"), toPath: live.0)
        try FileManager.default.copyItem(atPath: certificates.path("server.key"), toPath: live.1)
        let tls = try ServerTLS(.init(certificateFile: live.0, keyFile: live.1))
        #expect(tls.subject.contains("CN=localhost"))
        try await SwitchboardUnderTest.run(Self.route, configure: {
            $0.tls = tls
            $0.tlsReloadInterval = .milliseconds(100)
        }) { node in
            let url = "https://localhost:\(node.port)/hello"
            let reply = try await Curl.run(["--cacert", certificates.path("ca.pem"), "-X", "POST", "-d", "x", "-v", url])
            #expect(reply.status == 0, "\(reply.errors)")
            #expect(reply.output == "hello over TLS")
            #expect(reply.errors.contains("ALPN: server accepted http/1.1"), "\(reply.errors)")
            #expect(!reply.errors.contains("O=Rotated"))

            // Without the CA, curl does not trust it; plain HTTP gets no answer.
            #expect(try await Curl.run(["-X", "POST", "-d", "x", url]).status != 0)
            #expect(try await Curl.run(["-X", "POST", "-d", "x", "http://localhost:\(node.port)/hello"]).output.isEmpty)

            // A new pair in place of the files: served from the next handshake on.
            try FileManager.default.removeItem(atPath: live.0)
            try FileManager.default.removeItem(atPath: live.1)
            try FileManager.default.copyItem(atPath: certificates.path("server2.key"), toPath: live.1)
            try FileManager.default.copyItem(atPath: certificates.path("server2.pem"), toPath: live.0)
            var rotated = false
            for _ in 0..<50 where !rotated {
                try await Task.sleep(for: .milliseconds(100))
                let again = try await Curl.run(["--cacert", certificates.path("ca.pem"), "-X", "POST", "-d", "x", "-v", url])
                #expect(again.status == 0, "\(again.errors)")
                rotated = again.errors.contains("O=Rotated")
            }
            #expect(rotated, "the rotated certificate was never served")
            #expect(tls.subject.contains("O=Rotated"))

            // A broken pair leaves the one in use.
            try "not a certificate".write(toFile: live.0, atomically: true, encoding: .utf8)
            try await Task.sleep(for: .milliseconds(400))
            let kept = try await Curl.run(["--cacert", certificates.path("ca.pem"), "-X", "POST", "-d", "x", url])
            #expect(kept.status == 0 && kept.output == "hello over TLS", "\(kept.errors)")
        }
    }

    @Test func requiredClientCertificatesAreChecked() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let tls = try ServerTLS(.init(
            certificateFile: certificates.path("server.pem"), keyFile: certificates.path("server.key"),
            clientCAFile: certificates.path("ca.pem"), clientAuth: .require
        ))
        try await SwitchboardUnderTest.run(Self.route, configure: { $0.tls = tls }) { node in
            let url = "https://localhost:\(node.port)/hello"
            let base = ["--cacert", certificates.path("ca.pem"), "-X", "POST", "-d", "x"]
            let without = try await Curl.run(base + [url])
            #expect(without.status != 0, "a connection without a client certificate was served: \(without.output)")
            let with = try await Curl.run(base + ["--cert", certificates.path("client-a.pem"), "--key", certificates.path("client-a.key"), url])
            #expect(with.status == 0, "\(with.errors)")
            #expect(with.output == "hello over TLS")
            // A certificate the CA did not sign: the server's own key and certificate are not a client's.
            let selfMade = try await Curl.run(base + ["--cert", certificates.path("ca.pem"), "--key", certificates.path("ca.key"), url])
            #expect(selfMade.status != 0)
        }
    }

    @Test func filesThatDoNotFitAreRefusedNamingTheFile() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        func error(_ settings: ServerTLS.Settings) -> String {
            do {
                _ = try ServerTLS(settings)
                return ""
            } catch {
                return "\(error)"
            }
        }
        let expired = error(.init(certificateFile: certificates.path("expired.pem"), keyFile: certificates.path("expired.key")))
        #expect(expired.contains(certificates.path("expired.pem")) && expired.contains("expired on 2020-01-02"), "\(expired)")
        let mismatch = error(.init(certificateFile: certificates.path("server.pem"), keyFile: certificates.path("server2.key")))
        #expect(mismatch.contains(certificates.path("server2.key")) && mismatch.contains("is not the key of the certificate"), "\(mismatch)")
        let missing = error(.init(certificateFile: certificates.path("nothing.pem"), keyFile: certificates.path("server.key")))
        #expect(missing.contains(certificates.path("nothing.pem")) && missing.contains("cannot read the certificate"), "\(missing)")
        let noCA = error(.init(certificateFile: certificates.path("server.pem"), keyFile: certificates.path("server.key"), clientAuth: .require))
        #expect(noCA.contains("needs client-ca"), "\(noCA)")
        let notPEM = error(.init(certificateFile: certificates.path("server.pem"), keyFile: certificates.path("server.csr")))
        #expect(notPEM.contains(certificates.path("server.csr")) && notPEM.contains("is not a PEM private key"), "\(notPEM)")
    }

    @Test func anHTTPSRouteNeedsTLSOnTheListener() async throws {
        await #expect(throws: (any Error).self) {
            try await SwitchboardUnderTest.run(Self.route) { _ in }
        }
        do {
            try await SwitchboardUnderTest.run(Self.route) { _ in }
        } catch {
            #expect("\(error)".contains("http-routes.yaml:3:"), "\(error)")
            #expect("\(error)".contains("'from: https:/…' is served over TLS, and the listener has none"), "\(error)")
        }
    }
}
