// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibXML2
import Foundation
import Synchronization

/// A parsed XML document, owned: the libxml2 tree is freed when the value goes away.
///
/// Parsing is always safe: no external entities or DTDs are loaded, nothing is fetched from
/// the network, and entity expansion is bounded by libxml2's amplification limits. Not `Sendable`: use a document within one task.
public final class XMLDocument {
    let pointer: xmlDocPtr

    /// Parses UTF-8 (or declared-encoding) XML bytes.
    ///
    /// - Parameter refusingExternalEntities: A document whose DTD declares an external entity
    ///   is refused, naming it: the entity is never loaded, so its text would vanish from the
    ///   document without a word. Off only for the node's own files read elsewhere.
    /// - Throws: ``XMLError`` with the line and column of the first problem.
    public init(bytes: UnsafeRawBufferPointer, name: String = "body", refusingExternalEntities: Bool = true) throws {
        self.pointer = try XMLDocument.parse(bytes, name: name, refusingExternalEntities: refusingExternalEntities)
    }

    /// The first external entity (general or parameter) the document's own DTD declares.
    private static func externalEntity(in document: xmlDocPtr) -> (name: String, systemID: String)? {
        guard let subset = document.pointee.intSubset else { return nil }
        var node = subset.pointee.children
        while let current = node {
            if current.pointee.type == XML_ENTITY_DECL {
                let entity = UnsafeMutableRawPointer(current).assumingMemoryBound(to: xmlEntity.self)
                switch entity.pointee.etype {
                case XML_EXTERNAL_GENERAL_PARSED_ENTITY, XML_EXTERNAL_GENERAL_UNPARSED_ENTITY, XML_EXTERNAL_PARAMETER_ENTITY:
                    let name = entity.pointee.name.map { String(cString: $0) } ?? "?"
                    let system = entity.pointee.SystemID.map { "SYSTEM \"\(String(cString: $0))\"" }
                        ?? entity.pointee.ExternalID.map { "PUBLIC \"\(String(cString: $0))\"" } ?? "external"
                    return ((entity.pointee.etype == XML_EXTERNAL_PARAMETER_ENTITY ? "%" : "") + name, system)
                default:
                    break
                }
            }
            node = current.pointee.next
        }
        return nil
    }

    /// Parses XML text.
    public init(_ text: String, name: String = "body") throws {
        var text = text
        self.pointer = try text.withUTF8 { try XMLDocument.parse(UnsafeRawBufferPointer($0), name: name, refusingExternalEntities: true) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, name: String, refusingExternalEntities: Bool) throws -> xmlDocPtr {
        let pointer = try parse(bytes, name: name)
        if refusingExternalEntities, let declared = externalEntity(in: pointer) {
            xmlFreeDoc(pointer)
            throw XMLError("\(name) declares the external entity '\(declared.name)' (\(declared.systemID)); external entities are never loaded, so the document is refused rather than read without its text")
        }
        return pointer
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, name: String) throws -> xmlDocPtr {
        XMLLibrary.initialize()
        let limit = XMLLimits.maximumSize
        guard bytes.count <= limit else {
            throw XMLError("\(name) is too large to parse as XML: \(bytes.count) bytes, the limit is \(limit) (xml.max-size)")
        }
        guard let context = XMLLibrary.takeParser() else {
            throw XMLError("out of memory creating an XML parser")
        }
        defer { XMLLibrary.returnParser(context) }
        let document = bytes.withMemoryRebound(to: CChar.self) { chars in
            xmlCtxtReadMemory(context, chars.baseAddress, Int32(chars.count), nil, nil, XMLLibrary.safeParseOptions)
        }
        guard let document, context.pointee.wellFormed != 0 else {
            if let document { xmlFreeDoc(document) }
            throw XMLError.last(from: context, source: name)
        }
        guard xmlDocGetRootElement(document) != nil else {
            xmlFreeDoc(document)
            throw XMLError("\(name) is not XML: it has no root element")
        }
        return document
    }

    deinit {
        xmlFreeDoc(pointer)
    }

    /// The root element serialized, without the XML declaration.
    public func serializedRootElement() -> String {
        guard let root = xmlDocGetRootElement(pointer), let buffer = xmlBufferCreate() else { return "" }
        defer { xmlBufferFree(buffer) }
        xmlNodeDump(buffer, pointer, root, 0, 0)
        guard let content = xmlBufferContent(buffer) else { return "" }
        return String(cString: content)
    }

    /// The document serialized back to text (with the XML declaration).
    public func serialized() -> String {
        var buffer: UnsafeMutablePointer<xmlChar>?
        var length: Int32 = 0
        xmlDocDumpMemoryEnc(pointer, &buffer, &length, "UTF-8")
        defer { if let buffer { switchboard_xml_free(buffer) } }
        guard let buffer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: buffer, count: Int(length)), as: UTF8.self)
    }
}

/// A problem parsing XML or evaluating XPath.
public struct XMLError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var line: Int?
    public var column: Int?

    public init(_ message: String, line: Int? = nil, column: Int? = nil) {
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        guard let line else { return message }
        return "\(message) (line \(line)\(column.map { ", column \($0)" } ?? ""))"
    }

    static func last(from context: xmlParserCtxtPtr, source: String) -> XMLError {
        guard let error = xmlCtxtGetLastError(context), let text = error.pointee.message else {
            return XMLError("\(source) is not well-formed XML")
        }
        var message = String(cString: text).trimmingASCIIWhitespaceAndNewlines()
        if message.contains("entity reference loop") || message.contains("amplification") {
            message = "entity expansion refused: entities expand too much or refer to themselves (\(message))"
        } else if message.hasPrefix("Excessive depth in document") {
            message = "elements are nested deeper than \(XMLLimits.maximumDepth) levels (xml.max-depth)"
        }
        let line = Int(error.pointee.line)
        let column = Int(error.pointee.int2)
        return XMLError("\(source) is not well-formed XML: \(message)", line: line > 0 ? line : nil, column: column > 0 ? column : nil)
    }
}

/// The limits every XML parse obeys, node-wide: set once at start-up (`xml.max-size`,
/// `xml.max-depth` in the node config), before any parsing.
public enum XMLLimits {
    private static let size = Atomic<Int>(64 << 20)

    /// The largest document parsed, in bytes (default 64 MiB); larger input is refused
    /// before parsing starts.
    public static var maximumSize: Int {
        get { size.load(ordering: .relaxed) }
        set { size.store(max(1, min(newValue, Int(Int32.max))), ordering: .relaxed) }
    }

    /// The deepest element nesting accepted (default 256, libxml2's; at most 2048).
    public static var maximumDepth: Int {
        get { Int(switchboard_xml_max_depth()) }
        set { switchboard_xml_set_max_depth(UInt32(max(1, min(newValue, 2048)))) }
    }
}

/// One-time libxml2 set-up, and the parse options every parse uses.
enum XMLLibrary {
    /// No network, no DTD loading or default attributes from DTDs, errors captured rather than
    /// printed. Internal entities are substituted while parsing (`XML_PARSE_NOENT`) so that
    /// libxml2's amplification accounting sees every expansion: billion-laughs and quadratic
    /// blow-up inputs fail the parse in milliseconds instead of exploding later in an XPath
    /// `string()`. External entities are never loaded: the process-wide entity loader refuses
    /// every request. `XML_PARSE_HUGE` is not set, so the depth and text-size limits apply.
    static let safeParseOptions: Int32 = Int32(
        XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue | XML_PARSE_NOENT.rawValue
    )

    private static let once: Void = {
        xmlInitParser()
        // Keep libxml2 from printing anything on its own: every error is captured and reported.
        switchboard_xml_silence()
        // Refuse every external load, whatever a document asks for; only an XSD being
        // compiled may read its includes and imports, inside its allowed folder.
        xmlSetExternalEntityLoader(confinedEntityLoader)
    }()

    static func initialize() {
        _ = once
    }

    /// The folder the node's own files being read may load from (see ``readingInside(root:_:)``).
    nonisolated(unsafe) static var trustedRoot: String?
    nonisolated(unsafe) static var trustedThread: pthread_t?
    private static let trustedLock = Mutex<Void>(())

    /// Runs `body`, which reads the node's own files (a schema or stylesheet being compiled,
    /// a file a stylesheet's `document()` loads), with external entities and DTDs loaded from
    /// inside `root` on this thread; one at a time. Messages never get here.
    static func readingInside<T>(root: String, _ body: () -> T) -> T {
        trustedLock.withLock { _ in
            trustedRoot = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath().path
            trustedThread = pthread_self()
            defer {
                trustedRoot = nil
                trustedThread = nil
            }
            return body()
        }
    }

    /// Parser contexts kept for reuse: a context keeps its name dictionary between parses,
    /// so element and attribute names are interned once instead of once per document.
    /// (Addresses, since raw pointers are not Sendable.)
    private static let parsers = Mutex<[UInt]>([])

    static func takeParser() -> xmlParserCtxtPtr? {
        if let address = parsers.withLock({ $0.popLast() }), let context = xmlParserCtxtPtr(bitPattern: address) {
            return context
        }
        return xmlNewParserCtxt()
    }

    static func returnParser(_ context: xmlParserCtxtPtr) {
        // A document keeps the context's dictionary alive by reference; the context itself
        // holds nothing else once a parse has ended.
        let kept = parsers.withLock { pool -> Bool in
            guard pool.count < 16 else { return false }
            pool.append(UInt(bitPattern: context))
            return true
        }
        if !kept { xmlFreeParserCtxt(context) }
    }
}

/// The process-wide external entity loader: refuses everything, except local files inside
/// ``XMLLibrary/trustedRoot`` while the node reads its own files there.
private let confinedEntityLoader: xmlExternalEntityLoader = { url, _, context in
    // Only on the thread reading them: a message parsed elsewhere at the same moment still
    // gets nothing.
    guard let url, let root = XMLLibrary.trustedRoot, let thread = XMLLibrary.trustedThread, pthread_equal(thread, pthread_self()) != 0 else {
        return nil
    }
    let text = String(cString: url)
    let path: String
    if text.hasPrefix("file://") {
        path = URL(string: text)?.path ?? String(text.dropFirst(7))
    } else if text.contains("://") {
        return nil
    } else {
        path = text
    }
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    guard absolute.hasPrefix(root.hasSuffix("/") ? root : root + "/") else { return nil }
    return absolute.withCString { xmlNewInputFromFile(context, $0) }
}

extension String {
    func trimmingASCIIWhitespaceAndNewlines() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !" \t\r\n".unicodeScalars.contains($0) }),
              let end = scalars.lastIndex(where: { !" \t\r\n".unicodeScalars.contains($0) })
        else { return "" }
        return String(scalars[start...end])
    }
}
