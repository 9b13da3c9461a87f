// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform
import Synchronization
import SwitchboardTestServers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `switchboard` executable, as a user would.
@Suite(.serialized)
struct CLITests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("switchboard").path
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs the CLI to completion.
    static func run(_ arguments: [String], in directory: String = repository, executable: String = binary) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to the end before waiting, so a full pipe never blocks the child.
        let errData = Mutex(Data())
        let errReader = Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errReader.isExecuting || !errReader.isFinished { usleep(1000) }
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self)
        )
    }

    static func temporaryFolder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/routes", withIntermediateDirectories: true)
        return folder
    }

    @Test func checkAcceptsTheDemoRoutes() throws {
        let output = try Self.run(["check"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("9 routes in 2 files: OK"), "\(output.stdout)")
        #expect(output.stdout.contains("orders  from http:/orders?method=POST  (Routes/demo.yaml:"))
        #expect(output.stdout.contains("ach-entries  from file:var/inbox/ach?"), "\(output.stdout)")
    }

    @Test func checkReportsEveryErrorAndExitsOne() throws {
        let folder = try Self.temporaryFolder()
        try """
        routes:
          - id: a
            from: http:/a
            steps:
              - sett-header: { name: X, value: y }
          - id: b
            steps:
              - to: "htp://x"
        """.write(toFile: folder + "/routes/bad.yaml", atomically: true, encoding: .utf8)
        let output = try Self.run(["check", "--routes", folder + "/routes"])
        #expect(output.status == 1)
        let lines = output.stderr.split(separator: "\n").map(String.init)
        #expect(lines == [
            "\(folder)/routes/bad.yaml:5:9: error: unknown step 'sett-header'; did you mean 'set-header'?",
            "\(folder)/routes/bad.yaml:6:5: error: route 'b' has no 'from'; expected a source endpoint such as 'from: http:/orders?method=POST'",
            "\(folder)/routes/bad.yaml:8:14: error: unknown scheme 'htp'; did you mean 'http'?",
            "3 errors",
        ])
    }

    @Test func checkReportsConfigErrors() throws {
        let folder = try Self.temporaryFolder()
        try "http: { lisen: \":1\" }\n".write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        let output = try Self.run(["check", "--config", folder + "/switchboard.yaml"])
        #expect(output.status == 1)
        #expect(output.stderr.hasPrefix("\(folder)/switchboard.yaml:1:9: error: unknown node config key 'http.lisen'; did you mean 'http.listen'?"))
        let missing = try Self.run(["check", "--config", folder + "/nope.yaml"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("config file '\(folder)/nope.yaml' does not exist"))
    }

    @Test func checkFailsOnWhatRunRefusesAndOnFilesThatAreNotUTF8() throws {
        let folder = try Self.temporaryFolder()
        try "routes: []\n".write(toFile: folder + "/routes/none.yaml", atomically: true, encoding: .utf8)
        // An admin API open to the network needs a token; blanks are none.
        for token in ["", "  token: \"   \"\n"] {
            try "routes: routes\nadmin:\n  listen: \"0.0.0.0:0\"\n\(token)".write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
            let output = try Self.run(["check", "--config", folder + "/switchboard.yaml"])
            #expect(output.status == 1, "\(output.stdout)")
            #expect(output.stderr.contains("\(folder)/switchboard.yaml:3:12: error: admin.listen is 0.0.0.0:0, which is not loopback, and no admin token is set"), "\(output.stderr)")
        }
        // A route file with a byte that is not UTF-8, on its third line.
        try "routes: routes\n".write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        try Data("routes:\n  - id: caf\u{E9}\n    from: direct:caf".utf8 + [0xE9] + Data("\n".utf8)).write(to: URL(fileURLWithPath: folder + "/routes/none.yaml"))
        let latin1 = try Self.run(["check", "--config", folder + "/switchboard.yaml"])
        #expect(latin1.status == 1)
        #expect(latin1.stderr.contains("routes/none.yaml:3:21: error: the file is not UTF-8: byte 0xE9 cannot be read as UTF-8"), "\(latin1.stderr)")
    }

    @Test func helpTextsAreWrappedOnceAndTheirExamplesStayWhole() throws {
        for command in ["", "run", "check", "trace", "send", "replay", "routes", "services", "sla", "dead-letters",
                        "transform", "convert", "validate", "eval", "schema", "adapters"] {
            let output = try Self.run(command.isEmpty ? ["--help"] : [command, "--help"])
            #expect(output.status == 0, "\(command)")
            let text = output.stdout.components(separatedBy: "\nUSAGE:")[0]
            let lines = text.components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where !line.hasPrefix(" ") && !line.isEmpty {
                // A line wrapped twice leaves a short line (an orphan word) inside a paragraph.
                let next = index + 1 < lines.count ? lines[index + 1] : ""
                if !next.isEmpty, !next.hasPrefix(" "), !line.hasSuffix(":") {
                    #expect(line.count > 55, "\(command): a short line inside a paragraph: '\(line)'")
                }
                #expect(line.count <= 80, "\(command): '\(line)'")
            }
            // Examples keep their indentation: none is broken onto a line of its own.
            if let examples = text.components(separatedBy: "Examples:\n").dropFirst().first {
                for line in examples.components(separatedBy: "\n") where !line.isEmpty {
                    #expect(line.hasPrefix("  "), "\(command): an example broken across lines: '\(line)'")
                }
            }
        }
        // The transform example names the stylesheet that ships.
        #expect(FileManager.default.fileExists(atPath: Self.repository + "/Mappings/ubl/invoice-to-canonical.xsl"))
        #expect(try Self.run(["transform", "--help"]).stdout.contains("Mappings/ubl/invoice-to-canonical.xsl"))
    }

    @Test func schemaIsJSONSchemaCoveringEveryStep() throws {
        let output = try Self.run(["schema"])
        #expect(output.status == 0)
        let schema = try JSONValue(parsing: output.stdout)
        #expect(schema["$schema"] == .string("https://json-schema.org/draft/2020-12/schema"))
        let definitions = try #require(schema["$defs"])
        for step in ["log", "set-header", "remove-header", "set-body", "choice", "filter", "to", "wire-tap", "multicast", "split", "route", "stop"] {
            #expect(definitions["step-\(step)"] != nil, "\(step)")
        }
        #expect(definitions["route"]?["required"] == .array([.string("id"), .string("from")]))
        #expect(definitions["predicate"]?["properties"]?["matches"] != nil)
        // Every $ref points at a definition that exists.
        var references: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let members):
                for member in members {
                    if member.key == "$ref", case .string(let target) = member.value { references.append(target) }
                    collect(member.value)
                }
            case .array(let items): items.forEach(collect)
            default: break
            }
        }
        collect(schema)
        #expect(!references.isEmpty)
        for reference in references {
            let name = String(reference.dropFirst("#/$defs/".count))
            #expect(definitions[name] != nil, "\(reference)")
        }
    }

    @Test func adaptersListsSchemesAndOptions() throws {
        let text = try Self.run(["adapters"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("http: https:  HTTP in"))
        #expect(text.stdout.contains("    maxBodySize (size, from)"))
        #expect(text.stdout.contains("    timeout (duration, to, default 30s)"))
        #expect(text.stdout.contains("direct:"))
        let json = try JSONValue(parsing: try Self.run(["adapters", "--json"]).stdout)
        guard case .array(let adapters) = json else {
            Issue.record("not an array")
            return
        }
        #expect(adapters.first?["schemes"] == .array([.string("http"), .string("https")]))
    }

    @Test(arguments: ["run", "check", "trace", "routes", "sla", "send", "transform", "validate", "eval", "schema", "adapters"])
    func everySubcommandExplainsItselfWithAnExample(_ command: String) throws {
        let output = try Self.run([command, "--help"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("Examples:"))
        #expect(output.stdout.contains("switchboard \(command)"))
    }

    @Test func aTakenListenAddressIsAClearErrorNotAHang() throws {
        // Hold a port, then ask the node to listen on it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let held = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(held)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let folder = try Self.temporaryFolder()
        try """
        http: { listen: "127.0.0.1:\(port)" }
        admin: { listen: "127.0.0.1:0" }
        routes: routes
        """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)
        let output = try Self.run(["run", "--config", folder + "/switchboard.yaml"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("error: the HTTP listener (http.listen) cannot listen on 127.0.0.1:\(port): address already in use"), "\(output.stderr)")
    }

    /// A backend whose `/slow` answers 1.5 s after the request arrives, and says when it did.
    struct SlowBackend: HTTPResponder {
        typealias Context = BasicRequestContext
        let arrived: AsyncValue<Void>

        func respond(to request: Request, context: Context) async throws -> Response {
            arrived.set(())
            try await Task.sleep(for: .milliseconds(1500))
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "slow reply")))
        }
    }

    @Test func runServesUntilSIGTERMAndFinishesRequestsInFlight() async throws {
        let arrived = AsyncValue<Void>()
        let backendPort = AsyncValue<Int>()
        var logger = Logger(label: "slow-backend")
        logger.logLevel = .critical
        let backend = Application(
            responder: SlowBackend(arrived: arrived),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { backendPort.set($0.localAddress?.port ?? 0) },
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await backend.run() }
            let port = await backendPort.value
            let folder = try Self.temporaryFolder()
            try """
            routes:
              - id: slow
                from: http:/slow?method=GET
                steps:
                  - to: "http://127.0.0.1:\(port)/slow"
            """.write(toFile: folder + "/routes/slow.yaml", atomically: true, encoding: .utf8)
            try """
            http: { listen: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            routes: routes
            """.write(toFile: folder + "/switchboard.yaml", atomically: true, encoding: .utf8)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = ["run", "--config", folder + "/switchboard.yaml"]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            let log = Mutex("")
            err.fileHandleForReading.readabilityHandler = { handle in
                let chunk = String(decoding: handle.availableData, as: UTF8.self)
                log.withLock { $0 += chunk }
            }
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

            // Wait for the listener's log line to learn its port.
            var nodePort: Int?
            for _ in 0..<500 where nodePort == nil {
                let text = log.withLock { $0 }
                if let match = text.firstMatch(of: /HTTP listener ready address=127\.0\.0\.1:(\d+)/) {
                    nodePort = Int(match.1)
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let httpPort = try #require(nodePort, "no listener line in: \(log.withLock { $0 })")

            // Start a request, and once the backend has it, ask the node to stop.
            async let reply = NodeTests.get("http://127.0.0.1:\(httpPort)/slow")
            await arrived.value
            kill(process.processIdentifier, SIGTERM)
            let (status, body) = try await reply
            #expect(status == 200)
            #expect(body == "slow reply")
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            #expect(process.terminationStatus == 0)
            err.fileHandleForReading.readabilityHandler = nil
            let text = log.withLock { $0 }
            #expect(text.contains("exchange completed route=slow"))
            #expect(text.contains("stopped"))
            group.cancelAll()
        }
    }

    /// The GPL render-billing-3 set and the EUPL EN 16931 examples stay out of the repository.
    @Test(.enabled(if: Fixtures.hasShared, "needs SWITCHBOARD_TEST_SHARED_DATA (GPL and EUPL files)"))
    func transformWritesWhatXsltprocWritesAndOneFilePerInput() throws {
        let data = try #require(Fixtures.shared)
        let render = "\(data)/xslt/sfti-render-billing-3/render-billing-3.xsl"
        let invoice = "\(data)/xml/en16931/ubl-tc434-example1.xml"
        let single = try Self.run(["transform", "--xslt", render, invoice])
        #expect(single.status == 0, "\(single.stderr)")
        let expected = try String(contentsOfFile: "\(data)/xslt/expected-generated/render-billing-3/ubl-tc434-example1.html", encoding: .utf8)
        #expect(single.stdout == expected)

        // A folder in, a folder out, every input transformed.
        let out = try Self.temporaryFolder() + "/html"
        let many = try Self.run(["transform", "--xslt", render, "--out", out, "\(data)/xml/en16931"])
        #expect(many.status == 0, "\(many.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        let inputs = try FileManager.default.contentsOfDirectory(atPath: "\(data)/xml/en16931").filter { $0.hasSuffix(".xml") }
        #expect(written.count == inputs.count)
        #expect(written.contains("ubl-tc434-example1.html"))
        #expect(try String(contentsOfFile: out + "/ubl-tc434-example1.html", encoding: .utf8) == expected)
        let two = try Self.run(["transform", "--xslt", "\(data)/xslt/en16931/EN16931-UBL-validation.xslt", invoice])
        #expect(two.status == 2)
        #expect(two.stderr.contains("XSLT 2.0 is not supported"))
    }

    @Test func transformExitsOneWhenTheStylesheetStopsAndTwoForXSLT2() throws {
        let stopped = try Self.run(["transform", "--xslt", Fixtures.path("xslt/ubl-oasis/UBL-DefaultDTQ-2.1.xsl"), Fixtures.path("xml/ubl/order-test-bad2.xml")])
        #expect(stopped.status == 1)
        #expect(stopped.stderr.contains("Value supplied 'LA' is unacceptable"), "\(stopped.stderr)")
        let folder = try Self.temporaryFolder()
        try ##"<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"/></xsl:stylesheet>"##
            .write(toFile: folder + "/two.xsl", atomically: true, encoding: .utf8)
        let two = try Self.run(["transform", "--xslt", folder + "/two.xsl", Fixtures.path("xml/ubl/order-test-good.xml")])
        #expect(two.status == 2)
        #expect(two.stderr.contains("XSLT 2.0 is not supported"), "\(two.stderr)")
    }

    @Test func transformPrintsMessagesToStandardErrorAndResolvesAgainstTheInput() throws {
        let folder = try Self.temporaryFolder()
        try "<v>beside</v>".write(toFile: folder + "/near.xml", atomically: true, encoding: .utf8)
        try "<a/>".write(toFile: folder + "/in.xml", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:template match="/"><xsl:message>careful</xsl:message><xsl:value-of select="document('near.xml', /)"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/t.xsl", atomically: true, encoding: .utf8)
        let output = try Self.run(["transform", "--xslt", folder + "/t.xsl", folder + "/in.xml"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "beside")
        #expect(output.stderr == "\(folder)/in.xml: warning: xsl:message: careful\n")
    }

    @Test func validatePrintsSchemaWarningsAndStillValidates() throws {
        let folder = try Self.temporaryFolder()
        let imported = #"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:b"><xs:element name="b"/></xs:schema>"#
        try imported.write(toFile: folder + "/b1.xsd", atomically: true, encoding: .utf8)
        try imported.write(toFile: folder + "/b2.xsd", atomically: true, encoding: .utf8)
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
          <xs:import namespace="urn:b" schemaLocation="b1.xsd"/>
          <xs:import namespace="urn:b" schemaLocation="b2.xsd"/>
          <xs:element name="a" type="xs:string"/>
        </xs:schema>
        """.write(toFile: folder + "/a.xsd", atomically: true, encoding: .utf8)
        try "<a>x</a>".write(toFile: folder + "/doc.xml", atomically: true, encoding: .utf8)
        let output = try Self.run(["validate", "--xsd", folder + "/a.xsd", folder + "/doc.xml"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stderr.contains("\(folder)/a.xsd:3: warning: "), "\(output.stderr)")
        #expect(output.stderr.contains("Skipping import of schema"), "\(output.stderr)")
        #expect(output.stdout.contains("valid against"))
    }

    @Test func validateExitsZeroOneOrTwo() throws {
        let data = Fixtures.root
        let schema = "\(data)/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"
        let valid = try Self.run(["validate", "--xsd", schema, "--allow", "\(data)/xsd/ubl-2.1", "\(data)/xml/ubl/UBL-Invoice-2.1-Example.xml"])
        #expect(valid.status == 0, "\(valid.stderr)")
        #expect(valid.stdout.contains("valid against"))
        let folder = try Self.temporaryFolder()
        let broken = try String(contentsOfFile: "\(data)/xml/ubl/UBL-Invoice-2.1-Example.xml", encoding: .utf8)
            .replacingOccurrences(of: "<cbc:IssueDate>2009-12-15</cbc:IssueDate>", with: "<cbc:IssueDate>soon</cbc:IssueDate>")
        try broken.write(toFile: folder + "/broken.xml", atomically: true, encoding: .utf8)
        let invalid = try Self.run(["validate", "--xsd", schema, "--allow", "\(data)/xsd/ubl-2.1", folder + "/broken.xml"])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("\(folder)/broken.xml:7: error: "), "\(invalid.stderr)")
        let badSchema = try Self.run(["validate", "--xsd", "\(data)/attacks/xsd/defusedxml-schema-include.xsd", folder + "/broken.xml"])
        #expect(badSchema.status == 2, "\(badSchema.stderr)")
    }

    @Test func validateChecksJSONAgainstAJSONSchema() throws {
        let schema = Self.repository + "/Mappings/canonical/invoice.schema.json"
        let folder = try Self.temporaryFolder()
        try ##"""
        {"invoice": {"@id": "7", "@issued": "2026-11-21", "@currency": "EUR", "seller": {"@name": "S"}, "buyer": {"@name": "B"},
         "lines": {"line": [{"@id": "1", "@quantity": "1", "@amount": "2.50"}]}, "totals": {"@payable": "2.50"}}}
        """##.write(toFile: folder + "/good.json", atomically: true, encoding: .utf8)
        try ##"{"invoice": {"@id": "7", "@issued": "21.11.2026", "@currency": "EUR"}}"##.write(toFile: folder + "/bad.json", atomically: true, encoding: .utf8)
        try ##"{"type": 3}"##.write(toFile: folder + "/schema.json", atomically: true, encoding: .utf8)

        let valid = try Self.run(["validate", "--json-schema", schema, folder + "/good.json"])
        #expect(valid.status == 0, "\(valid.stderr)")
        #expect(valid.stdout.contains("good.json: valid against"))
        let invalid = try Self.run(["validate", "--json-schema", schema, folder + "/bad.json"])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("bad.json: /invoice/@issued: pattern: \"21.11.2026\" does not match"), "\(invalid.stderr)")
        #expect(invalid.stderr.contains("bad.json: /invoice: required: required property 'seller' is missing (schema #/properties/invoice/required)"), "\(invalid.stderr)")
        let notJSON = try Self.run(["validate", "--json-schema", schema, schema.replacingOccurrences(of: "invoice.schema.json", with: "invoice.xsd")])
        #expect(notJSON.status == 1)
        #expect(notJSON.stderr.contains("is not JSON"), "\(notJSON.stderr)")
        let badSchema = try Self.run(["validate", "--json-schema", folder + "/schema.json", folder + "/good.json"])
        #expect(badSchema.status == 2)
        #expect(badSchema.stderr.contains("schema.json: at #/type:"), "\(badSchema.stderr)")
        let both = try Self.run(["validate", "--json-schema", schema, "--xsd", "x.xsd", folder + "/good.json"])
        #expect(both.status != 0 && both.stderr.contains("give one schema"), "\(both.stderr)")
    }

    @Test func validateServesRemoteSchemaURIsFromFolders() throws {
        let folder = try Self.temporaryFolder()
        try FileManager.default.createDirectory(atPath: folder + "/partner/common", withIntermediateDirectories: true)
        try ##"{"$id": "https://schemas.partner.example/common/id.json", "type": "string", "minLength": 3}"##.write(toFile: folder + "/partner/common/id.json", atomically: true, encoding: .utf8)
        try ##"{"properties": {"id": {"$ref": "https://schemas.partner.example/common/id.json"}}}"##.write(toFile: folder + "/order.json", atomically: true, encoding: .utf8)
        try ##"{"id": "ab"}"##.write(toFile: folder + "/short.json", atomically: true, encoding: .utf8)
        let mapped = try Self.run(["validate", "--json-schema", folder + "/order.json", "--resource", "https://schemas.partner.example/=" + folder + "/partner", folder + "/short.json"])
        #expect(mapped.status == 1 && mapped.stderr.contains("short.json: /id: minLength"), "\(mapped.stderr)")
        let unmapped = try Self.run(["validate", "--json-schema", folder + "/order.json", folder + "/short.json"])
        #expect(unmapped.status == 2 && unmapped.stderr.contains("cannot resolve 'https://schemas.partner.example/common/id.json'"), "\(unmapped.stderr)")
        let malformed = try Self.run(["validate", "--json-schema", folder + "/order.json", "--resource", folder + "/partner", folder + "/short.json"])
        #expect(malformed.status != 0 && malformed.stderr.contains("give URI=DIR"), "\(malformed.stderr)")
        // The meta-schema is built in: a schema can be checked against it without the network.
        try ##"{"$ref": "https://json-schema.org/draft/2020-12/schema"}"##.write(toFile: folder + "/meta.json", atomically: true, encoding: .utf8)
        let metaChecked = try Self.run(["validate", "--json-schema", folder + "/meta.json", folder + "/order.json"])
        #expect(metaChecked.status == 0, "\(metaChecked.stderr)")
    }

    @Test func evalPrintsJSONAndExitsTwoForABadExpression() throws {
        let folder = try Self.temporaryFolder()
        try #"{"items":[{"name":"a","price":5},{"name":"b","price":15}]}"#.write(toFile: folder + "/order.json", atomically: true, encoding: .utf8)
        let selected = try Self.run(["eval", "--jsonpath", "$.items[?@.price > 10].name", folder + "/order.json"])
        #expect(selected.status == 0, "\(selected.stderr)")
        #expect(try JSONValue(parsing: selected.stdout) == .array([.string("b")]))
        let bad = try Self.run(["eval", "--jsonpath", "$.items[?@.price >", folder + "/order.json"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("invalid JSONPath at column 19"), "\(bad.stderr)")

        let invoice = Fixtures.path("xml/ubl/UBL-Invoice-2.1-Example.xml")
        let cac = "cac=urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
        let count = try Self.run(["eval", "--xpath", "count(//cac:InvoiceLine)", "--ns", cac, invoice])
        #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "\(count.stdout) \(count.stderr)")
        let nodes = try Self.run(["eval", "--xpath", "/*/*[local-name()='ID']", invoice])
        #expect(try JSONValue(parsing: nodes.stdout) == .array([.string(#"<cbc:ID xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">TOSL108</cbc:ID>"#)]))
        let undeclared = try Self.run(["eval", "--xpath", "//cac:InvoiceLine", invoice])
        #expect(undeclared.status == 2)
        #expect(undeclared.stderr.contains("namespace prefix 'cac'"))
        let unclosed = try Self.run(["eval", "--xpath", "count(//cac:InvoiceLine[@id='1]", "--ns", cac, invoice])
        #expect(unclosed.status == 2)
        #expect(unclosed.stderr.contains("unfinished literal (column 32)"), "\(unclosed.stderr)")
        let notJSON = try Self.run(["eval", "--jsonpath", "$.a", invoice])
        #expect(notJSON.status == 1)
    }
}
