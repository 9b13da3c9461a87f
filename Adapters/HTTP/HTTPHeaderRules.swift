import SwitchboardCore

/// Which message headers cross the wire, in each direction.
enum HTTPHeaderRules {
    /// Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Headers that describe a request and make no sense in a response.
    static let requestOnly: Set<String> = [
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "accept-charset",
        "authorization", "cookie", "expect", "origin", "referer", "if-match", "if-none-match",
        "if-modified-since", "if-unmodified-since", "if-range", "range", "max-forwards",
        "content-length", "traceparent", "tracestate",
    ]

    /// Headers the client library sets itself on an outbound request.
    static let setByClient: Set<String> = ["host", "content-length"]

    /// Whether a message header is Switchboard's own (`http.status`, `split.index`): those
    /// have a dot in the name and are never sent.
    @inline(__always)
    static func isInternal(_ name: String) -> Bool {
        name.utf8.contains(UInt8(ascii: "."))
    }

    /// Whether a header may be sent on an outbound request.
    @inline(__always)
    static func forwardsOnRequest(_ name: String) -> Bool {
        if isInternal(name) { return false }
        let lower = name.lowercased()
        return !hopByHop.contains(lower) && !setByClient.contains(lower)
    }

    /// Whether a header may be written on a response to a client.
    @inline(__always)
    static func forwardsOnResponse(_ name: String) -> Bool {
        if isInternal(name) { return false }
        let lower = name.lowercased()
        return !hopByHop.contains(lower) && !requestOnly.contains(lower)
            && lower != "x-message-id" && lower != "x-correlation-id" && lower != "date" && lower != "server"
    }

    /// Headers a response carries even when the request had the same value: they describe
    /// the response body.
    static let describesBody: Set<String> = ["content-type", "content-encoding", "content-language"]

    /// Whether an incoming header (request or reply) is kept on the message.
    @inline(__always)
    static func keepsIncoming(_ name: String) -> Bool {
        let lower = name.lowercased()
        return !hopByHop.contains(lower) && lower != "content-length"
    }
}
