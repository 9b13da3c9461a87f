// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchboardNode

/// Talks to a running node's admin API: the address and token come from the node config
/// (or SWITCHBOARD_ADMIN_TOKEN), exactly as the node reads them.
struct AdminClient {
    let base: String
    let token: String?

    init(_ configuration: NodeConfiguration) {
        var host = configuration.adminListen.host
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let shown = host.contains(":") ? "[\(host)]" : host
        base = "http://\(shown):\(configuration.adminListen.port)"
        token = configuration.adminToken
    }

    /// One client for the command's life; a refused connection fails at once instead of
    /// being retried until the deadline.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(2)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// The node is not running (nothing listens on the admin address).
    struct Unreachable: Error, CustomStringConvertible {
        let base: String
        var description: String { "no node answers on \(base) (is it running? is admin.listen right?)" }
    }

    /// An answer other than 2xx.
    struct Failed: Error, CustomStringConvertible {
        let status: Int
        let message: String
        /// The message the error was about, and the dead letter it became, when the node says.
        var messageID: String?
        var deadLetter: String?
        var description: String { message }
    }

    /// Sends a request and returns the body of a 2xx answer.
    ///
    /// - Throws: ``Unreachable`` when nothing listens, ``Failed`` with the node's error otherwise.
    func request(_ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(60)) async throws -> (body: ByteBuffer, headers: [(String, String)]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await Self.client.execute(request, timeout: timeout)
            bytes = try await response.body.collect(upTo: 256 << 20)
        } catch is NIOConnectionError {
            throw Unreachable(base: base)
        } catch let error as IOError where error.errnoCode == ECONNREFUSED || error.errnoCode == ECONNRESET {
            throw Unreachable(base: base)
        } catch let error as HTTPClientError where error == .connectTimeout || error == .deadlineExceeded {
            throw Unreachable(base: base)
        }
        let answerHeaders = response.headers.map { ($0.name, $0.value) }
        guard (200..<300).contains(Int(response.status.code)) else {
            let text = String(buffer: bytes)
            let fields = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            let message = fields["error"] as? String ?? text
            throw Failed(
                status: Int(response.status.code), message: "the node answered \(response.status.code): \(message)",
                messageID: fields["messageId"] as? String, deadLetter: fields["deadLetter"] as? String
            )
        }
        return (bytes, answerHeaders)
    }
}

/// Whether standard output is a terminal that takes colour (and NO_COLOR is unset).
func stdoutWantsColor() -> Bool {
    isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Splits `NAME=VALUE` at the first `=`; nil without one.
func splitPair(_ text: String) -> (String, String)? {
    guard let equals = text.firstIndex(of: "=") else { return nil }
    return (String(text[..<equals]), String(text[text.index(after: equals)...]))
}

/// The bytes of a file named on the command line; `-` reads standard input.
func readInput(_ path: String) throws -> Data {
    if path == "-" {
        return FileHandle.standardInput.readDataToEndOfFile()
    }
    guard let contents = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read '\(path)'")
    }
    return contents
}
