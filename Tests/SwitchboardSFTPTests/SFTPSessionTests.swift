// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardSFTP
import SwitchboardTestServers
import Testing

/// The SFTP client against a real OpenSSH server on loopback.
@Suite(.serialized)
struct SFTPSessionTests {
    static func session(_ server: SSHServer, hostKey: SFTPHostKeyCheck? = nil, authentication: SFTPAuthentication? = nil) throws -> SFTPSession {
        try SFTPSession(
            host: "127.0.0.1", port: server.port, user: server.user,
            authentication: authentication ?? .privateKey(path: server.key, passphrase: nil),
            hostKey: hostKey ?? .fingerprint(server.fingerprint),
            timeout: .seconds(5)
        )
    }

    @Test func filesGoBackAndForthOverSFTP() throws {
        let server = try SSHServer()
        let session = try Self.session(server)
        #expect(session.hostKeyFingerprint == server.fingerprint)
        let folder = server.folder + "/remote"
        try session.makeDirectory(folder)
        let content = Array((0..<200_000).map { UInt8($0 % 251) })
        try session.write(content, to: folder + "/a.bin")
        #expect(try session.read(folder + "/a.bin") == content)
        let listed = try session.list(folder)
        #expect(listed.map(\.name) == ["a.bin"])
        #expect(listed.first?.size == 200_000 && listed.first?.isFile == true)
        #expect(listed.first.map { abs($0.modifiedNanos / 1_000_000_000 - Int64(Date().timeIntervalSince1970)) < 60 } == true)
        try session.write([1, 2, 3], to: folder + "/b.bin")
        #expect {
            try session.rename(folder + "/a.bin", to: folder + "/b.bin")
        } throws: { error in
            "\(error)".contains("cannot move")
        }
        try session.rename(folder + "/a.bin", to: folder + "/c.bin")
        #expect(try session.stat(folder + "/a.bin") == nil)
        #expect(try session.stat(folder + "/c.bin")?.size == 200_000)
        try session.remove(folder + "/c.bin")
        #expect(try session.list(folder).map(\.name) == ["b.bin"])
        #expect(throws: SFTPError.self) { try session.read(folder + "/missing") }
    }

    @Test func unknownOrChangedHostKeysAreRefusedWithTheFingerprint() throws {
        let server = try SSHServer()
        #expect {
            try Self.session(server, hostKey: .fingerprint(server.otherFingerprint))
        } throws: { error in
            "\(error)".contains("is \(server.fingerprint), not the pinned \(server.otherFingerprint); refusing to connect")
        }
        _ = try Self.session(server, hostKey: .knownHosts(server.knownHosts))
        #expect {
            try Self.session(server, hostKey: .knownHosts(server.wrongKnownHosts))
        } throws: { error in
            "\(error)".contains("(\(server.fingerprint)) does not match the one in \(server.wrongKnownHosts): it changed")
        }
        let empty = server.folder + "/empty_known_hosts"
        FileManager.default.createFile(atPath: empty, contents: Data())
        #expect {
            try Self.session(server, hostKey: .knownHosts(empty))
        } throws: { error in
            "\(error)".contains("is not in \(empty) (its host key is \(server.fingerprint))")
        }
    }

    @Test func aPasswordLogsInAndAWrongOneIsRefused() throws {
        let server = try SSHServer()
        let user = try #require(server.passwordUser, "the test sshd makes a password user only when the tests run as root")
        func login(_ password: String) throws -> SFTPSession {
            try SFTPSession(
                host: "127.0.0.1", port: server.port, user: user, authentication: .password(password),
                hostKey: .fingerprint(server.fingerprint), timeout: .seconds(5)
            )
        }
        let session = try login(server.password)
        try session.write([1, 2, 3], to: server.passwordHome + "/p.bin")
        #expect(try session.read(server.passwordHome + "/p.bin") == [1, 2, 3])
        #expect {
            try login("not-" + server.password)
        } throws: { error in
            "\(error)".contains("refused user '\(user)'") && !"\(error)".contains(server.password)
        }
    }

    @Test func keysWithPassphrasesAndWrongCredentials() throws {
        let server = try SSHServer()
        _ = try Self.session(server, authentication: .privateKey(path: server.secretKey, passphrase: "secret"))
        _ = try Self.session(server, authentication: .privateKey(path: server.rsaKey, passphrase: nil))
        #expect {
            try Self.session(server, authentication: .privateKey(path: server.secretKey, passphrase: "wrong"))
        } throws: { error in
            "\(error)".contains("refused user '\(server.user)'")
        }
        #expect(throws: SFTPError.self) { try Self.session(server, authentication: .password("nope")) }
        #expect {
            try SFTPSession(host: "127.0.0.1", port: 1, user: "x", authentication: .password("x"), hostKey: .fingerprint("SHA256:x"), timeout: .seconds(2))
        } throws: { error in
            "\(error)".contains("cannot connect to 127.0.0.1:1")
        }
    }
}
