// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket bound to a loopback port the kernel picks: the descriptor and the port
/// (0 when binding failed).
public func boundLoopbackSocket() -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    return (descriptor, bound ? Int(UInt16(bigEndian: address.sin_port)) : 0)
}

/// A loopback port nothing listens on now (the kernel's pick); `below` leaves room for a
/// range after it (an FTP server's passive ports).
public func freePort(below limit: Int = 65_536) -> Int {
    for _ in 0..<20 {
        let (descriptor, port) = boundLoopbackSocket()
        close(descriptor)
        if port > 0, port < limit { return port }
    }
    return Int.random(in: 20000..<min(limit, 60000))
}

/// A loopback port that accepts connections (the kernel completes them) and never says
/// anything: a client waits there for a greeting until it times out.
public final class SilentListener {
    let descriptor: Int32
    public let port: Int

    public init() throws {
        let (descriptor, port) = boundLoopbackSocket()
        guard port > 0, listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw SSHServer.ServerError()
        }
        self.descriptor = descriptor
        self.port = port
    }

    deinit { close(descriptor) }
}

/// A throwaway OpenSSH server (Tests/servers/sshd) on a free loopback port, stopped when the
/// value goes away.
public final class SSHServer {
    public let folder: String
    public let values: [String: String]

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/servers/sshd"

    public init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-sshd-\(UUID().uuidString)").path
        var values: [String: String] = [:]
        for _ in 0..<5 {
            let port = freePort()
            let output = try SSHServer.run([SSHServer.script, "start", folder, String(port)])
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
            if values["port"] != nil, SSHServer.speaksSSH(port) { break }
            _ = try? SSHServer.run([SSHServer.script, "stop", folder])
            values = [:]
        }
        guard values["port"] != nil else { throw ServerError() }
        self.values = values
    }

    public struct ServerError: Error {
        public init() {}
    }

    public var port: Int { Int(values["port"] ?? "") ?? 0 }
    public var user: String { values["user"] ?? "root" }
    public var key: String { values["key"] ?? "" }
    public var rsaKey: String { values["rsa_key"] ?? "" }
    public var secretKey: String { values["secret_key"] ?? "" }
    /// A system user that logs in with `password` (only when the tests run as root), and
    /// its home, where it may write.
    public var passwordUser: String? { values["password_user"] }
    public var password: String { values["password"] ?? "" }
    public var passwordHome: String { values["password_home"] ?? "" }
    public var fingerprint: String { values["fingerprint"] ?? "" }
    public var otherFingerprint: String { values["other_fingerprint"] ?? "" }
    public var knownHosts: String { values["known_hosts"] ?? "" }
    public var wrongKnownHosts: String { values["wrong_known_hosts"] ?? "" }

    deinit {
        _ = try? SSHServer.run([SSHServer.script, "stop", folder])
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Whether the server on `port` greets with an SSH banner (and not another test's server).
    static func speaksSSH(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var banner = [UInt8](repeating: 0, count: 8)
        return recv(descriptor, &banner, banner.count, 0) >= 4 && banner.starts(with: Array("SSH-".utf8))
    }

    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A throwaway FTP server (Tests/servers/ftpd, pyftpdlib) on a free loopback port.
public final class FTPServer {
    public let folder: String
    public let values: [String: String]
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/servers/ftpd"

    public init(tls: Bool) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-ftpd-\(UUID().uuidString)").path
        var values: [String: String] = [:]
        for _ in 0..<5 where values["port"] == nil {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [FTPServer.script, "start", folder, String(freePort(below: 65_000))] + (tls ? ["tls"] : [])
            // Output to a file, not a pipe: the server the script leaves running inherits the
            // pipe, so it would never reach its end.
            let report = FileManager.default.temporaryDirectory.appendingPathComponent("sb-ftpd-\(UUID().uuidString).txt").path
            FileManager.default.createFile(atPath: report, contents: nil)
            defer { try? FileManager.default.removeItem(atPath: report) }
            process.standardOutput = FileHandle(forWritingAtPath: report)
            try process.run()
            process.waitUntilExit()
            let output = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
        }
        self.values = values
    }

    public var port: Int { Int(values["port"] ?? "") ?? 0 }
    public var root: String { values["root"] ?? "" }
    public var cert: String? { values["cert"] }

    deinit {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [FTPServer.script, "stop", folder]
        try? process.run()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: folder)
    }
}


/// The PostgreSQL server `make test` starts (Tests/servers/postgres) and names in
/// SWITCHBOARD_TEST_POSTGRES, if any.
public enum PostgresTestServer {
    public static let url = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES"]

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs one statement on that server as its superuser.
    public static func psql(_ statement: String) throws {
        guard let base = url else { throw Unavailable(description: "SWITCHBOARD_TEST_POSTGRES is not set") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [base, "-q", "-c", statement]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Unavailable(description: "psql failed on: \(statement)") }
    }

    /// Creates a database of its own on that server and returns its URL.
    public static func freshDatabase(prefix: String) throws -> String {
        guard let base = url else { throw Unavailable(description: "SWITCHBOARD_TEST_POSTGRES is not set") }
        let name = prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let create = Process()
        create.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        create.arguments = [base, "-q", "-c", "CREATE DATABASE \(name)"]
        try create.run()
        create.waitUntilExit()
        guard create.terminationStatus == 0, var components = URLComponents(string: base) else {
            throw Unavailable(description: "psql could not create a database on \(base)")
        }
        components.path = "/" + name
        guard let result = components.string else { throw Unavailable(description: "bad URL \(base)") }
        return result
    }
}

/// A TCP forwarder on a loopback port (a Python process), for a server that goes away and
/// comes back.
public final class TCPForwarder: @unchecked Sendable {
    private let process = Process()

    /// Forwards connections to `from` to `to`, both on 127.0.0.1, once it listens.
    public init(from: Int, to: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
        import socket, threading, sys
        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data: break
                    b.sendall(data)
            except OSError: pass
            finally:
                for s in (a, b):
                    try: s.shutdown(socket.SHUT_RDWR)
                    except OSError: pass
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", \(from)))
        listener.listen(64)
        print("ready", flush=True)
        while True:
            client, _ = listener.accept()
            server = socket.create_connection(("127.0.0.1", \(to)))
            threading.Thread(target=pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=pipe, args=(server, client), daemon=True).start()
        """]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Listening once it says so.
        _ = output.fileHandleForReading.availableData
    }

    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
