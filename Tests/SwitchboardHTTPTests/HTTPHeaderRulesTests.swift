// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

@testable import SwitchboardHTTP
import Testing

struct HTTPHeaderRulesTests {
    @Test func requestAndResponseRulesKeepTheirLists() {
        #expect(!HTTPHeaderRules.forwardsOnRequest("Keep-Alive"))
        #expect(!HTTPHeaderRules.forwardsOnRequest("content-length"))
        #expect(!HTTPHeaderRules.forwardsOnRequest("http.status"))
        #expect(HTTPHeaderRules.forwardsOnRequest("Authorization"))
        #expect(!HTTPHeaderRules.forwardsOnResponse("Authorization"))
        #expect(!HTTPHeaderRules.forwardsOnResponse("X-Correlation-ID"))
        #expect(HTTPHeaderRules.forwardsOnResponse("Content-Type"))
        #expect(HTTPHeaderRules.keepsIncoming("Set-Cookie"))
        #expect(!HTTPHeaderRules.keepsIncoming("Transfer-Encoding"))
    }

    @Test func fieldNamesMustBeTokensAndValuesFreeOfLineBreaks() {
        // RFC 9110 tchar, byte by byte: the bit tables agree with the grammar for all 256 values.
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            let name = String(decoding: [UInt8(ascii: "X"), byte], as: UTF8.self)
            #expect(HTTPWire.isToken(name) == tchar.contains(byte), "byte \(byte)")
        }
        #expect(!HTTPWire.isToken(""))
        #expect(HTTPWire.isToken("X-Correlation-ID"))
        #expect(!HTTPWire.isToken("Bad Name"))
        #expect(!HTTPWire.isToken("Ünicode"))

        #expect(HTTPWire.isValidValue(""))
        #expect(HTTPWire.isValidValue("a value\twith tab, UTF-8 é and symbols ;=,"))
        for bad in ["a\rb", "a\nb", "a\u{0}b", "\r\nX-Injected: yes"] {
            #expect(!HTTPWire.isValidValue(bad))
        }
    }
}
