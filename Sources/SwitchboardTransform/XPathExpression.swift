// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibXML2

/// Namespace prefixes an XPath expression may use, declared once per route.
public struct XPathNamespaces: Sendable, Equatable {
    public var bindings: [(prefix: String, uri: String)]

    public init(_ bindings: [(prefix: String, uri: String)] = []) {
        self.bindings = bindings
    }

    public func contains(prefix: String) -> Bool {
        bindings.contains { $0.prefix == prefix }
    }

    public static func == (lhs: XPathNamespaces, rhs: XPathNamespaces) -> Bool {
        lhs.bindings.elementsEqual(rhs.bindings) { $0.prefix == $1.prefix && $0.uri == $1.uri }
    }
}

/// An XPath 1.0 expression compiled once (at route load) and evaluated many times,
/// concurrently, against different documents.
///
/// libxml2 compiled expressions are read-only during evaluation, so one may be shared by any
/// number of evaluations on different threads, each with its own evaluation context.
public final class XPathExpression: @unchecked Sendable {
    public let text: String
    public let namespaces: XPathNamespaces
    private let compiled: xmlXPathCompExprPtr

    /// Compiles `text`.
    ///
    /// - Throws: ``XMLError`` when the expression is not valid XPath 1.0 or uses a namespace
    ///   prefix that `namespaces` does not declare.
    public init(_ text: String, namespaces: XPathNamespaces = XPathNamespaces()) throws {
        XMLLibrary.initialize()
        self.text = text
        self.namespaces = namespaces
        for prefix in XPathExpression.prefixes(in: text) where !namespaces.contains(prefix: prefix) && !XPathExpression.builtInPrefixes.contains(prefix) {
            throw XMLError("XPath '\(text)' uses the namespace prefix '\(prefix)', which is not declared; declare it under the route's 'namespaces:'")
        }
        guard let context = xmlXPathNewContext(nil) else {
            throw XMLError("out of memory creating an XPath context")
        }
        defer { xmlXPathFreeContext(context) }
        let collector = ErrorCollector()
        let compiled = collector.capturing(into: context) {
            xmlXPathCtxtCompile(context, text)
        }
        guard let compiled else {
            var message = collector.message
            var column = collector.column
            // Compile errors may skip the context's handler; libxml2 keeps the last one too.
            if let last = xmlGetLastError(), last.pointee.domain == Int32(XML_FROM_XPATH.rawValue) {
                if message == nil, let text = last.pointee.message {
                    message = String(cString: text).trimmingASCIIWhitespaceAndNewlines()
                }
                if column == nil, last.pointee.int1 >= 0 { column = Int(last.pointee.int1) + 1 }
            }
            throw XMLError("invalid XPath '\(text)': \(message ?? "syntax error")", column: column)
        }
        self.compiled = compiled
    }

    deinit {
        xmlXPathFreeCompExpr(compiled)
    }

    /// Evaluates the expression on `document` and converts the result to a boolean the
    /// XPath way (`boolean()`): a non-empty node-set, a non-zero number, a non-empty string.
    public func evaluateBoolean(in document: XMLDocument) throws -> Bool {
        try evaluate(in: document) { xmlXPathCastToBoolean($0) != 0 }
    }

    /// Evaluates the expression and converts the result to a string the XPath way
    /// (`string()`): for a node-set, the string value of its first node.
    public func evaluateString(in document: XMLDocument) throws -> String {
        try evaluate(in: document) { object in
            guard let text = xmlXPathCastToString(object) else { return "" }
            defer { switchboard_xml_free(text) }
            return String(cString: text)
        }
    }

    /// Evaluates the expression and serializes every selected node as a standalone XML
    /// document (element nodes keep the namespace declarations they need); text and
    /// attribute nodes give their string values.
    public func evaluateNodes(in document: XMLDocument) throws -> [String] {
        try evaluate(in: document) { object in
            guard object.pointee.type == XPATH_NODESET, let set = object.pointee.nodesetval else {
                throw XMLError("XPath '\(text)' does not select nodes; it gives a \(XPathExpression.typeName(object.pointee.type))")
            }
            var results: [String] = []
            results.reserveCapacity(Int(set.pointee.nodeNr))
            for index in 0..<Int(set.pointee.nodeNr) {
                guard let node = set.pointee.nodeTab[index] else { continue }
                results.append(XPathExpression.serialize(node))
            }
            return results
        }
    }

    /// Evaluates the expression and gives the result as JSON: a node-set as an array of
    /// serialized nodes, or the number, string or boolean.
    public func evaluateJSON(in document: XMLDocument) throws -> JSONValue {
        try evaluate(in: document) { object in
            switch object.pointee.type {
            case XPATH_NODESET:
                guard let set = object.pointee.nodesetval else { return .array([]) }
                return .array((0..<Int(set.pointee.nodeNr)).compactMap { index in
                    set.pointee.nodeTab[index].map { .string(XPathExpression.serialize($0)) }
                })
            case XPATH_BOOLEAN:
                return .bool(object.pointee.boolval != 0)
            case XPATH_NUMBER:
                // NaN and the infinities have no JSON form.
                return JSONNumber(object.pointee.floatval).map(JSONValue.number) ?? .null
            default:
                guard let text = xmlXPathCastToString(object) else { return .string("") }
                defer { switchboard_xml_free(text) }
                return .string(String(cString: text))
            }
        }
    }

    private func evaluate<T>(in document: XMLDocument, _ convert: (xmlXPathObjectPtr) throws -> T) throws -> T {
        guard let context = xmlXPathNewContext(document.pointer) else {
            throw XMLError("out of memory creating an XPath context")
        }
        defer { xmlXPathFreeContext(context) }
        for binding in namespaces.bindings {
            xmlXPathRegisterNs(context, binding.prefix, binding.uri)
        }
        let collector = ErrorCollector()
        let result = collector.capturing(into: context) {
            xmlXPathCompiledEval(compiled, context)
        }
        guard let result else {
            throw XMLError("XPath '\(text)' failed: \(collector.message ?? "evaluation error")")
        }
        defer { xmlXPathFreeObject(result) }
        return try convert(result)
    }

    private static func serialize(_ node: xmlNodePtr) -> String {
        guard node.pointee.type == XML_ELEMENT_NODE else {
            guard let content = xmlNodeGetContent(node) else { return "" }
            defer { switchboard_xml_free(content) }
            return String(cString: content)
        }
        // Copy the element into a document of its own so that namespace declarations made on
        // its ancestors are re-declared where they are used.
        guard let document = xmlNewDoc("1.0") else { return "" }
        defer { xmlFreeDoc(document) }
        guard let copy = xmlDocCopyNode(node, document, 1) else { return "" }
        xmlDocSetRootElement(document, copy)
        xmlReconciliateNs(document, copy)
        guard let buffer = xmlBufferCreate() else { return "" }
        defer { xmlBufferFree(buffer) }
        xmlNodeDump(buffer, document, copy, 0, 0)
        guard let content = xmlBufferContent(buffer) else { return "" }
        return String(cString: content)
    }

    private static func typeName(_ type: xmlXPathObjectType) -> String {
        switch type {
        case XPATH_BOOLEAN: "boolean"
        case XPATH_NUMBER: "number"
        case XPATH_STRING: "string"
        default: "non-node value"
        }
    }

    /// Prefixes that XPath itself defines and need no declaration.
    static let builtInPrefixes: Set<String> = ["xml"]

    /// The namespace prefixes used in an expression's name tests and function names, found
    /// by a small lexer that skips string literals and axis separators (`::`).
    static func prefixes(in text: String) -> [String] {
        let chars = Array(text.unicodeScalars)
        var prefixes: [String] = []
        var index = 0
        func isNameStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isNameChar(_ c: Unicode.Scalar) -> Bool { isNameStart(c) || c == "-" || c == "." || ("0"..."9").contains(c) }
        while index < chars.count {
            let c = chars[index]
            if c == "\"" || c == "'" {
                index += 1
                while index < chars.count, chars[index] != c { index += 1 }
                index += 1
            } else if isNameStart(c) {
                // A name directly after `$` is a variable; its prefix would need a binding too.
                let start = index
                while index < chars.count, isNameChar(chars[index]) { index += 1 }
                if index + 1 < chars.count, chars[index] == ":", chars[index + 1] != ":",
                   isNameStart(chars[index + 1]) || chars[index + 1] == "*" {
                    let prefix = String(String.UnicodeScalarView(chars[start..<index]))
                    if !prefixes.contains(prefix) { prefixes.append(prefix) }
                    index += 1
                } else if index + 1 < chars.count, chars[index] == ":", chars[index + 1] == ":" {
                    index += 2  // an axis: child::, descendant::
                }
            } else {
                index += 1
            }
        }
        return prefixes
    }
}

/// Collects the first error libxml2 reports through an XPath context's callback, so nothing
/// is printed and the message can go into a proper error.
private final class ErrorCollector {
    var message: String?
    /// 1-based position in the expression where compiling stopped, when libxml2 says.
    var column: Int?

    func capturing<T>(into context: xmlXPathContextPtr, _ body: () -> T) -> T {
        let box = Unmanaged.passUnretained(self)
        context.pointee.userData = box.toOpaque()
        context.pointee.error = { userData, error in
            guard let userData, let error else { return }
            let collector = Unmanaged<ErrorCollector>.fromOpaque(userData).takeUnretainedValue()
            // XPath compile errors arrive with a code and a position but no message text.
            let text = error.pointee.message.map { String(cString: $0).trimmingASCIIWhitespaceAndNewlines() }
                ?? ErrorCollector.xpathMessage(code: Int(error.pointee.code))
            if collector.message == nil, let text {
                collector.message = text
                // XPath errors carry the offset into the expression in int1.
                if error.pointee.domain == Int32(XML_FROM_XPATH.rawValue), error.pointee.int1 >= 0 {
                    collector.column = Int(error.pointee.int1) + 1
                }
            }
        }
        return withExtendedLifetime(self) { body() }
    }

    /// libxml2's wording for its XPath error codes (`xmlXPathError`, offset by
    /// `XML_XPATH_EXPRESSION_OK`), which it does not export.
    static func xpathMessage(code: Int) -> String? {
        let messages = [
            "ok", "number encoding", "unfinished literal", "start of literal", "expected $ for variable reference",
            "undefined variable", "invalid predicate", "invalid expression", "missing closing curly brace",
            "unregistered function", "invalid operand", "invalid type", "invalid number of arguments",
            "invalid context size", "invalid context position", "memory allocation error", "syntax error",
            "resource error", "sub resource error", "undefined namespace prefix", "encoding error",
            "character out of XML range", "invalid or incomplete context", "stack usage error",
            "forbidden variable", "operation limit exceeded", "recursion limit exceeded",
        ]
        let index = code - Int(XML_XPATH_EXPRESSION_OK.rawValue)
        return messages.indices.contains(index) && index > 0 ? messages[index] : nil
    }
}
