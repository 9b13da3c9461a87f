// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Certificates made by `openssl` for a test, in a fresh folder: a CA (`ca.pem`), server
/// certificates it signed for `localhost` and 127.0.0.1 (`server.pem`/`server.key`; one for the
/// name `localhost` only, `localhost.pem`/`.key`; a second
/// `server2.pem`/`server2.key` for rotation, an expired `expired.pem`/`expired.key`), and
/// two client certificates (`client-a.pem`/`.key` with subject `CN=partner-a,O=Acme`,
/// `client-b`).
public struct TestCertificates: Sendable {
    public let folder: URL

    public func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Makes them on a Dispatch thread (openssl runs as child processes).
    public static func make() async throws -> TestCertificates {
        try await offThePool { try TestCertificates() }
    }

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Switchboard Test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        try write("localhost.ext", "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        try write("client.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        try sign("server", subject: "/CN=localhost", extensions: "server.ext")
        try sign("localhost", subject: "/CN=localhost", extensions: "localhost.ext")
        try sign("server2", subject: "/CN=localhost/O=Rotated", extensions: "server.ext")
        try sign("client-a", subject: "/O=Acme/CN=partner-a", extensions: "client.ext")
        try sign("client-b", subject: "/O=Other/CN=partner-b", extensions: "client.ext")
        // Expired: `openssl ca` is the command that takes explicit dates.
        try write("index.txt", "")
        try write("ca.cnf", """
        [ca]
        default_ca = test
        [test]
        database = \(path("index.txt"))
        new_certs_dir = \(folder.path)
        serial = \(path("ca.srl"))
        default_md = sha256
        policy = anything
        copy_extensions = none
        [anything]
        commonName = supplied
        """)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=localhost"])
        try openssl([
            "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr", "-out", "expired.pem",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", "server.ext", "-notext",
        ])
    }

    /// A key and a certificate the CA signs for it.
    private func sign(_ name: String, subject: String, extensions: String) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
        try openssl([
            "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "\(name).pem",
            "-days", "2", "-extfile", extensions,
        ])
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = folder
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: \(message)")
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}
