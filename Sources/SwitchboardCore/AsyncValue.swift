import Synchronization

/// A value that is set once and awaited by any number of tasks: the port a listener bound
/// once it is up, for example.
public final class AsyncValue<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, Never>])
        case set(Value)
    }

    private let state = Mutex<State>(.waiting([]))

    public init() {}

    /// Sets the value and wakes every waiter. Later calls are ignored.
    public func set(_ value: Value) {
        let waiters: [CheckedContinuation<Value, Never>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .set(value)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value, waiting until it is set.
    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready: Value? = state.withLock { state in
                    switch state {
                    case .set(let value):
                        return value
                    case .waiting(var waiters):
                        waiters.append(continuation)
                        state = .waiting(waiters)
                        return nil
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    /// The value if it is set, without waiting.
    public var current: Value? {
        state.withLock { state in
            if case .set(let value) = state { return value }
            return nil
        }
    }
}

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
    let plain = text.utf8.withContiguousStorageIfAvailable { !needsJSONEscaping($0) } ?? {
        var copy = text
        return copy.withUTF8 { !needsJSONEscaping($0) }
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

/// Appends `text` as a JSON string literal to the UTF-8 bytes in `output`.
public func appendJSONQuoted(_ text: String, to output: inout [UInt8]) {
    // Read in place (native strings are contiguous); only a bridged string is copied.
    let done: Void? = text.utf8.withContiguousStorageIfAvailable { appendJSONQuoted(utf8: $0, to: &output) }
    if done == nil {
        var text = text
        text.withUTF8 { appendJSONQuoted(utf8: $0, to: &output) }
    }
}

/// Appends valid UTF-8 `bytes` as a JSON string literal to `output`: copied whole when
/// nothing needs escaping, else in runs between the bytes that do (multi-byte sequences
/// pass through).
public func appendJSONQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
    output.append(UInt8(ascii: "\""))
    if !needsJSONEscaping(bytes) {
        output.append(contentsOf: bytes)
        output.append(UInt8(ascii: "\""))
        return
    }
    output.reserveCapacity(output.count + bytes.count + bytes.count / 8 + 16)
    // Runs that need no escaping (most of any text) are copied whole.
    var runStart = 0
    for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
        if runStart < index {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
        }
        runStart = index + 1
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
            output.append(contentsOf: "\\u00".utf8)
            output.append(lowercaseHexDigits[Int(byte >> 4)])
            output.append(lowercaseHexDigits[Int(byte & 0xF)])
        }
    }
    if runStart < bytes.count {
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
    }
    output.append(UInt8(ascii: "\""))
}


@inline(__always)
private func needsJSONEscaping(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
}
