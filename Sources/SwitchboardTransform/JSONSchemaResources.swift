// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Where the schema documents a schema references come from: the bundled 2020-12
/// meta-schemas, folders that stand for remote URI prefixes, and files inside the allowed
/// folder. Nothing is ever fetched from the network.
struct SchemaSources {
    /// A remote URI prefix served from a local folder (`http://example.com/schemas/` → `schemas/`).
    struct Mapping {
        let prefix: String
        let folder: String
    }

    let allowedRoot: String?
    let mappings: [Mapping]

    /// `allowedRoot` and the mapped folders, made absolute with symbolic links resolved, so
    /// that a file is inside them only if its real path is. Longer prefixes are tried first.
    init(allowedRoot: String?, resources: [String: String]) {
        self.allowedRoot = allowedRoot.map(SchemaSources.realPath)
        mappings = resources
            .map { Mapping(prefix: $0.key, folder: SchemaSources.realPath($0.value)) }
            .sorted { $0.prefix.count > $1.prefix.count }
    }

    static func realPath(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func isInside(_ path: String, _ folder: String) -> Bool {
        path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    /// The JSON document at `uri` (without fragment) and a short name for messages.
    ///
    /// - Throws: a message saying why the document cannot be had.
    func document(_ uri: String) throws(SchemaSourceError) -> (json: JSONValue, name: String) {
        if let text = MetaSchemas.documents[uri] {
            return (try parse(Data(text.utf8), uri), uri)
        }
        if let mapping = mappings.first(where: { uri.hasPrefix($0.prefix) }) {
            let rest = String(uri.dropFirst(mapping.prefix.count))
            let decoded = rest.removingPercentEncoding ?? rest
            let path = SchemaSources.realPath(mapping.folder + "/" + decoded)
            guard SchemaSources.isInside(path, mapping.folder) else {
                throw SchemaSourceError("'\(uri)' maps to \(path), outside \(mapping.folder) (the folder for \(mapping.prefix))")
            }
            return (try read(path, uri), uri)
        }
        guard let url = URL(string: uri), url.isFileURL else {
            let hint = mappings.isEmpty ? "" : " (mapped prefixes: \(mappings.map(\.prefix).joined(separator: ", ")))"
            throw SchemaSourceError("cannot resolve '\(uri)': it is not part of this schema, no resource folder is mapped for it\(hint), and schemas are never fetched from the network")
        }
        let path = SchemaSources.realPath(url.path)
        guard let allowedRoot, SchemaSources.isInside(path, allowedRoot) else {
            throw SchemaSourceError("'\(path)' is outside the folder schemas may be read from (\(allowedRoot ?? "none"))")
        }
        return (try read(path, uri), (path as NSString).lastPathComponent)
    }

    private func read(_ path: String, _ uri: String) throws(SchemaSourceError) -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SchemaSourceError("cannot read referenced schema \(path) (for '\(uri)')")
        }
        return try parse(data, path)
    }

    private func parse(_ data: Data, _ name: String) throws(SchemaSourceError) -> JSONValue {
        do {
            return try data.withUnsafeBytes { try JSONValue(bytes: $0) }
        } catch {
            throw SchemaSourceError("referenced schema \(name) is not valid JSON: \(error)")
        }
    }
}

struct SchemaSourceError: Error {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}
