// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import SwitchboardRouting
import Testing

/// Each predicate is tested by routing a message through a `choice` with one `when`.
struct PredicateTests {
    func matches(_ predicate: String, body: String = "", headers: Headers = Headers(), namespaces: String = "") async throws -> Bool {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            \(namespaces)
            steps:
              - choice:
                  - when: \(predicate)
                    steps: [ { set-body: "yes" } ]
                  - otherwise:
                      - set-body: "no"
        """)
        return try await harness.send("r", body, headers: headers).bodyString == "yes"
    }

    @Test func headerEqualsAndNotEquals() async throws {
        #expect(try await matches("{ header: X-Type, equals: order }", headers: ["x-type": "order"]))
        #expect(try await !matches("{ header: X-Type, equals: order }", headers: ["X-Type": "Order"]))
        #expect(try await matches("{ header: X-Type, not-equals: order }", headers: ["X-Type": "invoice"]))
        #expect(try await !matches("{ header: X-Type, equals: order }"))
    }

    @Test func headerIn() async throws {
        #expect(try await matches("{ header: X-Region, in: [EU, UK] }", headers: ["X-Region": "UK"]))
        #expect(try await !matches("{ header: X-Region, in: [EU, UK] }", headers: ["X-Region": "US"]))
    }

    @Test func headerMatchesTheWholeValue() async throws {
        #expect(try await matches(#"{ header: X-Order, matches: "ORD-[0-9]{4}" }"#, headers: ["X-Order": "ORD-1234"]))
        #expect(try await !matches(#"{ header: X-Order, matches: "ORD-[0-9]{4}" }"#, headers: ["X-Order": "ORD-12345"]))
    }

    @Test func headerExists() async throws {
        #expect(try await matches("{ header: X-Debug, exists: true }", headers: ["X-Debug": ""]))
        #expect(try await !matches("{ header: X-Debug, exists: true }"))
        #expect(try await matches("{ header: X-Debug, exists: false }"))
        #expect(try await matches("{ header: X-Debug }", headers: ["X-Debug": "1"]), "a bare header tests that it exists")
    }

    @Test func numericComparisons() async throws {
        let amount: Headers = ["X-Amount": "1500.50"]
        #expect(try await matches("{ header: X-Amount, gt: 1000 }", headers: amount))
        #expect(try await !matches("{ header: X-Amount, gt: 1500.50 }", headers: amount))
        #expect(try await matches("{ header: X-Amount, gte: 1500.50 }", headers: amount))
        #expect(try await matches("{ header: X-Amount, lt: 2000 }", headers: amount))
        #expect(try await matches("{ header: X-Amount, lte: 1500.5 }", headers: amount))
        #expect(try await !matches("{ header: X-Amount, gt: 1 }", headers: ["X-Amount": "lots"]), "non-numbers never compare")
    }

    @Test func xpathOnXMLBodies() async throws {
        let order = "<order region='EU'><total>1200</total></order>"
        #expect(try await matches(#"{ xpath: "/order/total > 1000" }"#, body: order))
        #expect(try await !matches(#"{ xpath: "/order/total > 5000" }"#, body: order))
        #expect(try await matches(#"{ xpath: "/order/@region", equals: EU }"#, body: order))
        #expect(try await matches(#"{ xpath: "/order/total", gte: 1200 }"#, body: order))
        #expect(try await matches(#"{ xpath: "/order/discount", exists: false }"#, body: order))
    }

    @Test func xpathUsesTheRouteNamespaces() async throws {
        let invoice = #"<Invoice xmlns="urn:example:invoice"><Total>10</Total></Invoice>"#
        #expect(try await matches(#"{ xpath: "/i:Invoice/i:Total = 10" }"#, body: invoice, namespaces: #"namespaces: { i: "urn:example:invoice" }"#))
    }

    @Test func jsonpathOnJSONBodies() async throws {
        let order = #"{"order":{"region":"EU","total":1200,"express":false,"lines":[{"sku":"a"},{"sku":"b"}]}}"#
        #expect(try await matches(#"{ jsonpath: "$.order.lines[?@.sku == 'b']" }"#, body: order))
        #expect(try await !matches(#"{ jsonpath: "$.order.express" }"#, body: order), "false is not true")
        #expect(try await !matches(#"{ jsonpath: "$.order.missing" }"#, body: order))
        #expect(try await matches(#"{ jsonpath: "$.order.region", equals: EU }"#, body: order))
        #expect(try await matches(#"{ jsonpath: "$.order.total", gt: 1000 }"#, body: order))
        #expect(try await matches(#"{ jsonpath: "$.order.lines[*].sku", in: [b, c] }"#, body: order), "any selected value may satisfy the test")
        #expect(try await matches(#"{ jsonpath: "$.order.express", exists: true }"#, body: order))
    }

    @Test func allAnyAndNot() async throws {
        let eu: Headers = ["X-Region": "EU", "X-Amount": "50"]
        #expect(try await matches("{ all: [ { header: X-Region, equals: EU }, { header: X-Amount, lt: 100 } ] }", headers: eu))
        #expect(try await !matches("{ all: [ { header: X-Region, equals: EU }, { header: X-Amount, gt: 100 } ] }", headers: eu))
        #expect(try await matches("{ any: [ { header: X-Region, equals: US }, { header: X-Amount, lt: 100 } ] }", headers: eu))
        #expect(try await !matches("{ any: [ { header: X-Region, equals: US }, { header: X-Amount, gt: 100 } ] }", headers: eu))
        #expect(try await matches("{ not: { header: X-Region, equals: US } }", headers: eu))
        #expect(try await !matches("{ not: { any: [ { header: X-Region, equals: EU } ] } }", headers: eu))
    }

    @Test func xpathOnABodyThatIsNotXMLFailsTheStepClearly() async throws {
        await #expect {
            try await matches(#"{ xpath: "/order" }"#, body: #"{"order":1}"#)
        } throws: { error in
            let failure = error as? StepFailure
            return failure?.step.kind == "choice" && failure?.reason.contains("the message body is not well-formed XML") == true
        }
    }

    @Test func jsonpathOnABodyThatIsNotJSONFailsTheStepClearly() async throws {
        await #expect {
            try await matches(#"{ jsonpath: "$.order" }"#, body: "<order/>")
        } throws: { error in
            (error as? StepFailure)?.reason.hasPrefix("the message body is not valid JSON") == true
        }
    }
}
