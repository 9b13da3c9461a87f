// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardRouting
import Testing

@Suite struct MapStepTests {
    static let routes = """
    routes:
      - id: partner
        from: direct:partner
        steps:
          - map:
              fields:
                invoiceNumber: "$.invoice['@id']"
                issued: { date: "$.invoice['@issued']", from: yyyy-MM-dd, to: dd.MM.yyyy }
                currency: { lower: "$.invoice['@currency']" }
                seller.name: { upper: "$.invoice.seller['@name']" }
                seller.vat: { default: ["$.invoice.seller['@vat']", "unknown"] }
                buyer.vat: { default: ["$.invoice.buyer['@vat']", "unknown"] }
                reference: { concat: ["INV-", "$.invoice['@id']", "/", { substring: ["$.invoice['@issued']", 0, 4] }] }
                total: { number: "$.invoice.totals['@payable']" }
                channel: "${header.X-Channel}"
                source: switchboard
                version: { literal: 2 }
                lines:
                  each: "$.invoice.lines.line[*]"
                  map:
                    sku: "@['@id']"
                    quantity: { number: "@['@quantity']" }
                    text: "@['#text']"
    """

    @Test func mapsFieldsFunctionsAndArrays() async throws {
        let harness = try Harness(Self.routes)
        let body = """
        {"invoice":{"@id":"12115118","@issued":"2015-01-09","@currency":"EUR",
         "seller":{"@name":"De Koksmaat","@vat":"NL8200"},"buyer":{"@name":"ODIN 59"},
         "lines":{"line":[{"@id":"1","@quantity":"2","#text":"PATAT"},{"@id":"2","@quantity":"1","#text":"KAAS"}]},
         "totals":{"@payable":"101.10"}}}
        """
        let reply = try await harness.send("partner", body, headers: Headers([("X-Channel", "edi")]))
        #expect(reply.contentType == "application/json")
        #expect(reply.bodyString == """
        {"invoiceNumber":"12115118","issued":"09.01.2015","currency":"eur","seller":{"name":"DE KOKSMAAT","vat":"NL8200"},\
        "buyer":{"vat":"unknown"},"reference":"INV-12115118/2015","total":101.10,"channel":"edi","source":"switchboard","version":2,\
        "lines":[{"sku":"1","quantity":2,"text":"PATAT"},{"sku":"2","quantity":1,"text":"KAAS"}]}
        """)
    }

    @Test func badNumbersAndDatesFailTheMessageNotTheRoute() async throws {
        let harness = try Harness(Self.routes)
        await #expect {
            try await harness.send("partner", #"{"invoice":{"@issued":"yesterday"}}"#)
        } throws: { error in
            (error as? StepFailure)?.reason.contains("'yesterday' is not a date in the format 'yyyy-MM-dd'") == true
        }
        await #expect { try await harness.send("partner", "not json") } throws: { ($0 as? StepFailure)?.status == 400 }
    }

    @Test func mistakesInAMapAreLoadErrors() {
        let errors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            steps:
              - map:
                  fields:
                    x: "$.a[?"
                    y: { uper: "$.a" }
                    z: { substring: ["$.a", "one"] }
                    "a..b": "$.a"
        """)
        #expect(errors.contains { $0.contains("invalid JSONPath '$.a[?'") }, "\(errors)")
        #expect(errors.contains { $0.contains("unknown map function 'uper'; did you mean 'upper'?") }, "\(errors)")
        #expect(errors.contains { $0.contains("'substring' takes [expression, start, length]") }, "\(errors)")
        #expect(errors.contains { $0.contains("target 'a..b' has an empty part") }, "\(errors)")
    }
}
