// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CCrypto
import SwitchboardCore

/// SHA-256 (FIPS 180-4): for body hashes in the audit trail and file checksums.
///
/// Both forms go to libcrypto, which uses the CPU's SHA instructions where it has them
/// (several times faster than portable code): a whole buffer (``hex(_:)``, what the audit
/// trail hashes for every changed body) and the incremental form, for streamed files. The
/// context is a value on the stack or in this struct: OpenSSL 3's one-shot `SHA256()`
/// fetches the algorithm from the provider store on every call (565 against 288 ns for 500
/// bytes, 310 against 53 ns for 2, in a C loop). Tests check known digests, and that
/// chunked updates agree with the whole buffer at every length around the block boundaries.
public struct SHA256: Sendable {
    /// Plain bytes (no pointers), so copying the struct copies the hash state.
    private var context = SHA256_CTX()

    public init() {
        SHA256_Init(&context)
    }

    /// Adds bytes to the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// The 32-byte digest. The hash is finished; make a new one for more input.
    public mutating func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
            SHA256_Final(buffer.baseAddress, &context)
            count = 32
        }
    }

    /// The digest of `bytes` as 64 lower-case hex digits.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        withDigest(of: bytes) { hexDigits($0) }
    }

    /// Appends the SHA-256 of `bytes` as 64 lower-case hex digits to `output`, without making
    /// a string (the audit trail writes it straight into an event's stored JSON).
    @inlinable
    public static func appendHex<Sink: ByteSink & ~Copyable>(_ bytes: UnsafeRawBufferPointer, to output: inout Sink) {
        withHexDigest(of: bytes) { output.appendBytes($0) }
    }

    /// Runs `body` with the digest of `bytes` as 64 lower-case hex digits, written on the
    /// stack (64 appends would each check the output's capacity).
    @usableFromInline
    static func withHexDigest(of bytes: UnsafeRawBufferPointer, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        withDigest(of: bytes) { digest in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { hex in
                putHexDigits(digest, into: hex)
                body(UnsafeBufferPointer(hex))
            }
        }
    }

    /// Runs `body` with the digest of `bytes`.
    private static func withDigest<Result>(of bytes: UnsafeRawBufferPointer, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
            var hash = SHA256()
            hash.update(bytes)
            SHA256_Final(digest.baseAddress, &hash.context)
            return body(UnsafeBufferPointer(digest))
        }
    }

    /// Finishes the hash; the digest as 64 lower-case hex digits.
    public mutating func finalizeHex() -> String {
        let digest = finalize()
        return digest.withUnsafeBufferPointer { Self.hexDigits($0) }
    }

    private static func hexDigits(_ digest: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: 64) { buffer in
            putHexDigits(digest, into: buffer)
            return 64
        }
    }
}

/// Writes `bytes` as lower-case hex digits, two per byte, at the start of `buffer`.
private func putHexDigits(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: UnsafeMutableBufferPointer<UInt8>) {
    for (index, byte) in bytes.enumerated() {
        buffer[index * 2] = lowercaseHexDigit(byte >> 4)
        buffer[index * 2 + 1] = lowercaseHexDigit(byte & 0xF)
    }
}
