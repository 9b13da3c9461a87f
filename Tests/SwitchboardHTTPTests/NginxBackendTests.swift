// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nginx from Debian's package as the backend: the adapter against a server that is not ours.
struct NginxBackendTests {
    /// A port nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts nginx in the foreground on `port` with a JSON-answering location, or with
    /// `server` (given the folder) as its server block.
    static func startNginx(port: Int, server: ((URL) -> String)? = nil) throws -> (Process, URL) {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let nginx = try #require(binary, "nginx is not installed; `make test` installs it (apt-get install nginx)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = """
        daemon off;
        master_process off;
        worker_processes 1;
        error_log \(folder.path)/error.log;
        pid \(folder.path)/nginx.pid;
        events { worker_connections 256; }
        http {
            access_log off;
            client_body_temp_path \(folder.path)/body;
            proxy_temp_path \(folder.path)/proxy;
            fastcgi_temp_path \(folder.path)/fastcgi;
            uwsgi_temp_path \(folder.path)/uwsgi;
            scgi_temp_path \(folder.path)/scgi;
            \(server?(folder) ?? """
            server {
                listen 127.0.0.1:\(port);
                location / {
                    default_type application/json;
                    add_header X-Served-By nginx;
                    return 200 '{"server":"nginx","uri":"$request_uri","method":"$request_method","correlation":"$http_x_correlation_id"}';
                }
            }
            """)
        }
        """
        let configFile = folder.appendingPathComponent("nginx.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-c", configFile.path, "-p", folder.path]
        try process.run()
        return (process, folder)
    }

    @Test func proxiesToNginx() async throws {
        let port = try Self.freePort()
        let (nginx, folder) = try Self.startNginx(port: port)
        defer {
            // The test process blocks SIGTERM in its threads and children inherit the mask,
            // so nginx would ignore terminate(); it is a throwaway server, so kill it.
            kill(nginx.processIdentifier, SIGKILL)
            nginx.waitUntilExit()
            try? FileManager.default.removeItem(at: folder)
        }
        try await SwitchboardUnderTest.run("""
        routes:
          - id: to-nginx
            from: http:/api/{resource}?method=POST
            steps:
              - choice:
                  - when: { header: X-Tier, equals: gold }
                    steps: [ { to: "{backend}/gold" } ]
                  - otherwise:
                      - to: "{backend}/standard"
        """, backendPort: port) { node in
            // nginx may need a moment to bind; the first attempts may be refused.
            var reply = try await node.request(.POST, "/api/orders", body: "{}", headers: [("X-Tier", "silver"), ("X-Correlation-ID", "ng-1")])
            var attempts = 0
            while reply.status == 502, attempts < 50 {
                try await Task.sleep(for: .milliseconds(100))
                reply = try await node.request(.POST, "/api/orders", body: "{}", headers: [("X-Tier", "silver"), ("X-Correlation-ID", "ng-1")])
                attempts += 1
            }
            #expect(reply.status == 200, "\(reply.body)")
            let json = try #require(reply.body.json)
            #expect(json["server"] == .string("nginx"))
            #expect(json["uri"] == .string("/standard"))
            #expect(json["method"] == .string("POST"))
            #expect(json["correlation"] == .string("ng-1"))
            #expect(reply.headers.first(name: "X-Served-By") == "nginx")
            #expect(reply.headers.first(name: "X-Correlation-ID") == "ng-1")
        }
    }
}
