// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

struct XMLTests {
    static let data = Fixtures.root

    static func file(_ path: String) throws -> String {
        try String(contentsOfFile: "\(data)/\(path)", encoding: .utf8)
    }

    static let ubl = XPathNamespaces([
        ("inv", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"),
        ("cbc", "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"),
        ("cac", "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"),
    ])

    @Test func xpathReadsAUBLInvoiceWithRouteNamespaces() throws {
        let document = try XMLDocument(try XMLTests.file("xml/ubl/UBL-Invoice-2.1-Example.xml"))
        let id = try XPathExpression("/inv:Invoice/cbc:ID", namespaces: XMLTests.ubl)
        #expect(try id.evaluateString(in: document) == "TOSL108")
        let large = try XPathExpression("/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount > 700", namespaces: XMLTests.ubl)
        #expect(try large.evaluateBoolean(in: document))
        let huge = try XPathExpression("/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount > 1000", namespaces: XMLTests.ubl)
        #expect(try !huge.evaluateBoolean(in: document))
    }

    @Test func selectedNodesSerializeWithTheNamespacesTheyNeed() throws {
        let document = try XMLDocument(try XMLTests.file("xml/ubl/UBL-Invoice-2.1-Example.xml"))
        let lines = try XPathExpression("/inv:Invoice/cac:InvoiceLine", namespaces: XMLTests.ubl).evaluateNodes(in: document)
        #expect(lines.count == 5)
        // Each part stands alone: it parses, and declares the cac/cbc prefixes it uses.
        for line in lines {
            let part = try XMLDocument(line)
            let ids = try XPathExpression("/cac:InvoiceLine/cbc:ID", namespaces: XMLTests.ubl).evaluateString(in: part)
            #expect(!ids.isEmpty)
        }
    }

    @Test func oneExpressionServesManyDocumentsAtOnce() async throws {
        let expression = try XPathExpression("count(/orders/order)")
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for count in 1...64 {
                group.addTask {
                    let xml = "<orders>" + String(repeating: "<order/>", count: count) + "</orders>"
                    return try expression.evaluateString(in: XMLDocument(xml)) == String(count)
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }

    @Test func deepAndOversizedDocumentsAreRefusedBeforeTheyCostMuch() throws {
        #expect(XMLLimits.maximumDepth == 256)
        let nested = { (depth: Int) in String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth) }
        #expect(throws: Never.self) { try XMLDocument(nested(250)) }
        #expect {
            try XMLDocument(nested(300), name: "the body")
        } throws: { error in
            "\(error)".hasPrefix("the body is not well-formed XML: elements are nested deeper than 256 levels (xml.max-depth) (line 1")
        }
        let oversized = "<a>" + String(repeating: "x", count: XMLLimits.maximumSize) + "</a>"
        #expect {
            try XMLDocument(oversized, name: "the body")
        } throws: { error in
            "\(error)" == "the body is too large to parse as XML: \(XMLLimits.maximumSize + 7) bytes, the limit is \(XMLLimits.maximumSize) (xml.max-size)"
        }
    }

    @Test func badXPathIsRefusedAtCompileTime() {
        #expect {
            try XPathExpression("/order[total >")
        } throws: { error in
            "\(error)".contains("invalid XPath '/order[total >': invalid expression") && (error as? XMLError)?.column == 15
        }
    }

    @Test func undeclaredPrefixIsRefusedAtCompileTime() {
        #expect {
            try XPathExpression("/inv:Invoice/cbc:ID", namespaces: XPathNamespaces([("inv", "urn:x")]))
        } throws: { error in
            "\(error)".contains("namespace prefix 'cbc', which is not declared")
        }
        #expect(throws: Never.self) { try XPathExpression("child::order[@a='x:y']") }
    }

    @Test func malformedXMLSaysWhere() {
        #expect {
            try XMLDocument("<order>\n  <total>12</totl>\n</order>")
        } throws: { error in
            let error = error as? XMLError
            return error?.line == 2 && error?.message.contains("not well-formed") == true
        }
    }

    @Test func documentsDeclaringExternalEntitiesAreRefusedNamingTheEntity() throws {
        // Such an entity is never loaded; the document is refused rather than read with the
        // entity's text gone (the well-formed variant points at /etc/passwd).
        let cases = [
            ("patt-classic-xxe-etc-passwd.wellformed.xml", #"'file' (SYSTEM "file:///etc/passwd")"#),
            ("defusedxml-external.xml", #"'ee' (SYSTEM "http://www.w3schools.com/xml/note.xml")"#),
            ("defusedxml-external_file.xml", "'ee'"),
            ("patt-xxe-b64-data-uri-parameter-entity.xml", "'%init'"),
            ("patt-xxe-php-wrapper.xml", "'xxe'"),
        ]
        for (name, entity) in cases {
            #expect {
                try XMLDocument(try XMLTests.file("attacks/xml/\(name)"), name: "the body")
            } throws: { error in
                "\(error)".contains("the body declares the external entity \(entity)") && "\(error)".contains("external entities are never loaded")
            }
        }
        // Internal entities are read as ever.
        let local = try XMLDocument(#"<!DOCTYPE a [<!ENTITY who "world">]><a>hello &who;</a>"#)
        #expect(try XPathExpression("string(/a)").evaluateString(in: local) == "hello world")
    }

    @Test(arguments: [
        "defusedxml-cyclic.xml", "defusedxml-xmlbomb.xml", "defusedxml-quadratic.xml",
        "libxml2-lol_classic.xml", "libxml2-lol_ig_attr.xml", "libxml2-lol_param.xml", "patt-billion-laughs-a4.xml",
    ])
    func entityBombsAreRefusedWithAClearError(_ name: String) throws {
        let text = try XMLTests.file("attacks/xml/\(name)")
        #expect {
            try XMLDocument(text)
        } throws: { error in
            "\(error)".contains("entity expansion refused")
        }
    }

    @Test(arguments: ["defusedxml-dtd.xml", "defusedxml-simple.xml", "libxml2-good.xml"])
    func harmlessDocumentsWithDTDsStillParse(_ name: String) throws {
        let document = try XMLDocument(try XMLTests.file("attacks/xml/\(name)"))
        #expect(try XPathExpression("boolean(/*)").evaluateBoolean(in: document))
    }
}
