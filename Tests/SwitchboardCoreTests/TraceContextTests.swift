// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import SwitchboardDigest
import Testing

@Suite struct TraceContextTests {
    @Test func parsesAndFormatsTraceparent() throws {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(TraceContext(traceparent: text))
        #expect(context.traceIDString == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.withTraceIDUTF8 { String(decoding: $0, as: UTF8.self) } == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanIDString == "00f067aa0ba902b7")
        #expect(context.flags == 1)
        #expect(context.traceparent == text)
    }

    @Test(arguments: [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ])
    func refusesMalformedValues(_ text: String) {
        #expect(TraceContext(traceparent: text) == nil)
    }

    @Test func laterVersionsAreReadByTheirFirstFields() {
        let context = TraceContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")
        #expect(context?.traceIDString == "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test func childKeepsTheTraceWithANewSpan() {
        let parent = TraceContext.random()
        let child = parent.child()
        #expect(child.traceIDString == parent.traceIDString)
        #expect(child.spanID != parent.spanID)
        #expect(TraceContext.random().traceIDString != parent.traceIDString)
    }
}

@Suite struct SHA256Tests {
    static func hex(_ text: String) -> String {
        Array(text.utf8).withUnsafeBytes { SHA256.hex($0) }
    }

    @Test func matchesTheFIPSExamples() {
        #expect(Self.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Self.hex(String(repeating: "a", count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func incrementalUpdatesMatchOneShot() {
        let text = Array(String(repeating: "switchboard ", count: 100).utf8)
        var hash = SHA256()
        for chunk in stride(from: 0, to: text.count, by: 7) {
            text[chunk..<min(text.count, chunk + 7)].withUnsafeBytes { hash.update($0) }
        }
        let digest = hash.finalize()
        let hex = digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        #expect(hex == text.withUnsafeBytes { SHA256.hex($0) })
    }

    @Test func oneShotAndIncrementalAgreeAtEveryLengthAroundTheBlocks() {
        // The one-shot is libcrypto's, the incremental form is Swift's: padding differs by
        // length mod 64, so every length across three blocks.
        let bytes = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for length in 0...bytes.count {
            var hash = SHA256()
            bytes[0..<length].withUnsafeBytes { hash.update($0) }
            #expect(hash.finalizeHex() == bytes[0..<length].withUnsafeBytes { SHA256.hex($0) }, "length \(length)")
            // The form written into the audit trail's JSON: after what is there already.
            var appended = Array("x".utf8)
            bytes[0..<length].withUnsafeBytes { SHA256.appendHex($0, to: &appended) }
            #expect(String(decoding: appended, as: UTF8.self) == "x" + bytes[0..<length].withUnsafeBytes { SHA256.hex($0) })
        }
    }
}
