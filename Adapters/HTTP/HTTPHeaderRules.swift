// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// Which message headers cross the wire, in each direction.
///
/// Checked for every header of every request and reply: each list is a ``HeaderNameTable``,
/// which rejects most names by their length alone and compares the rest byte by byte.
enum HTTPHeaderRules {
    /// Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are never forwarded.
    static let hopByHop = HeaderNameTable([
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade",
    ])

    /// Headers that describe a request and make no sense in a response.
    static let requestOnly = HeaderNameTable([
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "accept-charset",
        "authorization", "cookie", "expect", "origin", "referer", "if-match", "if-none-match",
        "if-modified-since", "if-unmodified-since", "if-range", "range", "max-forwards",
        "content-length", "traceparent", "tracestate",
    ])

    /// Headers the client library sets itself on an outbound request.
    static let setByClient = HeaderNameTable(["host", "content-length"])

    /// Headers the listener writes itself on every response.
    static let setByListener = HeaderNameTable(["x-message-id", "x-correlation-id", "date", "server"])

    /// Headers a response carries even when the request had the same value: they describe
    /// the response body.
    static let describesBody = HeaderNameTable(["content-type", "content-encoding", "content-language"])

    /// Whether a message header is Switchboard's own (`http.status`, `split.index`): those
    /// have a dot in the name and are never sent.
    @inline(__always)
    static func isInternal(_ name: String) -> Bool {
        name.utf8.contains(UInt8(ascii: "."))
    }

    /// Whether a header may be sent on an outbound request.
    static func forwardsOnRequest(_ name: String) -> Bool {
        !isInternal(name) && !hopByHop.contains(name) && !setByClient.contains(name)
    }

    /// Whether a header may be written on a response to a client.
    static func forwardsOnResponse(_ name: String) -> Bool {
        !isInternal(name) && !hopByHop.contains(name) && !requestOnly.contains(name)
            && !setByListener.contains(name)
    }

    /// Whether an incoming header (request or reply) is kept on the message.
    static func keepsIncoming(_ name: String) -> Bool {
        !hopByHop.contains(name) && !"content-length".equalsIgnoringASCIICase(name)
    }
}
