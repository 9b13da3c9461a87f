// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import Testing

struct MessageIDTests {
    @Test func idsAreVersionSevenWithTheRFCVariant() {
        let id = MessageID()
        #expect(id.version == 7)
        #expect(id.low >> 62 == 0b10)
        let text = id.description
        #expect(text.count == 36)
        #expect(Array(text)[14] == "7")
    }

    @Test func idsCarryTheCurrentTimeAndSortByCreation() {
        let before = UInt64(wallClockMilliseconds())
        let ids = (0..<10_000).map { _ in MessageID() }
        let after = UInt64(wallClockMilliseconds())
        // Past 4096 ids in one millisecond the counter carries into the time field, so a fast
        // burst may run ahead of the clock by at most one millisecond per 3,584 ids.
        let carry = UInt64(ids.count / 3584 + 1)
        #expect(ids.allSatisfy { $0.unixMilliseconds >= before && $0.unixMilliseconds <= after + carry })
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
    }

    @Test func textFormRoundTrips() throws {
        let id = MessageID()
        let parsed = try #require(MessageID(id.description))
        #expect(parsed == id)
        #expect(MessageID(id.description.uppercased()) == id)
    }

    @Test func theBytesFormedOnTheStackAreTheTextForm() throws {
        let fixed = try #require(MessageID("01a1fdb0-a150-7151-bdef-b1ff29e16437"))
        for id in [fixed, MessageID(high: 0, low: 0), MessageID(high: .max, low: .max), MessageID()] {
            #expect(id.withUTF8 { String(decoding: $0, as: UTF8.self) } == id.description)
        }
        #expect(fixed.withUTF8 { String(decoding: $0, as: UTF8.self) } == "01a1fdb0-a150-7151-bdef-b1ff29e16437")
    }

    @Test(arguments: ["", "not-an-id", "01a1fdb0-a150-7151-bdef-b1ff29e1643", "01a1fdb0a150-7151-bdef-b1ff29e164370", "01a1fdb0-a150-7151-bdef-b1ff29e1643g"])
    func malformedTextIsRefused(_ text: String) {
        #expect(MessageID(text) == nil)
    }
}
