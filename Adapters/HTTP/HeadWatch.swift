// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// Watches the raw bytes in front of NIO's HTTP decoder for two things the decoder cannot
/// tell: when a request head began (so `http.header-timeout` counts from its first byte, not
/// from the last one, which a client trickling bytes keeps moving), and a request line with
/// no HTTP version (HTTP/0.9), after which the decoder would wait for more bytes with the
/// connection open.
///
/// The connection handler says when a head is due (``awaitHead()``, after each request's end)
/// and when one arrived (``headArrived()``). Bytes that reach the watch in the same read as
/// the previous request's end are not seen as a start (the decoder holds them): such a head
/// is timed from the next read, or bounded by the idle timeout counted from the previous
/// reply. For the same reason only a connection's first line is checked for a version: the
/// first read starts with it, a later one may start anywhere in a pipelined request, and an
/// HTTP/0.9 client sends one request on a new connection.
final class HeadWatch: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// When the head now due began: its first byte, or the connect for a connection's first
    /// request. Nil while no head is due or none has begun.
    private(set) var headStartedAt: NIODeadline?
    /// Whether any byte of the head now due arrived (a connection that sent nothing is closed
    /// without a reply when its time is up).
    private(set) var sawHeadBytes = false
    private var awaiting = true
    /// The connection's first request line is being read: checked for a version at its end.
    private var readingLine = true
    /// The last bytes of that line so far (enough to hold ` HTTP/1.1`).
    private var lineTail: [UInt8] = []
    /// A version-less line was found: nothing more is passed on.
    private var refused = false

    /// The line ends ` HTTP/d.d`: 9 bytes.
    private static let versionLength = 9

    func handlerAdded(context: ChannelHandlerContext) {
        headStartedAt = .now()
    }

    /// The previous request ended: the next bytes begin a head.
    func awaitHead() {
        awaiting = true
        headStartedAt = nil
        sawHeadBytes = false
    }

    /// The decoder produced the head now due.
    func headArrived() {
        awaiting = false
        readingLine = false
        headStartedAt = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if awaiting {
            let buffer = unwrapInboundIn(data)
            if !sawHeadBytes, buffer.readableBytes > 0 {
                sawHeadBytes = true
                if headStartedAt == nil { headStartedAt = .now() }
            }
            if readingLine, !checkRequestLine(buffer) {
                refused = true
                context.fireErrorCaught(HTTPVersionMissing())
                return
            }
        }
        context.fireChannelRead(data)
    }

    /// Follows the request line through `buffer`; false once it ended without an HTTP version.
    private func checkRequestLine(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            // Empty lines before a request line are allowed (RFC 9112 section 2.2).
            if lineTail.isEmpty {
                while index < bytes.count, bytes[index] == UInt8(ascii: "\r") || bytes[index] == UInt8(ascii: "\n") { index += 1 }
            }
            guard index < bytes.count else { return true }
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else {
                lineTail.append(contentsOf: bytes[max(index, bytes.count - Self.versionLength)...])
                if lineTail.count > Self.versionLength { lineTail.removeFirst(lineTail.count - Self.versionLength) }
                return true
            }
            readingLine = false
            var line = lineTail + bytes[max(index, end - Self.versionLength - 1)..<end]
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            return Self.endsWithVersion(line)
        }
    }

    /// Whether `line` ends ` HTTP/d.d`.
    static func endsWithVersion(_ line: [UInt8]) -> Bool {
        guard line.count >= versionLength else { return false }
        let tail = line.suffix(versionLength)
        let start = tail.startIndex
        return tail.prefix(6).elementsEqual(" HTTP/".utf8)
            && isDigit(tail[start + 6]) && tail[start + 7] == UInt8(ascii: ".") && isDigit(tail[start + 8])
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}

/// A request line without an HTTP version (an HTTP/0.9 request), which is not served.
struct HTTPVersionMissing: Error, CustomStringConvertible {
    var description: String { "the request line has no HTTP version (HTTP/0.9 is not served)" }
}
