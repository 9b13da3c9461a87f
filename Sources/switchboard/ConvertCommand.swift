// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SwitchboardFixedWidth
import SwitchboardTransform

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a fixed-width file to JSON with a layout, or JSON back to fixed-width.",
        discussion: """
        --to json prints one JSON document, nested as the layout's structure says, ending \
        with a "$text" member that records the line ending, the final line ending and the \
        filler records. With --split PATH (a group or record path such as batches.entries) \
        every value at that path is printed as one JSON line instead. Both are written as \
        the file is read: memory stays flat whatever the file's size. --to fixed-width reads \
        a JSON document in the nested shape and writes the records back; with its "$text" \
        member a parsed file comes back byte for byte.

        Exit 0 on success; 1 when the input breaks the layout or its rules (the message names \
        the line, record, field and columns, or the rule); 2 when the layout itself is bad. \
        Output is written as it is made, so on exit 1 it stops where the error was found (a \
        rule settled at the end, such as the file's totals, fails after the last record is \
        written): use the output only after exit 0. On a terminal, large inputs show a \
        progress bar on standard error.

        Examples:
          switchboard convert --layout Mappings/layouts/nacha-ach.yaml \\
              --to json payroll.ach
          switchboard convert --layout Mappings/layouts/nacha-ach.yaml \\
              --to json --split batches.entries big.ach > entries.jsonl
          switchboard convert --layout Mappings/layouts/nacha-ach.yaml \\
              --from json --to fixed-width payroll.json
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json
        case fixedWidth = "fixed-width"
    }

    @Option(help: ArgumentHelp("The layout (YAML).", valueName: "file"))
    var layout: String

    @Option(help: "What the input is: fixed-width (default) or json.")
    var from: Format = .fixedWidth

    @Option(help: "What to write: json or fixed-width.")
    var to: Format

    @Option(help: ArgumentHelp("With --to json: print each value at this path as one JSON line, streaming.", valueName: "path"))
    var split: String?

    @Flag(help: "Pad lines that lost their trailing spaces instead of refusing them (short-lines: pad).")
    var padShortLines = false

    @Flag(help: "Read and write ISO-8859-1 (one byte, one character), as Windows-1252 files need for names.")
    var latin1 = false

    @Flag(help: "Do not check the layout's rules (sums, counts, check digits).")
    var noRules = false

    @Option(help: ArgumentHelp("Write here instead of standard output.", valueName: "file"))
    var out: String?

    @Argument(help: ArgumentHelp("The input file; '-' reads standard input.", valueName: "input"))
    var input: String

    func validate() throws {
        guard from != to else { throw ValidationError("--from and --to are the same (\(to.rawValue))") }
        if split != nil, to != .json { throw ValidationError("--split goes with --to json") }
    }

    func run() throws {
        var layout: FixedWidthLayout
        do {
            layout = try FixedWidthLayout(path: self.layout)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        if padShortLines { layout.padShortLines = true }
        if latin1 { layout.latin1 = true }
        if noRules { layout.checkRules = false }
        if let split, !layout.structurePaths.contains(split) {
            printError("error: '\(split)' is not a path of the layout's structure; paths: \(layout.structurePaths.joined(separator: ", "))")
            throw ExitCode(2)
        }
        let output = try OutputFile(path: out)
        do {
            if to == .json {
                try toJSON(layout, output)
            } else {
                let document = try JSONValue(parsing: String(decoding: try readInput(input), as: UTF8.self))
                output.write(try FixedWidthFormatter.format(document, layout: layout))
            }
        } catch let error as FixedWidthError {
            output.flush()
            printError("\(input): \(error)")
            throw ExitCode.failure
        } catch let error as JSONError {
            printError("\(input): not JSON: \(error)")
            throw ExitCode.failure
        }
        output.flush()
    }

    private func toJSON(_ layout: FixedWidthLayout, _ output: OutputFile) throws {
        let handle: FileHandle
        var size = 0
        if input == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: input) else { throw ValidationError("cannot read \(input)") }
            handle = opened
            size = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        }
        let progress = ProgressBar(total: size)
        let wanted = split.map { $0.split(separator: ".").map(String.init) }
        var parser = FixedWidthParser(layout: layout, reading: handle, progress: progress.map { bar in { bar.update($0) } }, splitAt: wanted) { part in
            output.writeJSONLine(part)
        }
        if split == nil {
            // The nested form, written as it is read.
            _ = try parser.stream(into: output.streamed)
            output.write([0x0A])
        } else {
            _ = try parser.parse()
        }
        progress?.finish()
    }
}

/// Buffered output to a file or standard output.
final class OutputFile {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil), let opened = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write \(path)")
            }
            handle = opened
        } else {
            handle = FileHandle.standardOutput
        }
    }

    func write(_ bytes: [UInt8]) {
        buffer += bytes
        if buffer.count >= 1 << 20 { flush() }
    }

    func writeJSONLine(_ value: FixedWidthValue) {
        value.write(into: &buffer)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { flush() }
    }

    /// A streamed JSON document writing here.
    var streamed: StreamedJSON {
        StreamedJSON { [self] bytes in write(bytes) }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A progress bar on standard error, only when it is a terminal and the input is large.
final class ProgressBar {
    let total: Int
    private var shown = -1

    init?(total: Int) {
        guard total > 8 << 20, isatty(STDERR_FILENO) == 1 else { return nil }
        self.total = total
    }

    func update(_ done: Int) {
        let percent = min(100, done * 100 / max(total, 1))
        guard percent != shown else { return }
        shown = percent
        let width = 40
        let filled = width * percent / 100
        FileHandle.standardError.write(Data("\r[\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(percent)%".utf8))
    }

    func finish() {
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
