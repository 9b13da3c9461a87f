// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibXML2
import Foundation

/// A compiled XML Schema (libxml2), shared by concurrent validations (a validation context
/// per call). Includes and imports are read only from files inside `allowedRoot` (the
/// schema's folder unless widened); nothing is fetched from the network.
public final class XSDSchema: @unchecked Sendable {
    // @unchecked: a parsed schema is only read after compilation.
    private let pointer: xmlSchemaPtr
    public let path: String
    /// What libxml2 warned of while compiling ("Skipping import of schema …"): the schema
    /// compiled, as with xmllint, and these are for the log and `validate`'s output.
    public let warnings: [Violation]

    /// One problem found by validation (or compilation).
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public var line: Int?
        public var message: String

        public var description: String { line.map { "line \($0): \(message)" } ?? message }
    }

    /// Compiles the schema at `path`.
    ///
    /// - Throws: ``XSDError`` with the schema's own errors (an include outside the allowed
    ///   folder or on the network is one); warnings do not stop it (``warnings``).
    public init(path: String, allowedRoot: String? = nil) throws {
        XMLLibrary.initialize()
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        self.path = absolute
        let root = allowedRoot ?? (absolute as NSString).deletingLastPathComponent
        guard FileManager.default.fileExists(atPath: absolute) else { throw XSDError("cannot read schema \(path)") }
        let collector = ViolationCollector()
        let schema: xmlSchemaPtr? = XMLLibrary.readingInside(root: root) {
            guard let parser = xmlSchemaNewParserCtxt(absolute) else { return nil }
            defer { xmlSchemaFreeParserCtxt(parser) }
            xmlSchemaSetParserStructuredErrors(parser, collectViolation, Unmanaged.passUnretained(collector).toOpaque())
            return xmlSchemaParse(parser)
        }
        guard let schema, collector.violations.isEmpty else {
            if let schema { xmlSchemaFree(schema) }
            let detail = collector.violations.isEmpty ? "it is not a valid XML Schema" : XSDSchema.summary(collector.violations)
            throw XSDError("\(path): \(detail)")
        }
        pointer = schema
        warnings = collector.warnings
    }

    deinit {
        xmlSchemaFree(pointer)
    }

    /// Validates a parsed document; an empty list means valid.
    public func validate(_ document: XMLDocument) -> [Violation] {
        guard let context = xmlSchemaNewValidCtxt(pointer) else {
            return [Violation(line: nil, message: "out of memory creating a validation context")]
        }
        defer { xmlSchemaFreeValidCtxt(context) }
        let collector = ViolationCollector()
        xmlSchemaSetValidStructuredErrors(context, collectViolation, Unmanaged.passUnretained(collector).toOpaque())
        let status = withExtendedLifetime(collector) { xmlSchemaValidateDoc(context, document.pointer) }
        if status != 0, collector.violations.isEmpty {
            return [Violation(line: nil, message: status < 0 ? "the validator failed internally" : "the document is not valid")]
        }
        return collector.violations
    }

    /// Parses and validates XML bytes.
    ///
    /// - Throws: ``XMLError`` when the bytes are not well-formed XML.
    public func validate(_ bytes: UnsafeRawBufferPointer, name: String = "body") throws -> [Violation] {
        validate(try XMLDocument(bytes: bytes, name: name))
    }

    /// The first few violations, then how many more: what an error message shows.
    public static func summary(_ violations: [Violation], first: Int = 5) -> String {
        summarizeProblems(violations, first: first)
    }
}

/// The first few problems, then how many more: what an error message shows.
public func summarizeProblems(_ problems: [some CustomStringConvertible], first: Int = 5) -> String {
    var text = problems.prefix(first).map(\.description).joined(separator: "; ")
    if problems.count > first { text += "; and \(problems.count - first) more" }
    return text
}

/// Receives libxml2's structured errors for one compilation or validation: errors, and
/// apart from them warnings.
private final class ViolationCollector {
    var violations: [XSDSchema.Violation] = []
    var warnings: [XSDSchema.Violation] = []
}

private let collectViolation: xmlStructuredErrorFunc = { context, error in
    guard let context, let error else { return }
    let collector = Unmanaged<ViolationCollector>.fromOpaque(context).takeUnretainedValue()
    let message = error.pointee.message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "invalid"
    let line = Int(error.pointee.line)
    let violation = XSDSchema.Violation(line: line > 0 ? line : nil, message: message)
    if error.pointee.level == XML_ERR_WARNING {
        if collector.warnings.count < 1000 { collector.warnings.append(violation) }
    } else if collector.violations.count < 1000 {
        collector.violations.append(violation)
    }
}

/// A schema could not be compiled.
public struct XSDError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
