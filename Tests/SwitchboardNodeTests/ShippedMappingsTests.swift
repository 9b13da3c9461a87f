// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore
import SwitchboardNode
import SwitchboardTestServers
import Testing

/// The shipped demo routes and mappings, end to end over HTTP.
@Suite(.serialized)
struct ShippedMappingsTests {
    @Test func ublInvoiceBecomesCanonicalXMLAndPartnerJSON() async throws {
        var configuration = NodeConfiguration(environment: [:])
        configuration.httpListen = .init(host: "127.0.0.1", port: 0)
        configuration.adminListen = .init(host: "127.0.0.1", port: 0)
        configuration.routesDirectory = CLITests.repository + "/Routes"
        configuration.mappingsDirectory = CLITests.repository + "/Mappings"
        configuration.dataDirectory = try CLITests.temporaryFolder() + "/var"
        let node = try await SwitchboardNode(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run(gracefulShutdownSignals: []) }
            let http = try #require(await node.httpPort)
            let invoice = try String(contentsOfFile: Fixtures.path("xml/ubl/UBL-Invoice-2.1-Example.xml"), encoding: .utf8)

            let canonical = try await post("http://127.0.0.1:\(http)/canonical/invoices", invoice)
            #expect(canonical.status == 200)
            #expect(canonical.body.contains(#"<invoice id="TOSL108" issued="2009-12-15" currency="EUR""#), "\(canonical.body)")
            #expect(canonical.headers.contains { $0.0.lowercased() == "content-type" && $0.1 == "application/xml" })

            let partner = try await post("http://127.0.0.1:\(http)/partner/invoices", invoice)
            #expect(partner.status == 200, "\(partner.body)")
            let json = try JSONSerialization.jsonObject(with: Data(partner.body.utf8)) as? [String: Any]
            #expect(json?["documentNumber"] as? String == "TOSL108")
            #expect(json?["documentDate"] as? String == "15.12.2009")
            #expect((json?["amounts"] as? [String: Any])?["payable"] as? Double == 729)
            #expect((json?["positions"] as? [Any])?.count == 5)

            // The canonical XSD check catches what the stylesheet cannot fix: no issue date.
            let undated = invoice.replacingOccurrences(of: "<cbc:IssueDate>2009-12-15</cbc:IssueDate>", with: "")
            #expect(undated != invoice)
            let refused = try await post("http://127.0.0.1:\(http)/canonical/invoices", undated)
            #expect(refused.status == 400)
            #expect(refused.body.contains("not valid against canonical/invoice.xsd"), "\(refused.body)")

            // The JSON Schema check between xml-to-json and map: a canonical invoice whose
            // issue date the XSD accepts but is not a plain date (xs:date allows a zone).
            let zoned = invoice.replacingOccurrences(of: "<cbc:IssueDate>2009-12-15</cbc:IssueDate>", with: "<cbc:IssueDate>2009-12-15Z</cbc:IssueDate>")
            let unzoned = try await post("http://127.0.0.1:\(http)/partner/invoices", zoned)
            #expect(unzoned.status == 400)
            #expect(unzoned.body.contains("not valid against canonical/invoice.schema.json (1 problem): /invoice/@issued: pattern"), "\(unzoned.body)")
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}
