import Foundation

/// A throwaway OpenSSH server (Tests/servers/sshd) on a free loopback port, stopped when the
/// value goes away.
final class SSHServer {
    let folder: String
    let values: [String: String]

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/servers/sshd"

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-sshd-\(UUID().uuidString)").path
        var values: [String: String] = [:]
        for _ in 0..<5 {
            let port = Int.random(in: 20000...60000)
            let output = try SSHServer.run([SSHServer.script, "start", folder, String(port)])
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
            if values["port"] != nil, SSHServer.listening(port) { break }
            _ = try? SSHServer.run([SSHServer.script, "stop", folder])
            values = [:]
        }
        guard values["port"] != nil else { throw ServerError() }
        self.values = values
    }

    struct ServerError: Error {}

    var port: Int { Int(values["port"] ?? "") ?? 0 }
    var user: String { values["user"] ?? "root" }
    var key: String { values["key"] ?? "" }
    var rsaKey: String { values["rsa_key"] ?? "" }
    var secretKey: String { values["secret_key"] ?? "" }
    var fingerprint: String { values["fingerprint"] ?? "" }
    var otherFingerprint: String { values["other_fingerprint"] ?? "" }
    var knownHosts: String { values["known_hosts"] ?? "" }
    var wrongKnownHosts: String { values["wrong_known_hosts"] ?? "" }

    deinit {
        _ = try? SSHServer.run([SSHServer.script, "stop", folder])
        try? FileManager.default.removeItem(atPath: folder)
    }

    static func listening(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
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
