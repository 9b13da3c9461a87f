import Foundation
import SwitchboardTransform
import Testing

@Suite struct XSDTests {
    static let data = "/work/shared/data"
    static let invoiceSchema = "\(data)/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func ublExamplesValidateAgainstTheirSchemaWithImportsInsideTheTree() throws {
        // The maindoc schema imports ../common/…: allowed when the tree is the UBL folder.
        let schema = try XSDSchema(path: Self.invoiceSchema, allowedRoot: "\(Self.data)/xsd/ubl-2.1")
        for name in ["xml/ubl/UBL-Invoice-2.1-Example.xml", "xml/en16931/ubl-tc434-example1.xml"] {
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
