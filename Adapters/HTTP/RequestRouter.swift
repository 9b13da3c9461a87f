// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1
import Logging
import SwitchboardCore

/// An HTTP reply before it is written: status, headers and body.
struct HTTPReply: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: ByteBuffer

    /// A JSON error body: `{"error": "...", "status": 404, ...}`.
    static func error(status: Int, _ text: String, extra: [(String, String)] = []) -> HTTPReply {
        var json = "{\"error\":\(jsonQuoted(text)),\"status\":\(status)"
        for (key, value) in extra {
            json += ",\(jsonQuoted(key)):\(jsonQuoted(value))"
        }
        json += "}"
        return HTTPReply.json(status: status, json)
    }

    static func json(status: Int, _ json: String) -> HTTPReply {
        HTTPReply(status: status, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: json))
    }

    /// Adds `X-Message-ID` and `X-Correlation-ID` (consuming: the header list is grown in place, not copied).
    consuming func identified(exchangeID: MessageID, correlationID: String) -> HTTPReply {
        var reply = self
        reply.headers.append(("X-Message-ID", exchangeID.description))
        // Not written if it is not a valid field value (HTTPWire).
        reply.headers.append(("X-Correlation-ID", correlationID))
        return reply
    }
}

/// A request as the connection handler collected it.
struct CollectedRequest: Sendable {
    var head: HTTPRequestHead
    var path: Substring
    var query: Substring?
    var segments: [Substring]
    var binding: HTTPListener.Binding
    var deliver: HTTPListener.DeliveryBox
    var body: ByteBuffer
}

/// Finds the binding for a request and turns requests into exchanges and results into replies.
struct RequestRouter: Sendable {
    let table: HTTPListener.Table
    let logger: Logger

    /// What to do with a request once its head arrived.
    enum Decision {
        /// Collect the body (up to the binding's limit) and route it.
        case route(HTTPListener.Binding, HTTPListener.DeliveryBox, path: Substring, query: Substring?, segments: [Substring])
        /// Answer this without routing (404, 405, 503).
        case reply(HTTPReply)
    }

    func decide(_ head: HTTPRequestHead) -> Decision {
        let target = head.uri
        let path: Substring
        let query: Substring?
        if let question = target.firstIndex(of: "?") {
            path = target[..<question]
            query = target[target.index(after: question)...]
        } else {
            path = Substring(target)
            query = nil
        }
        let (bindings, segments) = table.lookup(path)
        let method = head.method.rawValue
        guard !bindings.isEmpty else {
            return .reply(.error(status: 404, "no route listens on \(method) \(path)"))
        }
        guard let binding = bindings.first(where: { $0.method == method }) ?? bindings.first(where: { $0.method == nil }) else {
            let allowed = bindings.compactMap(\.method).joined(separator: ", ")
            var reply = HTTPReply.error(status: 405, "method \(method) is not allowed on \(path); allowed: \(allowed)")
            reply.headers.append(("Allow", allowed))
            return .reply(reply)
        }
        guard let deliver = binding.deliver ?? (binding.starting ? binding.deliverOnceStarted() : nil) else {
            return .reply(.error(status: 503, "the route for \(method) \(path) is not running"))
        }
        return .route(binding, deliver, path: path, query: query, segments: segments)
    }

    /// Why a head cannot be served whatever its route (RFC 9112 sections 3.2 and 6.1), or nil:
    /// an HTTP/1.1 request needs one `Host`, no request two, and an HTTP/1.0 request with
    /// `Transfer-Encoding` has framing that cannot be trusted.
    static func framingProblem(_ head: HTTPRequestHead) -> String? {
        var hosts = 0
        var transferEncoding = false
        for (name, _) in head.headers {
            switch name.utf8.count {
            case 4 where name.equalsIgnoringASCIICase("host"): hosts += 1
            case 17 where name.equalsIgnoringASCIICase("transfer-encoding"): transferEncoding = true
            default: break
            }
        }
        if hosts > 1 {
            return "the request has \(hosts) Host headers; it must have one"
        }
        if hosts == 0, head.version.major == 1, head.version.minor >= 1 {
            return "the request has no Host header, which HTTP/1.1 requires"
        }
        if transferEncoding, head.version.major == 1, head.version.minor == 0 {
            return "an HTTP/1.0 request cannot carry Transfer-Encoding (RFC 9112 section 6.1): its body's framing cannot be trusted"
        }
        return nil
    }

    /// The 413 reply for a body over the binding's limit.
    static func tooLarge(_ binding: HTTPListener.Binding, path: Substring) -> HTTPReply {
        .error(status: 413, "request body is larger than the limit of \(binding.maxBodySize) bytes for \(path)")
    }

    /// Runs the route for a whole request and returns the reply.
    func respond(to request: CollectedRequest) async -> HTTPReply {
        let head = request.head
        var headers = Headers()
        headers.reserveCapacity(head.headers.count + 3)
        for (name, value) in head.headers where HTTPHeaderRules.keepsIncoming(name) {
            headers.add(name, value)
        }
        headers["http.method"] = head.method.rawValue
        headers["http.path"] = String(request.path)
        if let query = request.query, !query.isEmpty {
            headers["http.query"] = String(query)
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecoded(parts[0].replacingPlus()), !name.isEmpty else { continue }
                let value = parts.count > 1 ? percentDecoded(parts[1].replacingPlus()) ?? "" : ""
                headers.add("http.query.\(name)", value)
            }
        }
        let binding = request.binding
        if !binding.path.isStatic, let captures = binding.path.match(request.segments) {
            for (name, value) in captures {
                headers[name] = value
            }
        }
        // W3C trace context: continue the caller's trace, or start one.
        let trace = headers[TraceContext.header].flatMap(TraceContext.init(traceparent:)) ?? .random()
        let message = Message(headers: headers, body: request.body, trace: trace)
        let exchange = Exchange(message: message, pattern: binding.async ? .inOnly : .inOut)
        do {
            let result = try await request.deliver.deliver(exchange)
            if binding.async {
                return HTTPReply.json(status: 202, "{\"id\":\(jsonQuoted(exchange.id.description)),\"status\":\"accepted\"}")
                    .identified(exchangeID: exchange.id, correlationID: message.correlationID)
            }
            return RequestRouter.reply(for: result.message, exchangeID: exchange.id, request: headers)
        } catch let failure as StepFailure {
            return HTTPReply.error(
                status: failure.status,
                failure.description,
                extra: [
                    ("route", failure.step.routeID),
                    ("step", failure.step.path),
                    ("kind", failure.step.kind),
                    ("messageId", exchange.id.description),
                ] + (failure.deadLetter.map { [("deadLetter", $0.description)] } ?? [])
            ).identified(exchangeID: exchange.id, correlationID: message.correlationID)
        } catch {
            // A ProcessingError outside any step (the audit store could not keep up) says its status.
            let status = (error as? ProcessingError)?.status ?? 500
            return HTTPReply.error(status: status, "\(error)", extra: [("messageId", exchange.id.description)])
                .identified(exchangeID: exchange.id, correlationID: message.correlationID)
        }
    }

    /// The final message of a route as an HTTP reply: status from `http.status` (200–599,
    /// else 200).
    ///
    /// Headers still holding the value the request brought (request headers, path captures)
    /// are not echoed back, except those describing the body (`Content-Type`); headers the
    /// route set or a backend replied with are sent. Names that are not HTTP tokens and
    /// values holding CR, LF or NUL are not written (the connection handler checks every
    /// field as it writes it).
    static func reply(for message: Message, exchangeID: MessageID, request: Headers) -> HTTPReply {
        // A 1xx status is interim, not an answer: the client would wait for the final reply.
        var status = 200
        if let text = message.headers["http.status"], let code = Int(text), (200...599).contains(code) {
            status = code
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(message.headers.count + 2)
        let echoed = EchoedFields(request)
        for header in message.headers where HTTPHeaderRules.forwardsOnResponse(header.name) {
            if echoed.contains(header), !HTTPHeaderRules.describesBody.contains(header.name) {
                continue
            }
            fields.append((header.name, header.value))
        }
        return HTTPReply(status: status, headers: fields, body: message.body)
            .identified(exchangeID: exchangeID, correlationID: message.correlationID)
    }
}

extension Substring {
    /// Form-encoded query strings write spaces as `+`.
    func replacingPlus() -> String {
        contains("+") ? String(map { $0 == "+" ? " " : $0 }) : String(self)
    }
}

/// The request's fields, for telling which of a reply's headers only echo them: a few are
/// scanned, many are hashed, so a reply's headers cost time linear in their number.
private struct EchoedFields {
    private let request: Headers
    private let hashed: Set<Headers.Field>?

    /// Up to this many request fields are scanned for each reply header.
    private static let scanLimit = 16

    init(_ request: Headers) {
        self.request = request
        self.hashed = request.count > Self.scanLimit ? Set(request.fields) : nil
    }

    func contains(_ field: Headers.Field) -> Bool {
        if let hashed { return hashed.contains(field) }
        return request.fields.contains(field)
    }
}
