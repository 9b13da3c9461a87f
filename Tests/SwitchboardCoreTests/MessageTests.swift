// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardDigest
import Testing

struct MessageTests {
    @Test func headersCompareNamesWithoutCase() {
        var headers: Headers = ["Content-Type": "application/json"]
        #expect(headers["content-type"] == "application/json")
        #expect(headers.contains("CONTENT-TYPE"))
        headers["CONTENT-type"] = "text/plain"
        #expect(headers.count == 1)
        #expect(headers["Content-Type"] == "text/plain")
    }

    @Test func settingAHeaderReplacesEveryValueButAddKeepsThem() {
        var headers = Headers()
        headers.add("Set-Cookie", "a=1")
        headers.add("set-cookie", "b=2")
        #expect(headers.values("SET-COOKIE") == ["a=1", "b=2"])
        headers["Set-Cookie"] = "c=3"
        #expect(headers.values("set-cookie") == ["c=3"])
        headers["set-cookie"] = nil
        #expect(!headers.contains("Set-Cookie"))
    }

    @Test func caseFoldingOnlyFoldsLetters() {
        #expect("X-A".equalsIgnoringASCIICase("x-a"))
        #expect(!"[".equalsIgnoringASCIICase("{"))
        #expect(!"@".equalsIgnoringASCIICase("`"))
        #expect(!"ab".equalsIgnoringASCIICase("abc"))
        // Long (heap) strings, substrings and non-ASCII bytes, which are compared as they are.
        let long = "X-Forwarded-For-A-Rather-Long-Header-Name"
        #expect(long.equalsIgnoringASCIICase(long.uppercased()))
        #expect(long.equalsIgnoringASCIICase(long.uppercased().dropLast() + "e"))
        #expect(!long.equalsIgnoringASCIICase(long.uppercased().dropLast() + "X"))
        #expect("Content-Type: text".prefix(12).equalsIgnoringASCIICase("content-type"))
        #expect("Größe".equalsIgnoringASCIICase("gröSSE") == false)
        #expect("Größe".equalsIgnoringASCIICase("GRößE"))
        #expect(!"Ö".equalsIgnoringASCIICase("ö"))
    }

    @Test func aNameTableMatchesWholeNamesWithoutCase() {
        let set = HeaderNameTable(["connection", "te", "transfer-encoding", "x-message-id"])
        #expect(set.contains("Connection"))
        #expect(set.contains("TE"))
        #expect(set.contains("Transfer-Encoding"))
        #expect(set.contains("X-MESSAGE-ID"))
        // Same length, different name; a prefix; a longer name; the empty name.
        #expect(!set.contains("Connectiox"))
        #expect(!set.contains("t"))
        #expect(!set.contains("transfer-encodings"))
        #expect(!set.contains(""))
        // Only ASCII letters fold: "[" is not "{" though they differ by the case bit.
        #expect(!HeaderNameTable(["a{"]).contains("A["))
        #expect(HeaderNameTable([]).contains("x") == false)
        let long = String(repeating: "x", count: 70)
        #expect(HeaderNameTable([long]).contains(long.uppercased()))
        #expect(!HeaderNameTable([long]).contains(String(repeating: "x", count: 71)))
    }

    @Test func aNameTableMatchesTheLastDottedSegment() {
        let table = HeaderNameTable(["authorization", "token"])
        #expect(table.containsLastSegment(of: "Authorization"))
        #expect(table.containsLastSegment(of: "http.query.TOKEN"))
        #expect(!table.containsLastSegment(of: "x-token"))
        #expect(!table.containsLastSegment(of: "tokens"))
        #expect(!table.containsLastSegment(of: "ken"))
        #expect(!table.contains("http.query.token"))
        // Names of a masked name's length whose first byte differs, and the reverse, are
        // told apart before any comparison; a dotted entry matches after an earlier dot.
        #expect(!table.containsLastSegment(of: "kokens"))
        #expect(!table.containsLastSegment(of: "http.query.tokex"))
        #expect(!table.containsLastSegment(of: "http.toke"))
        #expect(!table.containsLastSegment(of: "token."))
        let dotted = HeaderNameTable(["query.token", "x"])
        #expect(dotted.containsLastSegment(of: "HTTP.Query.Token"))
        #expect(dotted.containsLastSegment(of: "a.b.X"))
        #expect(!dotted.containsLastSegment(of: "http.token"))
        #expect(!dotted.containsLastSegment(of: "xquery.token"))
    }

    @Test func removingAMissingHeaderChangesNothing() {
        var headers: Headers = ["A": "1", "B": "2"]
        headers.remove("C")
        #expect(headers.fields.map(\.name) == ["A", "B"])
        headers.remove("a")
        #expect(headers.fields.map(\.name) == ["B"])
    }

    @Test func correlationIDComesFromTheHeaderElseTheID() {
        let plain = Message()
        #expect(plain.correlationID == plain.id.description)
        let correlated = Message(headers: ["x-correlation-id": "order-42"])
        #expect(correlated.correlationID == "order-42")
    }

    @Test func contentTypeLivesInTheHeaders() {
        var message = Message(body: ByteBuffer(string: "<a/>"))
        message.contentType = "application/xml"
        #expect(message.headers["content-type"] == "application/xml")
        #expect(message.bodyString == "<a/>")
    }

    @Test func childrenGetANewIDAndPointToTheirParent() {
        let parent = Message(headers: ["X-Correlation-ID": "c-1", "X-A": "1"], properties: ["p": "v"])
        let child = parent.makeChild(body: ByteBuffer(string: "part"))
        #expect(child.id != parent.id)
        #expect(child.parentID == parent.id)
        #expect(child.correlationID == "c-1")
        #expect(child.headers["X-A"] == "1")
        #expect(child.properties["p"] == "v")
        #expect(child.bodyString == "part")
    }
}

@Suite struct JSONQuotingTests {
    @Test func escapesWhatJSONRequiresAndKeepsTheRest() {
        #expect(jsonQuoted("plain") == #""plain""#)
        #expect(jsonQuoted("a\"b\\c\nd\re\tf\u{01}g") == #""a\"b\\c\nd\re\tf\u0001g""#)
        #expect(jsonQuoted("héllo <x a=\"1\"/> ✓") == #""héllo <x a=\"1\"/> ✓""#)
    }

    /// The scan reads eight bytes at a time: every byte value, at every offset of texts
    /// shorter and longer than a word, is found where a byte-by-byte scan finds it.
    @Test func theWordAtATimeScanFindsEveryByteThatNeedsEscaping() {
        func expected(_ bytes: [UInt8], orNonASCII: Bool) -> Int {
            bytes.firstIndex { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || (orNonASCII && $0 >= 0x80) } ?? bytes.count
        }
        var mismatches: [String] = []
        for length in [1, 7, 8, 9, 16, 23] {
            for offset in 0..<length {
                for value in 0...255 {
                    // Filler with bytes either side of the special ranges ('!', '#', '[', ']', '~', DEL).
                    var bytes = (0..<length).map { [0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x7F][$0 % 6] as UInt8 }
                    bytes[offset] = UInt8(value)
                    for orNonASCII in [false, true] {
                        let found = bytes.withUnsafeBufferPointer { firstJSONSpecialByte($0, orNonASCII: orNonASCII) }
                        if found != expected(bytes, orNonASCII: orNonASCII) {
                            mismatches.append("length \(length), byte \(value) at \(offset), orNonASCII \(orNonASCII): \(found)")
                        }
                    }
                }
            }
        }
        let failures = mismatches.count
        #expect(failures == 0, "\(mismatches.prefix(5))")
        #expect([UInt8]().withUnsafeBufferPointer { firstJSONSpecialByte($0) } == 0)
    }

    @Test func longTextIsEscapedInEveryWord() {
        let text = String(repeating: "abcdefg\"", count: 40) + "tail\\" + String(repeating: "é", count: 9) + "\u{1F}"
        let quoted = jsonQuoted(text)
        #expect(quoted == "\"" + String(repeating: #"abcdefg\""#, count: 40) + #"tail\\"# + String(repeating: "é", count: 9) + #"\u001f""#)
    }

    @Test func aByteWriterGrowsAndWritesWhatAnArrayWould() {
        // Starts smaller than what is written, so it grows several times, mid-run too.
        let texts = ["plain", "quote\" and back\\slash", "tab\tnew\nline\u{1}", String(repeating: "é€x", count: 300), ""]
        var writer = ByteWriter(capacity: 3)
        var array: [UInt8] = []
        for text in texts {
            appendJSONQuoted(text, to: &writer)
            appendJSONQuoted(text, to: &array)
            appendStatic(",", to: &writer)
            appendStatic(",", to: &array)
            writer.append(0x7C)
            array.append(0x7C)
        }
        let body = Array(repeating: UInt8(ascii: "x"), count: 5000)
        body.withUnsafeBytes { SHA256.appendHex($0, to: &writer) }
        body.withUnsafeBytes { SHA256.appendHex($0, to: &array) }
        body.withUnsafeBufferPointer { writer.appendBytes($0) }
        body.withUnsafeBufferPointer { array.appendBytes($0) }
        #expect(writer.byteCount == array.count)
        let written = writer.written().withUnsafeBufferPointer(Array.init)
        #expect(written == array)
        #expect(String(decoding: written.prefix(9), as: UTF8.self) == #""plain",|"#)
        #expect(written.count > 6000)
        // Handed over in its own memory, the same bytes.
        var second = ByteWriter(capacity: 1)
        array.withUnsafeBufferPointer { second.appendBytes($0) }
        let owned = second.written()
        #expect(owned.count == array.count)
        #expect(owned.withUnsafeBufferPointer(Array.init) == array)
        #expect(WrittenBytes.copy(of: array).withUnsafeBufferPointer(Array.init) == array)
        #expect(WrittenBytes.copy(of: []).count == 0)
    }
}
