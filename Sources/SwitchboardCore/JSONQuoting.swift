// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// `text` as a JSON string literal, quotes included.
public func jsonQuoted(_ text: String) -> String {
    var output = ""
    appendJSONQuoted(text, to: &output)
    return output
}

/// Appends `text` as a JSON string literal to `output`; text that needs no escaping (the
/// usual header name or value) is copied as it is.
public func appendJSONQuoted(_ text: String, to output: inout String) {
    // Scanned as contiguous UTF-8 (the string's own storage): this runs for every header
    // and field the audit trail stores.
    let plain = text.utf8.withContiguousStorageIfAvailable { firstJSONSpecialByte($0) == $0.count } ?? {
        var copy = text
        return copy.withUTF8 { firstJSONSpecialByte($0) == $0.count }
    }()
    if plain {
        output += "\""
        output += text
        output += "\""
        return
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count + 16)
    appendJSONQuoted(text, to: &bytes)
    output += String(decoding: bytes, as: UTF8.self)
}

/// Appends `text` as it is (fixed JSON pieces): a static string's bytes are copied at once,
/// where a `String`'s UTF-8 view goes through the generic, slower append.
@inlinable
public func appendStatic<Sink: ByteSink & ~Copyable>(_ text: StaticString, to output: inout Sink) {
    text.withUTF8Buffer { output.appendBytes($0) }
}

/// Appends `text` as a JSON string literal to the UTF-8 bytes in `output`.
@inlinable
public func appendJSONQuoted<Sink: ByteSink & ~Copyable>(_ text: String, to output: inout Sink) {
    // Read in place (native strings are contiguous); only a bridged string is copied.
    let done: Void? = text.utf8.withContiguousStorageIfAvailable { appendJSONQuoted(utf8: $0, to: &output) }
    if done == nil {
        var text = text
        text.withUTF8 { appendJSONQuoted(utf8: $0, to: &output) }
    }
}

/// Appends valid UTF-8 `bytes` as a JSON string literal to `output`: the runs between the
/// bytes that need escaping (most of any text, usually all of it) are copied whole, and
/// multi-byte sequences pass through.
@inlinable
public func appendJSONQuoted<Sink: ByteSink & ~Copyable>(utf8 bytes: UnsafeBufferPointer<UInt8>, to output: inout Sink) {
    output.append(UInt8(ascii: "\""))
    var start = 0
    while true {
        let special = start + firstJSONSpecialByte(UnsafeBufferPointer(rebasing: bytes[start...]))
        if start < special {
            output.appendBytes(UnsafeBufferPointer(rebasing: bytes[start..<special]))
        }
        guard special < bytes.count else { break }
        let byte = bytes[special]
        switch byte {
        case UInt8(ascii: "\""): output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "\n"): output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "t"))
        case 0x08: output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "b"))
        case 0x0C: output.append(UInt8(ascii: "\\")); output.append(UInt8(ascii: "f"))
        default:
            // The other control characters.
            appendStatic("\\u00", to: &output)
            output.append(lowercaseHexDigit(byte >> 4))
            output.append(lowercaseHexDigit(byte & 0xF))
        }
        start = special + 1
    }
    output.append(UInt8(ascii: "\""))
}

/// The offset of the first byte of `bytes` that a JSON string cannot hold as it is (a control
/// character, `"` or `\`), or with `orNonASCII` also the first byte of a multi-byte sequence;
/// `bytes.count` when there is none.
///
/// Reads eight bytes at a time: the audit trail scans every header and body prefix it stores,
/// and a loop over single bytes took about a nanosecond for each.
public func firstJSONSpecialByte(_ bytes: UnsafeBufferPointer<UInt8>, orNonASCII: Bool = false) -> Int {
    guard let base = bytes.baseAddress else { return 0 }
    let count = bytes.count
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highBits: UInt64 = 0x8080_8080_8080_8080
    var offset = 0
    // A word's high-bit lanes flag a byte below 0x20 (`word - 0x20…` borrows into a byte whose
    // own high bit is clear) or equal to `"` or `\` (the XOR leaves a zero byte, which
    // `- 0x01…` turns into 0xFF): exact for whether any byte matches, which the byte loop
    // below then finds.
    while offset + 8 <= count {
        let word = UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self)
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        var flags = (word &- ones &* 0x20) & ~word
        flags |= (quote &- ones) & ~quote
        flags |= (backslash &- ones) & ~backslash
        if orNonASCII { flags |= word }
        if flags & highBits != 0 { break }
        offset += 8
    }
    while offset < count {
        let byte = base[offset]
        if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (orNonASCII && byte >= 0x80) {
            return offset
        }
        offset += 1
    }
    return count
}

/// Appends `value` in decimal, without making a string.
@inlinable
public func appendDecimal<Sink: ByteSink & ~Copyable>(_ value: Int64, to output: inout Sink) {
    if value < 0 { output.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var count = 0
    withUnsafeMutableBytes(of: &digits) { buffer in
        repeat {
            buffer[31 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            count += 1
        } while magnitude > 0
        // Rebased, so the append copies the bytes at once instead of through a slice.
        output.appendBytes(UnsafeRawBufferPointer(rebasing: buffer[(32 - count)...]).assumingMemoryBound(to: UInt8.self))
    }
}

/// Opens the JSON object of an exchange event with where it happened:
/// `{"route":…,"entry":…,"kind":…`, then `,"stepIndex":…`, `,"step":…` and `,"endpoint":…`
/// for those given. The audit trail's stored events start so; a step's own opening is
/// written once, when the step is compiled (``StepInfo/jsonFields``).
@inlinable
public func appendEventIdentity<Sink: ByteSink & ~Copyable>(
    route: String, entry: Bool, kind: String, stepIndex: Int?, step: String?, endpoint: String?, to output: inout Sink
) {
    appendStatic(#"{"route":"#, to: &output)
    appendJSONQuoted(route, to: &output)
    if entry {
        appendStatic(#","entry":true,"kind":"#, to: &output)
    } else {
        appendStatic(#","entry":false,"kind":"#, to: &output)
    }
    appendJSONQuoted(kind, to: &output)
    if let stepIndex {
        appendStatic(#","stepIndex":"#, to: &output)
        appendDecimal(Int64(stepIndex), to: &output)
    }
    if let step {
        appendStatic(#","step":"#, to: &output)
        appendJSONQuoted(step, to: &output)
    }
    if let endpoint {
        appendStatic(#","endpoint":"#, to: &output)
        appendJSONQuoted(endpoint, to: &output)
    }
}
