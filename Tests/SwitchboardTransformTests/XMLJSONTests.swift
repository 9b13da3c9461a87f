// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

@Suite struct XMLJSONTests {
    /// Every XML example in the fixtures, and those of the shared data kept out of the
    /// repository for their licence (EN 16931, bank samples) when it is there.
    static let examples: [String] = {
        func xmlFiles(_ root: String) -> [String] {
            let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
            return files.filter { $0.lowercased().hasSuffix(".xml") }.sorted().map { root + "/" + $0 }
        }
        let own = xmlFiles(Fixtures.path("xml"))
        let ownNames = Set(own.map { ($0 as NSString).lastPathComponent })
        let shared = Fixtures.shared.map { xmlFiles($0 + "/xml") } ?? []
        return own + shared.filter { !ownNames.contains(($0 as NSString).lastPathComponent) }
    }()

    static func document(_ text: String) throws -> XMLDocument { try XMLDocument(text) }

    @Test func theConventionOnASmallDocument() throws {
        let xml = """
        <inv:Invoice xmlns:inv="urn:inv" xmlns:cbc="urn:cbc" version="2">
          <cbc:ID>42</cbc:ID>
          <cbc:Line n="1">A</cbc:Line>
          <cbc:Line n="2">B</cbc:Line>
          <cbc:Note>mixed <b>bold</b> text</cbc:Note>
          <cbc:Empty/>
        </inv:Invoice>
        """
        let json = XMLJSON.json(from: try Self.document(xml))
        #expect(json.serialized() == """
        {"inv:Invoice":{"@xmlns:inv":"urn:inv","@xmlns:cbc":"urn:cbc","@version":"2","cbc:ID":"42",\
        "cbc:Line":[{"@n":"1","#text":"A"},{"@n":"2","#text":"B"}],"cbc:Note":{"b":"bold","#text":"mixed  text"},"cbc:Empty":""}}
        """)
        // A forced array stays an array with one member.
        let forced = XMLJSON.json(from: try Self.document("<a><b>1</b></a>"), arrays: ["a/b"])
        #expect(forced.serialized() == #"{"a":{"b":["1"]}}"#)
        // And back.
        let back = String(decoding: try XMLJSON.xml(from: json), as: UTF8.self)
        #expect(back.contains(#"<inv:Invoice xmlns:inv="urn:inv" xmlns:cbc="urn:cbc" version="2">"#), "\(back)")
        #expect(back.contains(#"<cbc:Line n="2">B</cbc:Line>"#), "\(back)")
    }

    @Test(arguments: examples)
    func roundTripKeepsElementsAttributesAndText(_ file: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let first = XMLJSON.json(from: try data.withUnsafeBytes { try XMLDocument(bytes: $0, name: file) })
        let xml = try XMLJSON.xml(from: first)
        let second = XMLJSON.json(from: try xml.withUnsafeBytes { try XMLDocument(bytes: $0, name: "round trip") })
        #expect(first == second, "\(file) changed on the way back")
    }

    @Test func jsonThatCannotBeXMLIsAClearError() {
        #expect(throws: XMLError.self) { try XMLJSON.xml(from: .array([])) }
        #expect(throws: XMLError.self) { try XMLJSON.xml(from: .object([("a", .null), ("b", .null)])) }
        #expect(throws: XMLError.self) { try XMLJSON.xml(from: .object([("1bad", .string("x"))])) }
        #expect(throws: XMLError.self) { try XMLJSON.xml(from: .object([("p:a", .string("x"))])) }
    }

    @Test func charactersXMLCannotCarryAreRefusedWithTheirJSONPath() throws {
        let cases: [(json: String, path: String, character: String)] = [
            (#"{"order":{"note":"a\u0000b"}}"#, "$.order.note", "U+0000"),
            (#"{"order":{"@id":"x\u0001"}}"#, "$.order['@id']", "U+0001"),
            (#"{"order":{"line":["ok","bad\u001f"]}}"#, "$.order.line[1]", "U+001F"),
            (##"{"order":{"#text":"\uffff"}}"##, "$.order['#text']", "U+FFFF"),
        ]
        for (json, path, character) in cases {
            #expect {
                try XMLJSON.xml(from: try JSONValue(parsing: json))
            } throws: { error in
                "\(error)" == "the value at \(path) holds \(character), which XML 1.0 cannot carry"
            }
        }
        // Tab, line feed and carriage return are carried.
        let fine = String(decoding: try XMLJSON.xml(from: try JSONValue(parsing: #"{"a":"x\ty\nz\r"}"#)), as: UTF8.self)
        #expect(fine.contains("<a>x\ty\nz&#13;</a>"))
    }
}
