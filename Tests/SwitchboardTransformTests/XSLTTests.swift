// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import Synchronization
import SwitchboardTestServers
import Testing

@Suite struct XSLTTests {
    static let data = Fixtures.root
    /// The SFTI render-billing-3 set is GPL-3.0, so it is read from the shared data only.
    static let render = Fixtures.shared("xslt/sfti-render-billing-3/render-billing-3.xsl")
    static let codeLists = "\(data)/xslt/ubl-oasis/UBL-DefaultDTQ-2.1.xsl"

    static func transform(_ stylesheet: XSLTStylesheet, file: String, parameters: [(String, String)] = []) throws -> [UInt8] {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        return try data.withUnsafeBytes { try stylesheet.transform($0, name: file, parameters: parameters) }
    }

    /// What xsltproc writes for the same stylesheet and input.
    static func xsltproc(_ arguments: [String]) throws -> (status: Int32, output: [UInt8]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/xsltproc")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, Array(output))
    }

    static func folder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-xslt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test(.enabled(if: Fixtures.hasShared, "needs SWITCHBOARD_TEST_SHARED_DATA (GPL and EUPL files)"))
    func renderingMatchesTheRecordedXsltprocOutput() throws {
        let stylesheet = try XSLTStylesheet(path: Self.render)
        #expect(stylesheet.outputMethod == "html")
        #expect(stylesheet.mediaType == "text/html")
        let result = try Self.transform(stylesheet, file: Fixtures.shared("xml/en16931/ubl-tc434-example1.xml"))
        let expected = try Data(contentsOf: URL(fileURLWithPath: Fixtures.shared("xslt/expected-generated/render-billing-3/ubl-tc434-example1.html")))
        #expect(result == Array(expected))
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/xsltproc"), "needs xsltproc (make test installs it)"),
        .enabled(if: Fixtures.hasShared, "needs SWITCHBOARD_TEST_SHARED_DATA (the GPL render-billing-3 set)"),
        arguments: ["UBL-Invoice-2.1-Example.xml", "UBL-CreditNote-2.1-Example.xml", "UBL-Invoice-2.1-Example-Trivial.xml"]
    )
    func outputIsByteIdenticalToXsltproc(_ name: String) throws {
        let input = "\(Self.data)/xml/ubl/\(name)"
        let stylesheet = try XSLTStylesheet(path: Self.render)
        let reference = try Self.xsltproc([Self.render, input])
        #expect(reference.status == 0)
        #expect(!reference.output.isEmpty)
        #expect(try Self.transform(stylesheet, file: input) == reference.output)

        let checks = try XSLTStylesheet(path: Self.codeLists)
        let good = "\(Self.data)/xml/ubl/order-test-good.xml"
        #expect(try Self.transform(checks, file: good) == Self.xsltproc([Self.codeLists, good]).output)
    }

    @Test func terminatingMessageFailsWithItsText() throws {
        let stylesheet = try XSLTStylesheet(path: Self.codeLists)
        let expected = try String(contentsOfFile: "\(Self.data)/xslt/expected-generated/ubl-dtq/order-test-bad2.messages.txt", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect {
            try Self.transform(stylesheet, file: "\(Self.data)/xml/ubl/order-test-bad2.xml")
        } throws: { error in
            let text = "\(error)"
            return text.contains("the stylesheet stopped the transform") && text.contains(expected)
        }
    }

    @Test(.enabled(if: Fixtures.hasShared, "needs SWITCHBOARD_TEST_SHARED_DATA (the EUPL EN 16931 stylesheet)"))
    func xslt2IsRefusedClearly() {
        #expect {
            try XSLTStylesheet(path: Fixtures.shared("xslt/en16931/EN16931-UBL-validation.xslt"))
        } throws: { error in
            "\(error)".contains("XSLT 2.0 is not supported")
        }
    }

    @Test(arguments: ["defusedxml-xalan_exec.xsl", "defusedxml-xalan_write.xsl"])
    func hostileStylesheetsRunNothingAndWriteNothing(_ name: String) throws {
        let folder = try Self.folder()
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(folder)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        let stylesheet = try XSLTStylesheet(path: "\(Self.data)/attacks/xslt/\(name)")
        #expect(throws: XSLTError.self) {
            try Self.transform(stylesheet, file: "\(Self.data)/xml/ubl/order-test-good.xml")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty, "the stylesheet wrote a file")
    }

    @Test func writingFilesIsForbidden() throws {
        let folder = try Self.folder()
        let target = folder + "/written.txt"
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
            xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">
          <xsl:template match="/">
            <exsl:document href="\(target)" method="text">secret</exsl:document>
            <done/>
          </xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/write.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/write.xsl")
        #expect(throws: XSLTError.self) {
            try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) }
        }
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func documentReadsStayInsideTheStylesheetsFolder() throws {
        let folder = try Self.folder()
        try "<codes><code>EU</code></codes>".write(toFile: folder + "/codes.xml", atomically: true, encoding: .utf8)
        let outside = try Self.folder() + "/outside.xml"
        try "<codes><code>LEAKED</code></codes>".write(toFile: outside, atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:template match="/">
            <xsl:value-of select="document('codes.xml')/codes/code"/>
            <xsl:text>|</xsl:text>
            <xsl:value-of select="document('\(outside)')/codes/code"/>
          </xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/read.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/read.xsl")
        #expect(stylesheet.mediaType == "text/plain")
        // A file outside the tree fails the transform with the reason (not an empty node-set).
        #expect {
            try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) }
        } throws: { error in
            "\(error)".contains("document('\(outside)'): \(outside) is outside the folder this stylesheet may read (\(folder))")
        }
        // Widening the allowed tree lets the outside file in.
        let widened = try XSLTStylesheet(path: folder + "/read.xsl", allowedRoot: "/tmp")
        let more = String(decoding: try Array("<a/>".utf8).withUnsafeBytes { try widened.transform($0) }, as: UTF8.self)
        #expect(more == "EU|LEAKED")
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><xsl:value-of select="document('/etc/passwd')"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/passwd.xsl", atomically: true, encoding: .utf8)
        let passwd = try XSLTStylesheet(path: folder + "/passwd.xsl", allowedRoot: "/tmp")
        #expect {
            try Array("<a/>".utf8).withUnsafeBytes { try passwd.transform($0) }
        } throws: { error in
            "\(error)".contains("/etc/passwd is outside the folder this stylesheet may read")
        }
        // The network is refused outright: the transform fails.
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><xsl:copy-of select="document('http://127.0.0.1:1/x.xml')"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/network.xsl", atomically: true, encoding: .utf8)
        let network = try XSLTStylesheet(path: folder + "/network.xsl")
        #expect(throws: XSLTError.self) { try Array("<a/>".utf8).withUnsafeBytes { try network.transform($0) } }
    }

    @Test func includesOutsideTheFolderAreRefusedAtCompileTime() throws {
        let folder = try Self.folder()
        let other = try Self.folder()
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template name="x"/></xsl:stylesheet>
        """.write(toFile: other + "/lib.xsl", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:include href="\(other)/lib.xsl"/>
        </xsl:stylesheet>
        """.write(toFile: folder + "/main.xsl", atomically: true, encoding: .utf8)
        #expect(throws: XSLTError.self) { try XSLTStylesheet(path: folder + "/main.xsl") }
    }

    @Test func parametersArePassedAsStrings() throws {
        let folder = try Self.folder()
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:param name="who" select="'nobody'"/>
          <xsl:param name="expr"/>
          <xsl:template match="/"><xsl:value-of select="concat($who, ' ', $expr)"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/params.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/params.xsl")
        let result = try Array("<a/>".utf8).withUnsafeBytes {
            try stylesheet.transform($0, parameters: [("who", "O'Brien \"Jr\""), ("expr", "1+1")])
        }
        #expect(String(decoding: result, as: UTF8.self) == "O'Brien \"Jr\" 1+1")
        let defaults = try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) }
        #expect(String(decoding: defaults, as: UTF8.self) == "nobody ")
    }

    @Test func oneCompiledStylesheetServesConcurrentTransforms() async throws {
        let stylesheet = try XSLTStylesheet(path: Fixtures.repository + "/Mappings/ubl/invoice-to-canonical.xsl")
        let input = "\(Self.data)/xml/ubl/UBL-Invoice-2.1-Example.xml"
        let first = try Self.transform(stylesheet, file: input)
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 {
                group.addTask { try Self.transform(stylesheet, file: input) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == first })
    }

    @Test(arguments: try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("attacks/xml")).sorted())
    func hostileInputIsRefusedOrHarmless(_ name: String) throws {
        let folder = try Self.folder()
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:template match="/"><xsl:value-of select="string(.)"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/text.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/text.xsl")
        do {
            let result = try Self.transform(stylesheet, file: "\(Self.data)/attacks/xml/\(name)")
            let text = String(decoding: result, as: UTF8.self)
            #expect(!text.contains("root:"), "\(name) leaked a local file")
            #expect(result.count < 1_000_000, "\(name) expanded to \(result.count) bytes")
        } catch {
            // Refused: fine.
        }
    }

    @Test func documentResolvesARelativeURIAgainstTheNodesBaseURI() throws {
        let folder = try Self.folder()
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try "<data><ref href='lookup.xml'/></data>".write(toFile: folder + "/sub/data.xml", atomically: true, encoding: .utf8)
        try "<lookup><v>found</v></lookup>".write(toFile: folder + "/sub/lookup.xml", atomically: true, encoding: .utf8)
        try "<lookup><v>beside the input</v></lookup>".write(toFile: folder + "/lookup.xml", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:template match="/">
            <xsl:variable name="data" select="document('sub/data.xml')"/>
            <xsl:value-of select="document($data/data/ref/@href, $data)/lookup/v"/>|<xsl:value-of select="document('lookup.xml', /)/lookup/v"/>
          </xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/resolve.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/resolve.xsl")
        // The second resolves against the input's own URI, given as xsltproc has it.
        let output = try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0, baseURI: folder + "/input.xml") }
        #expect(String(decoding: output, as: UTF8.self) == "found|beside the input")
        // Without a base URI the input's nodes have none: the call fails instead of going on empty.
        #expect {
            try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) }
        } throws: { error in
            "\(error)".contains("document('lookup.xml')")
        }
    }

    @Test func messagesThatDoNotStopTheTransformAreHandedOver() throws {
        let folder = try Self.folder()
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><xsl:message>first</xsl:message><out/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/talk.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/talk.xsl")
        var messages: [String] = []
        _ = try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) { messages.append($0) } }
        #expect(messages == ["first"])
    }

    /// Debian's docbook-xsl (make test installs it): modules that declare
    /// `<!ENTITY % … SYSTEM "../common/entities.ent">` and l10n files that load their
    /// languages as external entities.
    static let docbook = "/usr/share/xml/docbook/stylesheet/docbook-xsl"

    static let docbookArticle = """
    <?xml version="1.0"?>
    <article xmlns="http://docbook.org/ns/docbook" version="5.0">
      <title>Switchboard</title>
      <para>Routes carry <emphasis>messages</emphasis> between partners.</para>
      <section><title>Drops</title><para>Files wait in <filename>var/inbox</filename>.</para>
        <itemizedlist><listitem><para>SFTP</para></listitem><listitem><para>FTP</para></listitem></itemizedlist>
      </section>
    </article>
    """

    @Test func theStockDocBookStylesheetsCompileAndWriteWhatXsltprocWrites() throws {
        try #require(FileManager.default.fileExists(atPath: Self.docbook + "/html/docbook.xsl"), "docbook-xsl is not installed (make test installs it)")
        let folder = try Self.folder()
        let article = folder + "/article.xml"
        try Self.docbookArticle.write(toFile: article, atomically: true, encoding: .utf8)
        for name in ["html/docbook.xsl", "fo/docbook.xsl", "manpages/docbook.xsl"] {
            let stylesheet = try XSLTStylesheet(path: Self.docbook + "/" + name, allowedRoot: Self.docbook)
            let data = try Data(contentsOf: URL(fileURLWithPath: article))
            var messages: [String] = []
            let output = try data.withUnsafeBytes { try stylesheet.transform($0, name: article, baseURI: article) { messages.append($0) } }
            let expected = try Self.xsltproc([Self.docbook + "/" + name, article])
            #expect(expected.status == 0, "\(name)")
            #expect(output == expected.output, "\(name): \(output.count) bytes against xsltproc's \(expected.output.count)")
            #expect(messages.first?.contains("namesp. cut") == true, "\(name): \(messages)")
        }
        // chunk.xsl compiles too; it writes its pages as files (exsl:document), which a
        // stylesheet here may not, and the transform fails saying so.
        let chunk = try XSLTStylesheet(path: Self.docbook + "/html/chunk.xsl", allowedRoot: Self.docbook)
        #expect {
            try Data(contentsOf: URL(fileURLWithPath: article)).withUnsafeBytes { try chunk.transform($0) }
        } throws: { error in
            "\(error)".contains("File write for index.html refused")
        }
    }

    @Test func documentFilesAreParsedOnceAndKept() throws {
        let folder = try Self.folder()
        try "<codes><code>first</code></codes>".write(toFile: folder + "/codes.xml", atomically: true, encoding: .utf8)
        try """
        <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:output method="text"/>
          <xsl:template match="/"><xsl:value-of select="document('codes.xml')/codes/code"/></xsl:template>
        </xsl:stylesheet>
        """.write(toFile: folder + "/read.xsl", atomically: true, encoding: .utf8)
        let stylesheet = try XSLTStylesheet(path: folder + "/read.xsl")
        func run() throws -> String {
            String(decoding: try Array("<a/>".utf8).withUnsafeBytes { try stylesheet.transform($0) }, as: UTF8.self)
        }
        #expect(try run() == "first")
        // Changing the file afterwards changes nothing: the parsed document is kept.
        try "<codes><code>second</code></codes>".write(toFile: folder + "/codes.xml", atomically: true, encoding: .utf8)
        #expect(try run() == "first")
        #expect(try run() == "first")
    }
}
