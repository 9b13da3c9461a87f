// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwitchboardCore

/// `to: http[s]://host:port/path`: sends the message as an HTTP request over pooled
/// keep-alive connections (TLS for `https://`, on the same client) and continues with the
/// response.
///
/// Method: the endpoint's `method` option, else the message's `http.method` header (so a
/// proxied request keeps its method), else POST with a body and GET without. Headers: all
/// but Switchboard's own (`http.status`…) and hop-by-hop ones, plus `X-Correlation-ID`
/// carrying the message's correlation id and a W3C `traceparent` with the message's trace
/// id and a new span id. The reply keeps the request's
/// headers, takes the response's, and sets `http.status`.
struct HTTPProducer: Producer {
    let display: String
    let method: HTTPMethod?
    let timeout: TimeAmount
    let failOnServerError: Bool
    let maxResponseSize: Int
    /// The URL has credentials: they are sent as `Authorization`, in place of the message's.
    let hasCredentials: Bool
    /// The connections to the backend's host and port, found at route load.
    let pool: HostPool
    /// The request target, and the fields every request carries (`Host`, the URL's
    /// credentials), written and checked at route load.
    let target: String
    let fixedFields: ByteBuffer

    func send(_ exchange: Exchange) async throws -> Exchange {
        let message = exchange.message
        let method: HTTPMethod
        if let fixed = self.method {
            method = fixed
        } else if let name = message.headers["http.method"] {
            method = HTTPMethod(rawValue: name)
        } else {
            method = message.body.readableBytes > 0 ? .POST : .GET
        }
        let sendsBody = message.body.readableBytes > 0 || method == .POST || method == .PUT || method == .PATCH
        let status: HTTPResponseStatus
        let replyHeaders: HTTPHeaders
        let body: ByteBuffer
        do {
            // Written as bytes as the fields are found: no header list in between.
            var request = try HTTPRequestBytes(method: method, target: target, capacity: 64 + message.headers.count * 48)
            request.add(checked: fixedFields)
            try forEachField(of: message) { name, value throws(HTTP1Client.Failure) in
                try request.add(name, value)
            }
            request.finish(body: sendsBody ? message.body : nil)
            let response = try await pool.client.execute(on: pool, request, timeout: timeout, maxResponseSize: maxResponseSize)
            (status, replyHeaders, body) = (response.head.status, response.head.headers, response.body)
        } catch {
            throw describe(error)
        }
        if failOnServerError, status.code >= 500 {
            throw ProcessingError("\(display) answered HTTP \(status.code) \(status.reasonPhrase)", status: 502, kind: ErrorKind.serverError)
        }
        var reply = exchange
        reply.message.headers.reserveCapacity(reply.message.headers.count + replyHeaders.count + 1)
        reply.message.headers.remove("Content-Type")
        // A reply header replaces any request header of that name (removed when the name is
        // first met); repeated reply headers (Set-Cookie) are all kept.
        for (index, header) in replyHeaders.enumerated() where HTTPHeaderRules.keepsIncoming(header.name) {
            if !replyHeaders.prefix(index).contains(where: { $0.name.equalsIgnoringASCIICase(header.name) }) {
                reply.message.headers.remove(header.name)
            }
            reply.message.headers.add(header.name, header.value)
        }
        reply.message.headers["http.status"] = String(status.code)
        reply.message.body = body
        return reply
    }

    /// The fields sent for `message` besides the fixed ones (`Host`, the URL's credentials)
    /// and the framing: its headers that cross the wire, then `X-Correlation-ID` and a
    /// `traceparent` with the message's trace and a span of this call's own, each replacing
    /// any the message had.
    private func forEachField<E: Error>(of message: Message, _ add: (String, String) throws(E) -> Void) throws(E) {
        for header in message.headers where HTTPHeaderRules.forwardsOnRequest(header.name) {
            if hasCredentials, header.name.equalsIgnoringASCIICase("Authorization") { continue }
            if header.name.equalsIgnoringASCIICase(Message.correlationHeader) || header.name.equalsIgnoringASCIICase(TraceContext.header) { continue }
            try add(header.name, header.value)
        }
        try add(Message.correlationHeader, message.correlationID)
        try add(TraceContext.header, (message.trace ?? .random()).child().traceparent)
    }

    func describeReply(_ reply: Exchange) -> String? {
        reply.message.headers["http.status"].map { "HTTP \($0)" }
    }

    /// Turns client errors into one clear sentence naming the URL.
    private func describe(_ error: any Error) -> ProcessingError {
        switch error {
        case let error as NIOSSLError:
            if case .handshakeFailed(let reason) = error {
                return ProcessingError("TLS handshake with \(display) failed: \(reason)", status: 502)
            }
            return ProcessingError("TLS with \(display) failed: \(error)", status: 502, kind: ErrorKind.connection)
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return ProcessingError("TLS handshake with \(display) failed: the server's certificate is not for \(pool.key.host)", status: 502)
        case let error as NIOSSLExtraError:
            return ProcessingError("TLS handshake with \(display) failed: \(error)", status: 502)
        case let error as HTTP1Client.Failure:
            switch error {
            case .timeout:
                return ProcessingError("no reply from \(display) within \(timeout.prettyDescription)", status: 504, kind: ErrorKind.timeout)
            case .closed(let beforeAnyReply):
                let when = beforeAnyReply ? "before answering" : "before its reply was complete"
                return ProcessingError("\(display) closed the connection \(when)", status: 502, kind: ErrorKind.connection)
            case .tooLarge:
                return ProcessingError("reply from \(display) is larger than maxResponseSize (\(maxResponseSize) bytes)", status: 502)
            case .shutDown:
                return ProcessingError("request to \(display) not sent: the node is shutting down", status: 503, kind: ErrorKind.connection)
            case .invalidField(let name):
                return ProcessingError(
                    "request to \(display) not sent: header '\(name)' cannot go on the wire (a name must be an HTTP token, a value must not hold CR, LF or NUL)"
                )
            case .invalidMethod(let method):
                return ProcessingError(
                    "request to \(display) not sent: the method \(jsonQuoted(method)) (from http.method) is not an HTTP token"
                )
            }
        case ChannelError.connectTimeout:
            return ProcessingError("cannot connect to \(display): connect timed out", status: 504, kind: ErrorKind.timeout)
        case let error as NIOConnectionError:
            if error.connectionErrors.contains(where: { if case ChannelError.connectTimeout = $0.error { true } else { false } }) {
                return ProcessingError("cannot connect to \(display): connect timed out", status: 504, kind: ErrorKind.timeout)
            }
            let reasons = error.connectionErrors.map { failure -> String in
                if let io = failure.error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
                return "\(failure.error)"
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil, reasons.isEmpty {
                return ProcessingError("cannot connect to \(display): cannot resolve host '\(error.host)'", status: 502, kind: ErrorKind.connection)
            }
            let reason = Set(reasons).sorted().joined(separator: "; ")
            return ProcessingError("cannot connect to \(display): \(reason.isEmpty ? "no address" : reason)", status: 502, kind: ErrorKind.connection)
        case let error as IOError:
            return ProcessingError("cannot connect to \(display): \(String(cString: strerror(error.errnoCode)).lowercased())", status: 502, kind: ErrorKind.connection)
        case is NIOTooManyBytesError:
            return ProcessingError("reply from \(display) is larger than maxResponseSize (\(maxResponseSize) bytes)", status: 502)
        default:
            return ProcessingError("request to \(display) failed: \(error)", status: 502)
        }
    }
}

extension TimeAmount {
    var prettyDescription: String {
        formatDuration(.nanoseconds(nanoseconds))
    }
}
