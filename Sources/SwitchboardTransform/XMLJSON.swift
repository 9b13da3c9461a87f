// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibXML2

/// XML ↔ JSON with one convention, in both directions:
///
/// * the root element is an object's only key: `<a>…</a>` is `{"a": …}`;
/// * an element with neither attributes nor child elements is its text (a string);
/// * otherwise it is an object: attributes as `"@name"`, namespace declarations as
///   `"@xmlns"` / `"@xmlns:p"`, child elements under their qualified name (`"cbc:ID"`),
///   and any non-blank text as `"#text"` (the text pieces of mixed content, joined);
/// * a child element that repeats is an array, in document order; `arrays` lists element
///   paths (`Invoice/cac:InvoiceLine`, names from the root) that are arrays even when
///   they occur once;
/// * values are strings; numbers, booleans and null in JSON become text (null: empty).
///
/// Comments and processing instructions are not carried.
public enum XMLJSON {
    /// Converts a parsed document.
    public static func json(from document: XMLDocument, arrays: Set<String> = []) -> JSONValue {
        guard let root = xmlDocGetRootElement(document.pointer) else { return .null }
        let name = qualifiedName(root)
        return .object([(name, value(of: root, path: name, arrays: arrays))])
    }

    private static func qualifiedName(_ node: xmlNodePtr) -> String {
        let local = String(cString: node.pointee.name)
        guard let ns = node.pointee.ns, let prefix = ns.pointee.prefix else { return local }
        return String(cString: prefix) + ":" + local
    }

    private static func value(of element: xmlNodePtr, path: String, arrays: Set<String>) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        var namespace = element.pointee.nsDef
        while let declaration = namespace {
            let key = declaration.pointee.prefix.map { "@xmlns:" + String(cString: $0) } ?? "@xmlns"
            members.append((key, .string(declaration.pointee.href.map { String(cString: $0) } ?? "")))
            namespace = declaration.pointee.next
        }
        var attribute = element.pointee.properties
        while let current = attribute {
            var name = String(cString: current.pointee.name)
            if let ns = current.pointee.ns, let prefix = ns.pointee.prefix { name = String(cString: prefix) + ":" + name }
            var text = ""
            if let content = xmlNodeGetContent(UnsafeMutableRawPointer(current).assumingMemoryBound(to: xmlNode.self)) {
                text = String(cString: content)
                switchboard_xml_free(content)
            }
            members.append(("@" + name, .string(text)))
            attribute = current.pointee.next
        }
        var text = ""
        var children: [(name: String, values: [JSONValue])] = []
        var child = element.pointee.children
        while let node = child {
            switch node.pointee.type {
            case XML_ELEMENT_NODE:
                let name = qualifiedName(node)
                let converted = value(of: node, path: path + "/" + name, arrays: arrays)
                if let index = children.firstIndex(where: { $0.name == name }) {
                    children[index].values.append(converted)
                } else {
                    children.append((name, [converted]))
                }
            case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
                if let content = node.pointee.content { text += String(cString: content) }
            default:
                break
            }
            child = node.pointee.next
        }
        if members.isEmpty, children.isEmpty { return .string(text) }
        for child in children {
            let forced = arrays.contains(path + "/" + child.name)
            members.append((child.name, child.values.count == 1 && !forced ? child.values[0] : .array(child.values)))
        }
        let trimmed = text.trimmingASCIIWhitespaceAndNewlines()
        if !trimmed.isEmpty { members.append(("#text", .string(children.isEmpty ? text : trimmed))) }
        return .object(members)
    }

    /// Converts JSON in the convention above to XML (UTF-8, with an XML declaration).
    ///
    /// - Throws: ``XMLError`` when the JSON has no single root key, or names an element or
    ///   attribute XML cannot have, or uses an undeclared prefix.
    public static func xml(from json: JSONValue) throws -> [UInt8] {
        XMLLibrary.initialize()
        guard case .object(let members) = json, members.count == 1 else {
            throw XMLError("JSON for XML needs an object with exactly one key, the root element")
        }
        guard let document = xmlNewDoc("1.0") else { throw XMLError("out of memory creating a document") }
        defer { xmlFreeDoc(document) }
        let root = try element(members[0].key, members[0].value, document: document, parent: nil, path: jsonPath("$", members[0].key))
        xmlDocSetRootElement(document, root)
        var output: UnsafeMutablePointer<xmlChar>?
        var length: Int32 = 0
        xmlDocDumpFormatMemoryEnc(document, &output, &length, "UTF-8", 0)
        guard let output else { throw XMLError("the document could not be serialized") }
        defer { switchboard_xml_free(output) }
        return Array(UnsafeBufferPointer(start: output, count: Int(length)))
    }

    /// `path` is the JSON path of `value`, for errors.
    private static func element(_ name: String, _ value: JSONValue, document: xmlDocPtr, parent: xmlNodePtr?, path: String) throws -> xmlNodePtr {
        guard isXMLName(name) else { throw XMLError("'\(name)' cannot be an XML element name") }
        let (prefix, local) = split(name)
        guard let node = xmlNewDocNode(document, nil, local, nil) else { throw XMLError("out of memory") }
        if let parent { xmlAddChild(parent, node) }
        switch value {
        case .object(let members):
            // Namespace declarations first, so the element's own prefix can resolve.
            for (key, member) in members where key == "@xmlns" || key.hasPrefix("@xmlns:") {
                let declared = key == "@xmlns" ? nil : String(key.dropFirst("@xmlns:".count))
                xmlNewNs(node, try carried(member.text, at: jsonPath(path, key)), declared)
            }
            try setNamespace(node, prefix: prefix, name: name)
            for (key, member) in members {
                if key == "@xmlns" || key.hasPrefix("@xmlns:") { continue }
                let memberPath = jsonPath(path, key)
                if key == "#text" {
                    xmlNodeAddContent(node, try carried(member.text, at: memberPath))
                } else if key.hasPrefix("@") {
                    let attribute = String(key.dropFirst())
                    guard isXMLName(attribute) else { throw XMLError("'\(attribute)' cannot be an XML attribute name") }
                    let (attributePrefix, attributeLocal) = split(attribute)
                    if let attributePrefix {
                        guard let ns = xmlSearchNs(document, node, attributePrefix) else {
                            throw XMLError("attribute '\(attribute)' uses the undeclared prefix '\(attributePrefix)'")
                        }
                        xmlNewNsProp(node, ns, attributeLocal, try carried(member.text, at: memberPath))
                    } else {
                        xmlNewProp(node, attributeLocal, try carried(member.text, at: memberPath))
                    }
                } else if case .array(let items) = member {
                    for (index, item) in items.enumerated() {
                        _ = try element(key, item, document: document, parent: node, path: "\(memberPath)[\(index)]")
                    }
                } else {
                    _ = try element(key, member, document: document, parent: node, path: memberPath)
                }
            }
        case .array:
            throw XMLError("'\(name)' is an array where an element is expected; arrays repeat the element they are the value of")
        case .null:
            try setNamespace(node, prefix: prefix, name: name)
        default:
            try setNamespace(node, prefix: prefix, name: name)
            xmlNodeAddContent(node, try carried(value.text, at: path))
        }
        return node
    }

    /// `text` if XML 1.0 can carry every character of it (tab, line feed, carriage return and
    /// U+0020 on, but for U+FFFE and U+FFFF); libxml2 would cut a value at U+0000 and write
    /// the others as they are, making the document ill-formed.
    ///
    /// - Throws: ``XMLError`` naming the character and the JSON path of the value.
    private static func carried(_ text: String, at path: String) throws -> String {
        for scalar in text.unicodeScalars {
            let value = scalar.value
            let allowed = value >= 0x20 ? value != 0xFFFE && value != 0xFFFF : value == 0x9 || value == 0xA || value == 0xD
            guard allowed else {
                let hex = String(value, radix: 16, uppercase: true)
                throw XMLError("the value at \(path) holds U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex), which XML 1.0 cannot carry")
            }
        }
        return text
    }

    /// `base.key`, or `base['key']` for a key that is not a plain name.
    private static func jsonPath(_ base: String, _ key: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" }
        return plain ? "\(base).\(key)" : "\(base)['\(key.replacingOccurrences(of: "'", with: "\\'"))']"
    }

    private static func setNamespace(_ node: xmlNodePtr, prefix: String?, name: String) throws {
        let ns = xmlSearchNs(node.pointee.doc, node, prefix)
        if let prefix, ns == nil {
            throw XMLError("element '\(name)' uses the undeclared prefix '\(prefix)'")
        }
        if let ns { xmlSetNs(node, ns) }
    }

    private static func split(_ name: String) -> (prefix: String?, local: String) {
        guard let colon = name.firstIndex(of: ":") else { return (nil, name) }
        return (String(name[..<colon]), String(name[name.index(after: colon)...]))
    }

    private static func isXMLName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.:".unicodeScalars.contains($0) }
            && name.filter { $0 == ":" }.count <= 1 && !name.hasSuffix(":")
    }
}
