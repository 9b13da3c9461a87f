// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// One message flowing through a route: identity, headers, body and properties.
///
/// A value type: steps take a message and return a changed copy. The body is a `ByteBuffer`,
/// shared copy-on-write, so passing messages around does not copy their bytes.
public struct Message: Sendable {
    /// Time-ordered identifier of this message; `switchboard trace` takes it.
    public var id: MessageID
    /// Ties together messages that belong to one business conversation. Taken from an
    /// inbound `X-Correlation-ID` header, else the message's own id.
    public var correlationID: String
    /// For a split child, the id of the message it was split from.
    public var parentID: MessageID?
    /// Headers, case-insensitive. Names with a dot (`http.status`, `split.index`) are
    /// Switchboard's own and are never sent on the wire by protocol adapters.
    public var headers: Headers
    /// The body bytes.
    public var body: ByteBuffer
    /// Values that travel with the message inside the node but are never sent anywhere.
    public var properties: [String: String]
    /// The W3C trace the message belongs to; the engine gives one to every exchange that
    /// arrives without it.
    public var trace: TraceContext?

    public init(
        id: MessageID = MessageID(),
        correlationID: String? = nil,
        parentID: MessageID? = nil,
        headers: Headers = Headers(),
        body: ByteBuffer = ByteBuffer(),
        properties: [String: String] = [:],
        trace: TraceContext? = nil
    ) {
        self.id = id
        self.correlationID = correlationID ?? headers[Message.correlationHeader] ?? id.description
        self.parentID = parentID
        self.headers = headers
        self.body = body
        self.properties = properties
        self.trace = trace
    }

    /// The header that carries the correlation id in and out of the node.
    public static let correlationHeader = "X-Correlation-ID"

    /// The property naming a file that holds the body when a consumer left the body empty
    /// to stream it (`file:…?streamBody=true`); a fixed-width split reads it from there.
    public static let bodyFileProperty = "body.file"

    /// The property a consumer sets to when what it took in arrived (microseconds since the
    /// Unix epoch: a file's modification time), for an SLA's `max-age`; without it the
    /// exchange's start counts.
    public static let arrivedAtProperty = "arrived-at"

    /// The media type of the body, kept in the `Content-Type` header.
    public var contentType: String? {
        get { headers["Content-Type"] }
        set { headers["Content-Type"] = newValue }
    }

    /// The body decoded as UTF-8 (invalid sequences are repaired).
    public var bodyString: String {
        body.getString(at: body.readerIndex, length: body.readableBytes) ?? String(decoding: body.readableBytesView, as: UTF8.self)
    }

    /// A child of this message (for a splitter or multicast): new id, same correlation id,
    /// this message as parent, copies of headers and properties.
    public func makeChild(body: ByteBuffer) -> Message {
        Message(
            id: MessageID(),
            correlationID: correlationID,
            parentID: id,
            headers: headers,
            body: body,
            properties: properties,
            trace: trace
        )
    }
}

/// Whether the source of an exchange waits for a reply.
public enum ExchangePattern: String, Sendable {
    /// Fire and forget: a file drop, a wire tap. The source is acknowledged when the route ends.
    case inOnly
    /// Request and reply: the route's final message is the reply.
    case inOut
}

/// A message plus its exchange pattern: what a consumer hands to the engine.
public struct Exchange: Sendable {
    public var message: Message
    public var pattern: ExchangePattern

    public init(message: Message, pattern: ExchangePattern) {
        self.message = message
        self.pattern = pattern
    }

    /// The exchange id, which is the id of the message the consumer made.
    public var id: MessageID { message.id }
}
