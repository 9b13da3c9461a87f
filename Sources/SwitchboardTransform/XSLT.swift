// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibXML2
import Foundation
import Synchronization

/// A compiled XSLT 1.0 stylesheet (libxslt, with EXSLT), shared by concurrent transforms:
/// libxslt's model is one compiled stylesheet and a transform context per call.
///
/// Safe by default: no file writes, no directory creation, no network in either
/// direction; `xsl:include`, `xsl:import` and `document()` read only files inside
/// `allowedRoot` (the stylesheet's own folder unless widened), parsed with the same safe
/// parser as every other XML. `xsl:message terminate="yes"` fails the transform with the
/// message. An XSLT 2.0 stylesheet is refused with a clear error.
public final class XSLTStylesheet: @unchecked Sendable {
    // @unchecked: the compiled stylesheet is only read after compilation, which libxslt
    // supports from many threads at once.
    private let pointer: xsltStylesheetPtr
    public let path: String
    /// Folder tree the stylesheet may read from.
    public let allowedRoot: String
    /// What the stylesheet's `xsl:output` says: `xml`, `html` or `text`.
    public let outputMethod: String
    /// The result's media type: the `xsl:output` media-type, else one that follows the method.
    public let mediaType: String

    /// Compiles the stylesheet at `path`.
    ///
    /// - Parameter allowedRoot: The folder tree includes, imports and `document()` may read;
    ///   the stylesheet's folder by default.
    /// - Throws: ``XSLTError`` naming the file and what is wrong.
    public init(path: String, allowedRoot: String? = nil) throws {
        XSLTLibrary.initialize()
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        self.path = absolute
        let root = URL(fileURLWithPath: allowedRoot ?? (absolute as NSString).deletingLastPathComponent).standardizedFileURL.path
        self.allowedRoot = root
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw XSLTError("cannot read stylesheet \(path)")
        }
        // XSLT 2.0 and later would run in libxslt's forwards-compatible mode and fail in
        // confusing ways; refuse them plainly.
        let document: XMLDocument
        do {
            // Only its root attribute is read; libxslt parses the stylesheet itself.
            document = try data.withUnsafeBytes { try XMLDocument(bytes: $0, name: path, refusingExternalEntities: false) }
        } catch let error as XMLError {
            throw XSLTError("\(error)")
        }
        if let version = document.rootAttribute("version"), let number = Double(version), number >= 2 {
            throw XSLTError("\(path): XSLT \(version) is not supported (libxslt implements XSLT 1.0 with EXSLT); rewrite the stylesheet for 1.0 or transform it elsewhere")
        }
        let (compiled, messages) = XSLTLibrary.compiling(root: root) {
            absolute.withXMLChars { xsltParseStylesheetFile($0) }
        }
        guard let compiled, compiled.pointee.errors == 0 else {
            if let compiled { xsltFreeStylesheet(compiled) }
            let detail = messages.isEmpty ? "it is not a valid XSLT 1.0 stylesheet" : messages
            throw XSLTError("\(path): \(detail)")
        }
        pointer = compiled
        let method = compiled.pointee.method.map { String(cString: $0) } ?? "xml"
        outputMethod = method
        if let declared = compiled.pointee.mediaType {
            mediaType = String(cString: declared)
        } else {
            switch method {
            case "html": mediaType = "text/html"
            case "text": mediaType = "text/plain"
            default: mediaType = "application/xml"
            }
        }
        XSLTLibrary.register(compiled, root: root)
    }

    deinit {
        XSLTLibrary.unregister(pointer)
        xsltFreeStylesheet(pointer)
    }

    /// Transforms XML bytes.
    ///
    /// - Parameter parameters: `xsl:param` values, passed as strings (never evaluated as XPath).
    /// - Returns: The serialized result, as `xsl:output` asks.
    /// - Throws: ``XMLError`` for input that is not XML; ``XSLTError`` when the transform
    ///   fails, with libxslt's messages (an `xsl:message terminate="yes"` text among them).
    public func transform(
        _ input: UnsafeRawBufferPointer, name: String = "body", parameters: [(String, String)] = [], baseURI: String? = nil,
        onMessage: (String) -> Void = { _ in }
    ) throws -> [UInt8] {
        let document = try XMLDocument(bytes: input, name: name)
        if let baseURI { document.setBaseURI(baseURI) }
        return try transform(document, parameters: parameters, onMessage: onMessage)
    }

    /// Transforms a parsed document.
    ///
    /// - Parameter onMessage: Gets the text of the `xsl:message`s that did not stop a
    ///   transform that succeeded (those of a failed one are in its error).
    public func transform(_ document: XMLDocument, parameters: [(String, String)] = [], onMessage: (String) -> Void = { _ in }) throws -> [UInt8] {
        guard let context = xsltNewTransformContext(pointer, document.pointer) else {
            throw XSLTError("out of memory creating a transform context")
        }
        defer { xsltFreeTransformContext(context) }
        var messages = switchboard_text()
        defer { switchboard_text_free(&messages) }
        switchboard_xslt_collect_transform(context, &messages)
        xsltSetCtxtSecurityPrefs(XSLTLibrary.securityPrefs, context)
        if !parameters.isEmpty {
            // A NULL-terminated array of name, value, name, value, …; quoted as strings.
            var strings: [UnsafeMutablePointer<CChar>?] = []
            for (name, value) in parameters {
                strings.append(strdup(name))
                strings.append(strdup(value))
            }
            strings.append(nil)
            defer { for string in strings { free(string) } }
            let status = strings.withUnsafeMutableBufferPointer { buffer -> Int32 in
                guard let base = buffer.baseAddress else { return -1 }
                return base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    xsltQuoteUserParams(context, $0)
                }
            }
            guard status == 0 else { throw XSLTError("\(path): a parameter could not be set") }
        }
        let result = xsltApplyStylesheetUser(pointer, document.pointer, nil, nil, nil, context)
        defer { if let result { xmlFreeDoc(result) } }
        let text = messages.data.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        if let failure = XSLTLibrary.documentFailures.withLock({ $0.removeValue(forKey: UInt(bitPattern: context)) }) {
            throw XSLTError("\(path): \(failure)")
        }
        guard let result, context.pointee.state == XSLT_STATE_OK else {
            if context.pointee.state == XSLT_STATE_STOPPED {
                throw XSLTError(text.isEmpty ? "\(path): the stylesheet stopped the transform" : "\(path): the stylesheet stopped the transform: \(text)")
            }
            throw XSLTError(text.isEmpty ? "\(path): the transform failed" : "\(path): \(text)")
        }
        var output: UnsafeMutablePointer<xmlChar>?
        var length: Int32 = 0
        guard xsltSaveResultToString(&output, &length, result, pointer) == 0 else {
            throw XSLTError("\(path): the result could not be serialized")
        }
        defer { if let output { switchboard_xml_free(output) } }
        if !text.isEmpty { onMessage(text) }
        guard let output, length > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: output, count: Int(length)))
    }
}

/// A stylesheet could not be compiled, or a transform failed.
public struct XSLTError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension XMLDocument {
    /// Sets the document's URI: relative `document()` calls on its nodes resolve against it.
    func setBaseURI(_ uri: String) {
        let absolute = URL(fileURLWithPath: uri).standardizedFileURL.path
        if let old = pointer.pointee.URL { switchboard_xml_free(UnsafeMutableRawPointer(mutating: old)) }
        pointer.pointee.URL = UnsafePointer(absolute.withXMLChars { xmlStrdup($0) })
    }

    /// An attribute of the root element.
    func rootAttribute(_ name: String) -> String? {
        guard let root = xmlDocGetRootElement(pointer), let value = name.withXMLChars({ xmlGetProp(root, $0) }) else { return nil }
        defer { switchboard_xml_free(value) }
        return String(cString: value)
    }
}

/// libxslt's process-wide set-up: EXSLT, the document loader that confines reads to each
/// stylesheet's folder tree, and the security preferences.
enum XSLTLibrary {
    nonisolated(unsafe) static let securityPrefs: xsltSecurityPrefsPtr = {
        let prefs = xsltNewSecurityPrefs()!
        xsltSetSecurityPrefs(prefs, XSLT_SECPREF_WRITE_FILE, xsltSecurityForbid)
        xsltSetSecurityPrefs(prefs, XSLT_SECPREF_CREATE_DIRECTORY, xsltSecurityForbid)
        xsltSetSecurityPrefs(prefs, XSLT_SECPREF_WRITE_NETWORK, xsltSecurityForbid)
        xsltSetSecurityPrefs(prefs, XSLT_SECPREF_READ_NETWORK, xsltSecurityForbid)
        return prefs
    }()

    private static let once: Void = {
        XMLLibrary.initialize()
        exsltRegisterAll()
        switchboard_xslt_collect_generic(nil)
        xsltSetLoaderFunc(confinedLoader)
        _ = securityPrefs
    }()

    static func initialize() {
        _ = once
    }

    /// Allowed folder per compiled stylesheet.
    private static let roots = Mutex<[UInt: String]>([:])
    /// Compilation reports errors through process-wide callbacks: one at a time. Holds the
    /// root of the stylesheet being compiled, which the loader reads.
    private static let compileLock = Mutex<Void>(())

    static func compiling(root: String, _ body: () -> xsltStylesheetPtr?) -> (xsltStylesheetPtr?, String) {
        compileLock.withLock { _ in
            currentCompileRoot = root
            defer { currentCompileRoot = nil }
            var messages = switchboard_text()
            defer { switchboard_text_free(&messages) }
            switchboard_xslt_collect_generic(&messages)
            defer { switchboard_xslt_collect_generic(nil) }
            // Stylesheets are the node's own files: their DTDs and parameter entities load,
            // from inside the allowed folders.
            // (The stylesheet crosses the lock as its address: a pointer is not Sendable.)
            let compiled = xsltStylesheetPtr(bitPattern: XMLLibrary.readingInside(root: root) { UInt(bitPattern: body()) })
            let text = messages.data.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            return (compiled, text)
        }
    }

    static func register(_ stylesheet: xsltStylesheetPtr, root: String) {
        let key = UInt(bitPattern: stylesheet)
        roots.withLock { $0[key] = root }
    }

    static func unregister(_ stylesheet: xsltStylesheetPtr) {
        let key = UInt(bitPattern: stylesheet)
        _ = roots.withLock { $0.removeValue(forKey: key) }
    }

    static func root(for stylesheet: xsltStylesheetPtr?) -> String? {
        guard let stylesheet else { return nil }
        var top = stylesheet
        while let parent = top.pointee.parent { top = parent }
        let key = UInt(bitPattern: top)
        return roots.withLock { $0[key] }
    }

    /// The root that applies to a load: the compiling stylesheet's, or the transform's.
    static func rootForLoad(context: UnsafeMutableRawPointer?, type: xsltLoadType) -> String? {
        switch type {
        case XSLT_LOAD_DOCUMENT:
            let transform = context?.assumingMemoryBound(to: xsltTransformContext.self)
            return root(for: transform?.pointee.style)
        default:
            return currentCompileRoot
        }
    }

    /// Written and read only while `compileLock` is held.
    nonisolated(unsafe) static var currentCompileRoot: String?

    /// Why a transform's `document()` call failed, by transform context (address), until the
    /// transform reads it.
    static let documentFailures = Mutex<[UInt: String]>([:])
}

/// Loads stylesheets (`xsl:include`, `xsl:import`) and `document()` files: local paths
/// inside the allowed folder tree only, read and parsed here with the safe parse options.
private let confinedLoader: xsltDocLoaderFunc = { uri, dict, options, context, type in
    confinedLoad(uri, dict, options, context, type)
}

private func confinedLoad(
    _ uri: UnsafePointer<xmlChar>?, _ dict: xmlDictPtr?, _ options: Int32, _ context: UnsafeMutableRawPointer?, _ type: xsltLoadType
) -> xmlDocPtr? {
    guard let uri else { return nil }
    let text = String(cString: uri)
    // A document() call that cannot be served fails the transform with the reason, where
    // libxslt would go on with an empty node-set.
    func refuse(_ reason: String) -> xmlDocPtr? {
        guard type == XSLT_LOAD_DOCUMENT, let context else { return nil }
        let transform = context.assumingMemoryBound(to: xsltTransformContext.self)
        let message = "document('\(text)'): \(reason)"
        XSLTLibrary.documentFailures.withLock { $0[UInt(bitPattern: transform)] = message }
        switchboard_xslt_fail(transform, message)
        return nil
    }
    let path: String
    if text.hasPrefix("file://") {
        path = URL(string: text)?.path ?? String(text.dropFirst(7))
    } else if text.contains("://") {
        return refuse("only files inside the stylesheet's allowed folders are read, not the network or other schemes")
    } else {
        path = text
    }
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    let root: String?
    if type == XSLT_LOAD_START {
        root = nil // The stylesheet the caller named.
    } else {
        guard let allowed = XSLTLibrary.rootForLoad(context: context, type: type) else { return refuse("no folder is allowed for this stylesheet") }
        root = URL(fileURLWithPath: allowed).resolvingSymlinksInPath().path
    }
    if let root, !(absolute == root || absolute.hasPrefix(root.hasSuffix("/") ? root : root + "/")) {
        return refuse("\(absolute) is outside the folder this stylesheet may read (\(root))")
    }
    if type == XSLT_LOAD_DOCUMENT, let root {
        guard FileManager.default.isReadableFile(atPath: absolute) else { return refuse("cannot read \(absolute)") }
        guard let copy = DocumentCache.copy(of: absolute, root: root, options: options) else { return refuse("\(absolute) is not well-formed XML") }
        return copy
    }
    return readAndParse(absolute, dict: dict, options: options)
}

private func readAndParse(_ path: String, dict: xmlDictPtr?, options: Int32) -> xmlDocPtr? {
    guard let data = FileManager.default.contents(atPath: path), data.count <= Int(Int32.max) else { return nil }
    return data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> xmlDocPtr? in
        parseLoaded(bytes, dict: dict, options: options, url: path)
    }
}

/// Files that `document()` loads, parsed once and kept; each transform gets a copy (libxslt
/// frees the documents a transform loaded when it ends). One kept document per thread:
/// copying shares the kept document's name dictionary, which must not be used from two
/// threads at once.
private enum DocumentCache {
    private static let kept = Mutex<[String: UInt]>([:])

    static func copy(of path: String, root: String, options: Int32) -> xmlDocPtr? {
        let key = "\(pthread_self())|\(path)"
        if let address = kept.withLock({ $0[key] }), let master = xmlDocPtr(bitPattern: address) {
            return xmlCopyDoc(master, 1)
        }
        // A file of the stylesheet's folders: its entities and DTD load from inside them.
        guard let master = XMLLibrary.readingInside(root: root, { readAndParse(path, dict: nil, options: options) }) else { return nil }
        kept.withLock { $0[key] = UInt(bitPattern: master) }
        return xmlCopyDoc(master, 1)
    }
}

/// Parses a file the loader read, in the stylesheet's dictionary when there is one.
private func parseLoaded(_ bytes: UnsafeRawBufferPointer, dict: xmlDictPtr?, options: Int32, url: String) -> xmlDocPtr? {
    let start: UnsafePointer<CChar>? = bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
    guard let parser: xmlParserCtxtPtr = xmlCreateMemoryParserCtxt(start, Int32(bytes.count)) else { return nil }
    defer { xmlFreeParserCtxt(parser) }
    if let dict {
        // Stylesheet documents share the stylesheet's dictionary, as libxslt expects.
        xmlDictFree(parser.pointee.dict)
        parser.pointee.dict = dict
        _ = xmlDictReference(dict)
    }
    // The node's own files: their DTDs load too (through the confined entity loader), and
    // relative system ids resolve against the file's own path.
    _ = xmlCtxtUseOptions(parser, options | XMLLibrary.safeParseOptions | Int32(XML_PARSE_DTDLOAD.rawValue))
    if let input = parser.pointee.input, input.pointee.filename == nil {
        input.pointee.filename = UnsafePointer(url.withCString { strdup($0) })
    }
    _ = xmlParseDocument(parser)
    guard let document: xmlDocPtr = parser.pointee.myDoc else { return nil }
    parser.pointee.myDoc = nil
    guard parser.pointee.wellFormed != 0 else {
        xmlFreeDoc(document)
        return nil
    }
    // Relative includes and document() resolve against the file's own URL.
    if document.pointee.URL == nil {
        let copy: UnsafeMutablePointer<xmlChar>? = url.withXMLChars { xmlStrdup($0) }
        document.pointee.URL = UnsafePointer(copy)
    }
    return document
}

extension String {
    /// The string as libxml2's `const xmlChar *`, for the length of `body`.
    func withXMLChars<Result>(_ body: (UnsafePointer<xmlChar>) throws -> Result) rethrows -> Result {
        try withCString { try $0.withMemoryRebound(to: xmlChar.self, capacity: utf8.count + 1, body) }
    }
}
