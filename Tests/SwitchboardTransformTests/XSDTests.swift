// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

@Suite struct XSDTests {
    static let data = Fixtures.root
    static let invoiceSchema = "\(data)/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func ublExamplesValidateAgainstTheirSchemaWithImportsInsideTheTree() throws {
        // The maindoc schema imports ../common/…: allowed when the tree is the UBL folder.
        let schema = try XSDSchema(path: Self.invoiceSchema, allowedRoot: "\(Self.data)/xsd/ubl-2.1")
        for name in ["xml/ubl/UBL-Invoice-2.1-Example.xml", "xml/xrechnung/maxRechnung_ubl.xml"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.data)/\(name)"))
            let violations = try data.withUnsafeBytes { try schema.validate($0, name: name) }
            #expect(violations.isEmpty, "\(name): \(violations)")
        }
    }

    @Test func violationsGiveLineAndMessageAndTheSummaryCounts() throws {
        let schema = try XSDSchema(path: Self.invoiceSchema, allowedRoot: "\(Self.data)/xsd/ubl-2.1")
        var text = try String(contentsOfFile: "\(Self.data)/xml/ubl/UBL-Invoice-2.1-Example.xml", encoding: .utf8)
        text = text.replacingOccurrences(of: "<cbc:IssueDate>2009-12-15</cbc:IssueDate>", with: "<cbc:IssueDate>someday</cbc:IssueDate><cbc:Bogus/>")
        let violations = try Self.bytes(text).withUnsafeBytes { try schema.validate($0) }
        #expect(violations.count >= 2, "\(violations)")
        #expect(violations[0].line == 7, "\(violations)")
        #expect(violations[0].message.contains("IssueDate"), "\(violations)")
        #expect(violations.contains { $0.message.contains("Bogus") }, "\(violations)")
        let summary = XSDSchema.summary(violations, first: 1)
        #expect(summary.hasPrefix("line 7: "))
        #expect(summary.hasSuffix("; and \(violations.count - 1) more"))
    }

    @Test func compileWarningsAreWarningsAndTheSchemaStillCompiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-xsd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let imported = """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:b" elementFormDefault="qualified">
          <xs:element name="b" type="xs:string"/>
        </xs:schema>
        """
        try imported.write(toFile: folder + "/b1.xsd", atomically: true, encoding: .utf8)
        try imported.write(toFile: folder + "/b2.xsd", atomically: true, encoding: .utf8)
        // The namespace imported twice, and a prohibition inside an attribute group: xmllint
        // warns of both and validates.
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:b="urn:b">
          <xs:import namespace="urn:b" schemaLocation="b1.xsd"/>
          <xs:import namespace="urn:b" schemaLocation="b2.xsd"/>
          <xs:attributeGroup name="g">
            <xs:attribute name="x" type="xs:string" use="prohibited"/>
          </xs:attributeGroup>
          <xs:complexType name="t">
            <xs:sequence><xs:element ref="b:b"/></xs:sequence>
            <xs:attributeGroup ref="g"/>
          </xs:complexType>
          <xs:element name="a" type="t"/>
        </xs:schema>
        """.write(toFile: folder + "/a.xsd", atomically: true, encoding: .utf8)
        let schema = try XSDSchema(path: folder + "/a.xsd")
        #expect(schema.warnings.count == 2, "\(schema.warnings)")
        #expect(schema.warnings.first?.line == 3)
        #expect(schema.warnings.first.map { $0.message.contains("Skipping import of schema located at") && $0.message.contains("b2.xsd") } == true)
        #expect(schema.warnings.last?.message.contains("Skipping attribute use prohibition, since it is pointless") == true)
        #expect(try Self.bytes(#"<a><b xmlns="urn:b">x</b></a>"#).withUnsafeBytes { try schema.validate($0) }.isEmpty)
        #expect(try Self.bytes(#"<a><c/></a>"#).withUnsafeBytes { try schema.validate($0) }.count == 1)
    }

    @Test func importsOutsideTheTreeOrOnTheNetworkAreRefused() throws {
        // The maindoc folder alone does not hold ../common.
        #expect(throws: XSDError.self) { try XSDSchema(path: Self.invoiceSchema) }
        #expect {
            try XSDSchema(path: "\(Self.data)/attacks/xsd/defusedxml-schema-include.xsd")
        } throws: { error in
            "\(error)".contains("defusedxml-schema-include.xsd")
        }
    }

    @Test func notWellFormedInputIsAnXMLError() throws {
        let schema = try XSDSchema(path: "\(Self.data)/xsd/iso20022/pain.001.001.03.xsd")
        #expect(throws: XMLError.self) { try Self.bytes("<Document").withUnsafeBytes { try schema.validate($0) } }
    }
}
