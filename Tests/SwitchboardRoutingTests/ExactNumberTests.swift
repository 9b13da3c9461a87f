// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardRouting
import Testing

/// Account numbers, 64-bit ids and money go through a route as they came: templates, `map`,
/// predicates and `json-to-xml` carry a number's text unchanged and compare it exactly.
struct ExactNumberTests {
    static let body = #"{"id":12345678901234567890,"amount":12.30,"text":"9007199254740993","neg":-0,"huge":1e400,"limit":9007199254740993}"#

    @Test func numbersPassThroughTemplatesMapAndXMLUnchanged() async throws {
        let harness = try Harness("""
        routes:
          - id: exact
            from: direct:exact
            steps:
              - choice:
                  - when: { jsonpath: "$.limit", gt: 9007199254740992 }
                    steps: [ { set-header: { name: X-Over, value: "yes" } } ]
                  - otherwise:
                      - set-header: { name: X-Over, value: "no" }
              - set-header: { name: X-Id, value: "${json:$.id}" }
              - set-header: { name: X-Amount, value: "${json:$.amount}" }
              - map:
                  fields:
                    id: "$.id"
                    amount: "$.amount"
                    total: { number: "$.text" }
                    neg: "$.neg"
                    huge: "$.huge"
          - id: xml
            from: direct:xml
            steps:
              - json-to-xml: {}
        """)
        let reply = try await harness.send("exact", Self.body)
        #expect(reply.headers["X-Over"] == "yes", "9007199254740993 is more than 9007199254740992")
        #expect(reply.headers["X-Id"] == "12345678901234567890")
        #expect(reply.headers["X-Amount"] == "12.30")
        #expect(reply.bodyString == #"{"id":12345678901234567890,"amount":12.30,"total":9007199254740993,"neg":-0,"huge":1e400}"#)
        let xml = try await harness.send("xml", #"{"payment":{"account":12345678901234567890,"amount":12.30,"neg":-0}}"#)
        #expect(xml.bodyString.contains("<payment><account>12345678901234567890</account><amount>12.30</amount><neg>-0</neg></payment>"), "\(xml.bodyString)")
    }
}
