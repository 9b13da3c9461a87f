// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import Testing

struct TemplateTests {
    func render(_ template: String, body: String = "", headers: Headers = Headers(), environment: [String: String] = [:], namespaces: String = "") async throws -> (String, Message) {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            \(namespaces)
            steps:
              - set-header: { name: X-Out, value: "\(template.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))" }
        """, environment: environment)
        let message = Message(headers: headers, body: ByteBuffer(string: body))
        let reply = try await harness.engine.process(routeID: "r", Exchange(message: message, pattern: .inOut)).message
        return (reply.headers["X-Out"] ?? "<unset>", reply)
    }

    @Test func idAndCorrelationID() async throws {
        let (id, message) = try await render("${id}")
        #expect(id == message.id.description)
        let (correlation, _) = try await render("c=${correlation-id}", headers: ["X-Correlation-ID": "batch-7"])
        #expect(correlation == "c=batch-7")
    }

    @Test func headersAndBody() async throws {
        #expect(try await render("${header.X-A}/${header.x-b}/${header.X-Missing}", headers: ["X-A": "1", "X-B": "2"]).0 == "1/2/")
        #expect(try await render("[${body}]", body: "hello").0 == "[hello]")
    }

    @Test func xpathValues() async throws {
        let body = #"<inv:Invoice xmlns:inv="urn:i"><inv:ID>INV-9</inv:ID><inv:Line/><inv:Line/></inv:Invoice>"#
        let (value, _) = try await render("${xpath:/inv:Invoice/inv:ID} has ${xpath:count(//inv:Line)} lines", body: body, namespaces: #"namespaces: { inv: "urn:i" }"#)
        #expect(value == "INV-9 has 2 lines")
    }

    @Test func jsonValues() async throws {
        let body = #"{"order":{"id":"A1","total":12.5,"tags":["x","y"],"ok":true}}"#
        #expect(try await render("${json:$.order.id}:${json:$.order.total}:${json:$.order.ok}", body: body).0 == "A1:12.5:true")
        #expect(try await render("${json:$.order.tags[*]}", body: body).0 == #"["x","y"]"#)
        #expect(try await render("${json:$.order[?@ == 'nothing']}", body: body).0 == "")
    }

    @Test func dates() async throws {
        let (value, _) = try await render("${date:yyyy-MM-dd'T'HH:mm:ss.SSS}")
        #expect(value.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}/) != nil, "\(value)")
        let year = Calendar.current.component(.year, from: Date())
        let (short, _) = try await render("file-${date:yy}.txt")
        #expect(short == "file-\(String(year % 100)).txt")
    }

    @Test func environmentIsReadAtLoad() async throws {
        #expect(try await render("${env.REGION}-x", environment: ["REGION": "eu-west"]).0 == "eu-west-x")
    }

    @Test func dollarDollarWritesALiteralPlaceholder() async throws {
        #expect(try await render("$${header.X} stays").0 == "${header.X} stays")
    }
}
