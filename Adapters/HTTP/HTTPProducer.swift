import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchboardCore

/// `to: http://host:port/path`: sends the message as an HTTP request over pooled keep-alive
/// connections and continues with the response.
///
/// Method: the endpoint's `method` option, else the message's `http.method` header (so a
/// proxied request keeps its method), else POST with a body and GET without. Headers: all
/// but Switchboard's own (`http.status`…) and hop-by-hop ones, plus `X-Correlation-ID`
/// carrying the message's correlation id and a W3C `traceparent` with the message's trace
/// id and a new span id. The reply keeps the request's
/// headers, takes the response's, and sets `http.status`.
struct HTTPProducer: Producer {
    let url: String
    let display: String
    let method: HTTPMethod?
    let timeout: TimeAmount
    let failOnServerError: Bool
    let maxResponseSize: Int
    let authorization: String?
    let client: HTTPClient

    func send(_ exchange: Exchange) async throws -> Exchange {
        var request = HTTPClientRequest(url: url)
        let message = exchange.message
        if let method {
            request.method = method
        } else if let name = message.headers["http.method"] {
            request.method = HTTPMethod(rawValue: name)
        } else {
            request.method = message.body.readableBytes > 0 ? .POST : .GET
        }
        for header in message.headers where HTTPHeaderRules.forwardsOnRequest(header.name) {
            request.headers.add(name: header.name, value: header.value)
        }
        if let authorization {
            request.headers.replaceOrAdd(name: "Authorization", value: authorization)
        }
        request.headers.replaceOrAdd(name: Message.correlationHeader, value: message.correlationID)
        // The same trace, with a span id of this call's own.
        request.headers.replaceOrAdd(name: TraceContext.header, value: (message.trace ?? .random()).child().traceparent)
        if message.body.readableBytes > 0 || request.method == .POST || request.method == .PUT || request.method == .PATCH {
            request.body = .bytes(message.body)
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: maxResponseSize)
        } catch {
            throw describe(error)
        }
        let status = Int(response.status.code)
        if failOnServerError, status >= 500 {
            throw ProcessingError("\(display) answered HTTP \(status) \(response.status.reasonPhrase)", status: 502, kind: ErrorKind.serverError)
        }
        var reply = exchange
        reply.message.headers.remove("Content-Type")
        // A reply header replaces any request header of that name; repeated reply headers
        // (Set-Cookie) are all kept.
        var seen: [String] = []
        for header in response.headers where HTTPHeaderRules.keepsIncoming(header.name) {
            if !HTTPHeaderRules.name(header.name, isIn: seen) {
                seen.append(header.name)
                reply.message.headers.remove(header.name)
            }
            reply.message.headers.add(header.name, header.value)
        }
        reply.message.headers["http.status"] = String(status)
        reply.message.body = body
        return reply
    }

    func describeReply(_ reply: Exchange) -> String? {
        reply.message.headers["http.status"].map { "HTTP \($0)" }
    }

    /// Turns client errors into one clear sentence naming the URL.
    private func describe(_ error: any Error) -> ProcessingError {
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout:
                return ProcessingError("cannot connect to \(display): connect timed out", status: 504, kind: ErrorKind.timeout)
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return ProcessingError("no reply from \(display) within \(timeout.prettyDescription)", status: 504, kind: ErrorKind.timeout)
            case .remoteConnectionClosed:
                return ProcessingError("\(display) closed the connection before answering", status: 502, kind: ErrorKind.connection)
            default:
                return ProcessingError("request to \(display) failed: \(error)", status: 502)
            }
        case let error as NIOConnectionError:
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
