// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SwitchboardTransform
import Synchronization

struct TransformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform",
        abstract: "Run an XSLT 1.0 stylesheet over XML files offline, as a route's xslt step would.",
        discussion: """
        With one input the result goes to standard output ('-' reads standard input). With \
        several inputs or a folder, --out DIR receives one result per input, named after \
        it with the extension the stylesheet's output method implies (.xml, .html, \
        .txt); every core is used. The output is byte for byte what xsltproc writes.

        The stylesheet may read only files in its own folder tree (xsl:include, \
        xsl:import, document()); --allow widens that to another folder. It cannot write \
        files or reach the network. xsl:message terminate="yes" ends the run with the \
        message and exit 1.

        Examples:
          switchboard transform --xslt Mappings/ubl/invoice-to-canonical.xsl \\
              invoice.xml
          switchboard transform --xslt render.xsl --param lang=en --out html/ invoices/
          cat invoice.xml | switchboard transform --xslt check.xsl -
        """
    )

    @Option(help: ArgumentHelp("The XSLT 1.0 stylesheet.", valueName: "file"))
    var xslt: String

    @Option(name: .customLong("param"), help: ArgumentHelp("A stylesheet parameter, NAME=VALUE, passed as a string (repeatable).", valueName: "name=value"))
    var parameters: [String] = []

    @Option(help: ArgumentHelp("Folder for the results (needed for several inputs or a folder).", valueName: "dir"))
    var out: String?

    @Option(help: ArgumentHelp("Folder tree the stylesheet may read, instead of its own folder.", valueName: "dir"))
    var allow: String?

    @Argument(help: ArgumentHelp("XML files or folders; '-' for standard input.", valueName: "input"))
    var inputs: [String]

    func validate() throws {
        for parameter in parameters where !parameter.contains("=") || parameter.hasPrefix("=") {
            throw ValidationError("--param must be NAME=VALUE, found '\(parameter)'")
        }
        if inputs.isEmpty { throw ValidationError("give an input file, a folder, or '-'") }
    }

    func run() async throws {
        let stylesheet: XSLTStylesheet
        do {
            stylesheet = try XSLTStylesheet(path: xslt, allowedRoot: allow)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let pairs = parameters.compactMap(splitPair)
        var files: [String] = []
        for input in inputs {
            var isFolder: ObjCBool = false
            if input != "-", FileManager.default.fileExists(atPath: input, isDirectory: &isFolder), isFolder.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: input).filter { $0.hasSuffix(".xml") }.sorted()
                files += names.map { (input as NSString).appendingPathComponent($0) }
            } else {
                files.append(input)
            }
        }
        guard let out else {
            guard files.count == 1 else {
                throw ValidationError("several inputs need --out DIR for the results")
            }
            let result = try transformOrExit(stylesheet, files[0], pairs)
            FileHandle.standardOutput.write(Data(result))
            return
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let suffix = switch stylesheet.outputMethod { case "html": ".html"; case "text": ".txt"; default: ".xml" }
        // Every core: one thread per core takes the next file. (Threads, not tasks: the
        // transforms block, and Swift tasks here share the event-loop threads.)
        let next = NextIndex()
        let inputFiles = files
        let failed = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: max(1, ProcessInfo.processInfo.activeProcessorCount)) { _ in
            while let index = next.take(below: inputFiles.count) {
                let file = inputFiles[index]
                let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension + suffix
                do {
                    let result = try transform(stylesheet, file, pairs)
                    try writeFile((out as NSString).appendingPathComponent(name), result)
                } catch {
                    printError("error: \(file): \(error)")
                    failed.withLock { $0 += 1 }
                }
            }
        }
        let failures = failed.withLock { $0 }
        if failures > 0 {
            printError("\(failures) of \(files.count) inputs failed")
            throw ExitCode.failure
        }
    }

    private func transformOrExit(_ stylesheet: XSLTStylesheet, _ file: String, _ pairs: [(String, String)]) throws -> [UInt8] {
        do {
            return try transform(stylesheet, file, pairs)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Transforms one input; its path is the document's base URI (as xsltproc has it), and
/// `xsl:message`s that do not stop the transform are printed to standard error.
private func transform(_ stylesheet: XSLTStylesheet, _ file: String, _ pairs: [(String, String)]) throws -> [UInt8] {
    let data = try readInput(file)
    return try data.withUnsafeBytes { bytes in
        try stylesheet.transform(bytes, name: file, parameters: pairs, baseURI: file == "-" ? nil : file) { text in
            printError("\(file): warning: xsl:message: \(text)")
        }
    }
}

/// Hands out 0, 1, 2, … to the workers.
final class NextIndex: Sendable {
    private let value = Mutex(0)

    func take(below count: Int) -> Int? {
        value.withLock { next in
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }
}

/// Writes `bytes` to `path` in place (Foundation's `Data.write` goes through a temporary
/// file and a rename, which costs an inode allocation and a delete per result).
private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw ValidationError("cannot write '\(path)': \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { throw ValidationError("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        written += count
    }
}
