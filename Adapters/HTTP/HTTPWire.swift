// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1

/// HTTP/1.1 messages as bytes: the listener's replies and the client's requests are written
/// here, each head into one buffer (with a small body after it), rather than as head, body
/// and end parts through NIO's encoder and header validator. Each part crossed every
/// handler of the channel's pipeline on its own; per proxied request that was six pipeline
/// crossings and a header list built only to be encoded.
///
/// Field names must be tokens and values free of CR, LF and NUL (RFC 9110), or a value could
/// end its field early and inject others: ``isValidField(name:value:)`` is the one check.
enum HTTPWire {
    /// Bodies up to this size are copied after the head, so head and body leave in one
    /// buffer; larger ones are written as a buffer of their own (one `writev` either way).
    static let inlineBodyLimit = 16 * 1024

    /// Whether `name: value` can be written as a field.
    static func isValidField(name: String, value: String) -> Bool {
        isToken(name) && isValidValue(value)
    }

    /// Whether `name` is an RFC 9110 token: letters, digits and ``!#$%&'*+-.^_`|~``, at least one.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            // One bit per byte value below 128 (a check per byte, run for every field written).
            byte < 64 ? tokenLow & (1 << UInt64(byte)) != 0 : byte < 128 && tokenHigh & (1 << UInt64(byte - 64)) != 0
        }
    }

    /// Token bytes 0-63: `!#$%&'*+-.` and digits.
    private static let tokenLow: UInt64 = mask("!#$%&'*+-.0123456789", offset: 0)
    /// Token bytes 64-127: letters and `^_`|~`.
    private static let tokenHigh: UInt64 = mask("ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~", offset: 64)

    private static func mask(_ bytes: String, offset: UInt8) -> UInt64 {
        bytes.utf8.reduce(0) { $0 | 1 << UInt64($1 - offset) }
    }

    /// Whether `target` can follow the method in a request line: no spaces or control bytes.
    static func isValidTarget(_ target: String) -> Bool {
        !target.isEmpty && !target.utf8.contains { $0 <= 0x20 || $0 == 0x7F }
    }

    /// Whether `value` holds no CR, LF or NUL.
    static func isValidValue(_ value: String) -> Bool {
        for byte in value.utf8 where byte < 0x20 {
            if byte == 0x0D || byte == 0x0A || byte == 0x00 { return false }
        }
        return true
    }

    /// The bytes a head of `fields` needs, roughly: enough that writing it seldom grows the buffer.
    static func estimate<Fields: Sequence>(_ fields: Fields) -> Int where Fields.Element == (String, String) {
        fields.reduce(128) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
    }
}

/// An outbound request written as bytes as it is built: request line, then each field
/// (checked as it is added), then framing and the body.
struct HTTPRequestBytes: Sendable {
    let method: HTTPMethod
    /// The request line and fields, then (after ``finish(body:)``) the blank line and a
    /// body of up to ``HTTPWire/inlineBodyLimit``.
    private(set) var head: ByteBuffer
    /// A body too large to copy after the head: written as a buffer of its own.
    private(set) var separateBody: ByteBuffer?

    /// Starts the request with its request line. `target` is the producer's, checked when
    /// its route loaded (``HTTPWire/isValidTarget(_:)``).
    ///
    /// - Throws: ``HTTP1Client/Failure/invalidMethod(_:)`` for a method that is not a token
    ///   (it can come from a message's `http.method`, and would rewrite the request line).
    init(method: HTTPMethod, target: String, capacity: Int = 512) throws(HTTP1Client.Failure) {
        guard HTTPWire.isToken(method.rawValue) else { throw .invalidMethod(method.rawValue) }
        self.method = method
        head = ByteBuffer()
        head.reserveCapacity(capacity + target.utf8.count)
        head.writeHTTPRequestLine(method: method, target: target, version: .http1_1)
    }

    /// Adds `name: value`.
    ///
    /// - Throws: ``HTTP1Client/Failure/invalidField(_:)`` for a name that is not a token or a
    ///   value holding CR, LF or NUL: nothing of it is written.
    mutating func add(_ name: String, _ value: String) throws(HTTP1Client.Failure) {
        guard HTTPWire.isValidField(name: name, value: value) else { throw .invalidField(name) }
        head.writeHTTPField(name, value)
    }

    /// Adds fields written and checked once, when the producer's route loaded (``fields(_:)``).
    mutating func add(checked fields: ByteBuffer) {
        var fields = fields
        head.writeBuffer(&fields)
    }

    /// `pairs` written as fields, checked: what a producer sends with every request (`Host`,
    /// the URL's credentials), made once at route load.
    static func fields(_ pairs: [(String, String)]) throws(HTTP1Client.Failure) -> ByteBuffer {
        var bytes = ByteBuffer()
        for (name, value) in pairs {
            guard HTTPWire.isValidField(name: name, value: value) else { throw .invalidField(name) }
            bytes.writeHTTPField(name, value)
        }
        return bytes
    }

    /// Ends the head; with a body, says its `Content-Length` and appends it.
    mutating func finish(body: ByteBuffer?) {
        if let body {
            head.writeHTTPContentLength(body.readableBytes)
        }
        head.writeStaticString("\r\n")
        guard var body, body.readableBytes > 0 else { return }
        if body.readableBytes <= HTTPWire.inlineBodyLimit {
            head.writeBuffer(&body)
        } else {
            separateBody = body
        }
    }
}

extension ByteBuffer {
    /// `HTTP/1.1 200 OK` and CRLF.
    mutating func writeHTTPStatusLine(version: HTTPVersion, status: HTTPResponseStatus) {
        writeHTTPVersion(version)
        writeInteger(UInt8(ascii: " "))
        writeDecimal(Int(status.code))
        writeInteger(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
    }

    /// `POST /path HTTP/1.1` and CRLF.
    mutating func writeHTTPRequestLine(method: HTTPMethod, target: String, version: HTTPVersion) {
        writeString(method.rawValue)
        writeInteger(UInt8(ascii: " "))
        writeString(target)
        writeInteger(UInt8(ascii: " "))
        writeHTTPVersion(version)
        writeStaticString("\r\n")
    }

    /// `Name: value` and CRLF; the caller has checked the field (``HTTPWire/isValidField(name:value:)``).
    mutating func writeHTTPField(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// `Content-Length: n` and CRLF.
    mutating func writeHTTPContentLength(_ length: Int) {
        writeStaticString("Content-Length: ")
        writeDecimal(length)
        writeStaticString("\r\n")
    }

    private mutating func writeHTTPVersion(_ version: HTTPVersion) {
        writeStaticString("HTTP/")
        writeDecimal(Int(version.major))
        writeInteger(UInt8(ascii: "."))
        writeDecimal(Int(version.minor))
    }

    /// A non-negative integer in decimal, without building a string.
    mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0, "negative value in an HTTP head")
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // up to 24 digits, more than an Int has
        let count = withUnsafeMutableBytes(of: &digits) { scratch -> Int in
            var rest = value
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            return scratch.count - index
        }
        withUnsafeBytes(of: &digits) { scratch in
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: scratch[(scratch.count - count)...]))
        }
    }
}
