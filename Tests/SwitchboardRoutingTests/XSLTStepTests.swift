// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import Testing

@Suite struct XSLTStepTests {
    /// A mappings folder with a stylesheet that wraps the order id and two parameters, a
    /// code list it reads with document(), and one that rejects orders without an id.
    static func mappings() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-mappings-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/orders", withIntermediateDirectories: true)
        try "<regions><region code='EU'>Europe</region></regions>".write(toFile: folder + "/orders/regions.xml", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="xml" media-type="application/vnd.canonical+xml" indent="no"/>
          <xsl:param name="channel"/>
          <xsl:param name="received"/>
          <xsl:template match="/order">
            <canonical id="{@id}" channel="{$channel}" received="{$received}">
              <xsl:value-of select="document('regions.xml')/regions/region[@code = current()/@region]"/>
            </canonical>
          </xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/orders/to-canonical.xsl", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/order[not(@id)]" priority="1"><xsl:message terminate="yes">order without id</xsl:message></xsl:template>
          <xsl:template match="/order"><ok/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/check.xsl", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"/></xsl:stylesheet>
        """.write(toFile: folder + "/two.xsl", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><xsl:message>no region on this order</xsl:message><done/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/warn.xsl", atomically: true, encoding: .utf8)
        for (name, uri) in [("leak.xsl", "/etc/passwd"), ("absent.xsl", "orders/nowhere.xml")] {
            try """
            <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
              <xsl:template match="/"><n><xsl:value-of select="count(document('\(uri)'))"/></n></xsl:template>
            </xsl:stylesheet>
            """.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
        }
        return folder
    }

    @Test func aMessageThatDoesNotStopTheTransformIsLoggedAsAWarning() async throws {
        let harness = try Harness("""
        routes:
          - id: warn
            from: direct:warn
            steps:
              - xslt: warn.xsl
        """, mappings: try Self.mappings())
        #expect(try await harness.send("warn", "<order/>").bodyString.contains("<done/>"))
        let logged = harness.logs.lines.withLock { $0 }
        #expect(logged.contains { $0.0 == .warning && $0.1 == "xsl:message: no region on this order" }, "\(logged)")
    }

    @Test func aDocumentTheStylesheetMayNotReadFailsTheStepWithTheReason() async throws {
        let harness = try Harness("""
        routes:
          - id: leak
            from: direct:leak
            steps:
              - xslt: leak.xsl
          - id: absent
            from: direct:absent
            steps:
              - xslt: absent.xsl
        """, mappings: try Self.mappings())
        for (route, reason) in [("leak", "document('/etc/passwd'): /etc/passwd is outside the folder this stylesheet may read"),
                                ("absent", "orders/nowhere.xml'): cannot read")] {
            await #expect {
                try await harness.send(route, "<a/>")
            } throws: { error in
                guard let failure = error as? StepFailure else { return false }
                return failure.status == 422 && failure.reason.contains(reason)
            }
        }
    }

    @Test func transformsTheBodyWithTemplatedParameters() async throws {
        let harness = try Harness("""
        routes:
          - id: canon
            from: direct:canon
            steps:
              - xslt:
                  file: orders/to-canonical.xsl
                  params: { channel: "${header.X-Channel}", received: "2026-11-21" }
        """, mappings: try Self.mappings())
        let reply = try await harness.send("canon", "<order id='7' region='EU'/>", headers: Headers([("X-Channel", "web's")]))
        #expect(reply.bodyString == #"<?xml version="1.0"?>"# + "\n" + #"<canonical id="7" channel="web's" received="2026-11-21">Europe</canonical>"#)
        #expect(reply.contentType == "application/vnd.canonical+xml")
        let step = try #require(harness.observer.all.first { $0.step?.kind == "xslt" && $0.phase == .completed })
        #expect(step.detail == "orders/to-canonical.xsl → application/vnd.canonical+xml")
    }

    @Test func aTerminatingMessageFailsTheStepWithItsText() async throws {
        let harness = try Harness("""
        routes:
          - id: check
            from: direct:check
            steps:
              - xslt: check.xsl
        """, mappings: try Self.mappings())
        #expect(try await harness.send("check", "<order id='1'/>").bodyString.contains("<ok/>"))
        await #expect {
            try await harness.send("check", "<order/>")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.status == 422 && failure.reason.contains("order without id") && failure.step.kind == "xslt"
        }
        await #expect {
            try await harness.send("check", "not xml")
        } throws: { error in
            (error as? StepFailure)?.status == 400
        }
    }

    @Test func stylesheetProblemsAreLoadErrorsWithTheirPlace() throws {
        let errors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            steps:
              - xslt: missing.xsl
              - xslt: ../escape.xsl
              - xslt: two.xsl
              - xslt: { file: check.xsl, params: [x] }
        """, mappings: try Self.mappings())
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:15: error: stylesheet 'missing.xsl' does not exist in the mappings folder") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:6:15: error: stylesheet '../escape.xsl' is outside the mappings folder") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:7:15: error: ") && $0.contains("XSLT 2.0 is not supported") }, "\(errors)")
        #expect(errors.contains { $0.contains("'params' expects a mapping") }, "\(errors)")
    }
}

@Suite struct ValidateStepTests {
    @Test func invalidBodiesAreRefusedWithTheirLines() async throws {
        let mappings = FileManager.default.temporaryDirectory.appendingPathComponent("sb-xsd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mappings + "/schemas", withIntermediateDirectories: true)
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
          <xs:include schemaLocation="types.xsd"/>
          <xs:element name="order"><xs:complexType><xs:attribute name="id" type="orderID" use="required"/></xs:complexType></xs:element>
        </xs:schema>
        """.write(toFile: mappings + "/schemas/order.xsd", atomically: true, encoding: .utf8)
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
          <xs:simpleType name="orderID"><xs:restriction base="xs:string"><xs:pattern value="[0-9]+"/></xs:restriction></xs:simpleType>
        </xs:schema>
        """.write(toFile: mappings + "/schemas/types.xsd", atomically: true, encoding: .utf8)
        let harness = try Harness("""
        routes:
          - id: orders
            from: direct:orders
            steps:
              - validate: { xsd: schemas/order.xsd }
              - set-body: accepted
        """, mappings: mappings)
        #expect(try await harness.send("orders", "<order id='42'/>").bodyString == "accepted")
        await #expect {
            try await harness.send("orders", "<order\n id='x42'/>")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.status == 400 && failure.reason.contains("not valid against schemas/order.xsd (1 problem): line 2:")
                && failure.reason.contains("x42")
        }
        let errors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            steps:
              - validate: { xsd: nowhere.xsd }
        """, mappings: mappings)
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:26: error: schema 'nowhere.xsd' does not exist") }, "\(errors)")
    }
}

extension ValidateStepTests {
    @Test func jsonBodiesAreCheckedAgainstAJSONSchema() async throws {
        let mappings = FileManager.default.temporaryDirectory.appendingPathComponent("sb-json-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mappings + "/schemas", withIntermediateDirectories: true)
        try ##"{"$defs": {"amount": {"type": "number", "exclusiveMinimum": 0}}}"##.write(toFile: mappings + "/schemas/types.json", atomically: true, encoding: .utf8)
        try ##"""
        {"type": "object", "required": ["id", "amount"],
         "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}, "amount": {"$ref": "types.json#/$defs/amount"}}}
        """##.write(toFile: mappings + "/schemas/payment.json", atomically: true, encoding: .utf8)
        try #"{"type": "nothing"}"#.write(toFile: mappings + "/schemas/broken.json", atomically: true, encoding: .utf8)
        let harness = try Harness("""
        routes:
          - id: payments
            from: direct:payments
            steps:
              - validate: { json-schema: schemas/payment.json }
              - set-body: accepted
        """, mappings: mappings)
        #expect(try await harness.send("payments", #"{"id": "42", "amount": 9.5}"#).bodyString == "accepted")
        await #expect {
            try await harness.send("payments", #"{"id": "x42", "amount": 0}"#)
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.status == 400
                && failure.reason.contains("not valid against schemas/payment.json (2 problems): /id: pattern: \"x42\" does not match ^[0-9]+$; /amount: exclusiveMinimum: 0 is not greater than 0")
        }
        await #expect {
            try await harness.send("payments", "id=42")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.status == 400 && failure.reason.contains("the body is not JSON")
        }

        let errors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            steps:
              - validate: { json-schema: schemas/broken.json }
              - validate: { json-schema: ../outside.json }
              - validate: { xsd: a.xsd, json-schema: schemas/payment.json }
              - validate: {}
        """, mappings: mappings)
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:34: error: ") && $0.contains("broken.json: at #/type: 'type' must be one of") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:6:34: error: ") && $0.contains("outside") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:7:9: error: 'validate' takes one schema") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:8:9: error: 'validate' needs a schema") }, "\(errors)")
    }

    @Test func aJSONSchemaReadsRemoteIDsFromMappedFolders() async throws {
        let mappings = FileManager.default.temporaryDirectory.appendingPathComponent("sb-json-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mappings + "/partner/common", withIntermediateDirectories: true)
        try ##"{"$id": "https://schemas.partner.example/common/iban.json", "type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"}"##
            .write(toFile: mappings + "/partner/common/iban.json", atomically: true, encoding: .utf8)
        try ##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "properties": {"iban": {"$ref": "https://schemas.partner.example/common/iban.json"}}}"##
            .write(toFile: mappings + "/payment.json", atomically: true, encoding: .utf8)
        let harness = try Harness("""
        routes:
          - id: payments
            from: direct:payments
            steps:
              - validate: { json-schema: payment.json, resources: { "https://schemas.partner.example/": partner/ } }
              - set-body: accepted
        """, mappings: mappings)
        #expect(try await harness.send("payments", #"{"iban": "DE89370400440532013000"}"#).bodyString == "accepted")
        await #expect {
            try await harness.send("payments", #"{"iban": "not an iban"}"#)
        } throws: { error in
            (error as? StepFailure)?.status == 400 && "\(error)".contains("/iban: pattern")
        }

        let errors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            steps:
              - validate: { json-schema: payment.json }
              - validate: { json-schema: payment.json, resources: { "https://schemas.partner.example/": ../elsewhere } }
              - validate: { json-schema: payment.json, resources: { "https://schemas.partner.example/": missing/ } }
              - validate: { json-schema: payment.json, resources: { "partner": partner/ } }
              - validate: { xsd: a.xsd, resources: { "https://schemas.partner.example/": partner/ } }
        """, mappings: mappings)
        #expect(errors.contains { $0.hasPrefix("routes.yaml:5:34: error: ") && $0.contains("cannot resolve 'https://schemas.partner.example/common/iban.json'") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:6:") && $0.contains("resource folder '../elsewhere' is outside the mappings folder") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:7:") && $0.contains("resource folder 'missing/' for 'https://schemas.partner.example/' is not a folder") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:8:") && $0.contains("'partner' is not an absolute URI prefix") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("routes.yaml:9:") && $0.contains("'resources' maps URIs for a 'json-schema'") }, "\(errors)")
    }
}

@Suite struct XMLJSONStepTests {
    @Test func xmlToJSONAndBack() async throws {
        let harness = try Harness("""
        routes:
          - id: to-json
            from: direct:to-json
            steps:
              - xml-to-json: { arrays: ["order/item"] }
          - id: round
            from: direct:round
            steps:
              - xml-to-json: {}
              - json-to-xml: {}
        """)
        let json = try await harness.send("to-json", "<order id='7'><item>pen</item></order>")
        #expect(json.bodyString == #"{"order":{"@id":"7","item":["pen"]}}"#)
        #expect(json.contentType == "application/json")
        let xml = try await harness.send("round", "<order id='7'><item>pen</item></order>")
        #expect(xml.bodyString == "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<order id=\"7\"><item>pen</item></order>\n")
        #expect(xml.contentType == "application/xml")
        await #expect { try await harness.send("to-json", "{}") } throws: { ($0 as? StepFailure)?.status == 400 }
    }
}
