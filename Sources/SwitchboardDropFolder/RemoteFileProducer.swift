// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore

/// `to:` a remote drop folder (SFTP, FTP): uploads to `.NAME.ID.tmp` beside the target and
/// renames it into place. `override` removes an existing file just before the rename (SFTP
/// version 3 and FTP cannot rename over a file).
public struct RemoteFileProducer: Producer {
    let folder: any DropFolder
    let fileName: (any MessageTemplate)?
    let fileExist: String
    let mkdirs: Bool

    public init(folder: any DropFolder, fileName: (any MessageTemplate)?, fileExist: String, mkdirs: Bool) {
        self.folder = folder
        self.fileName = fileName
        self.fileExist = fileExist
        self.mkdirs = mkdirs
    }

    public func send(_ exchange: Exchange) async throws -> Exchange {
        let message = exchange.message
        let name = try fileName?.render(message) ?? message.headers[FileHeader.name] ?? message.headers[FileHeader.camelName] ?? message.id.description
        var path: String
        do {
            path = try FilePaths.resolve(name, in: folder.root)
        } catch let error as FileAdapterError {
            throw ProcessingError("refused to write: \(error.message)", status: 400)
        }
        let body = Array(message.body.readableBytesView)
        let produced = try await folder.blocking { [self, path] in try upload(body, to: path) }
        var reply = exchange
        reply.message.headers[FileHeader.produced] = produced
        return reply
    }

    /// Writes `body` to a temporary name beside `path` and renames it into place; returns
    /// the name written. Blocks on the network.
    private func upload(_ body: [UInt8], to path: String) throws -> String {
        var path = path
        let temporary = (path as NSString).deletingLastPathComponent + "/." + (path as NSString).lastPathComponent + "." + MessageID().description + ".tmp"
        if mkdirs { try folder.makeParent(of: path) }
        let exists = try folder.exists(path)
        switch fileExist {
        case "fail" where exists:
            throw ProcessingError("\(path) already exists on \(folder.identity) (fileExist=fail)", status: 409)
        case "unique":
            path = try folder.unique(path)
        default:
            break
        }
        try folder.write(body, to: temporary)
        do {
            if exists, fileExist == "override" { try folder.remove(path) }
            try folder.rename(temporary, to: path)
        } catch {
            try? folder.remove(temporary)
            throw error
        }
        return path
    }

    public func describeReply(_ reply: Exchange) -> String? {
        reply.message.headers[FileHeader.produced].map { "uploaded \($0)" }
    }
}

extension RemoteFileProducer {
    /// The producer options every remote drop folder takes.
    public static let options: [OptionSpec] = [
        OptionSpec("fileName", .template, roles: [.producer],
                   doc: "Name of the file written, relative to the folder (default: ${file:name}, else the message id). A name that would leave the folder fails the step."),
        OptionSpec("fileExist", .choice(["override", "fail", "unique"]), default: "override", roles: [.producer],
                   doc: "When the file exists: replace it, fail the step, or write NAME-TIMESTAMP instead."),
        OptionSpec("mkdirs", .bool, default: "true", roles: [.producer], doc: "Create missing folders on the way to the file."),
    ]

    /// A producer configured from an endpoint's `fileName`, `fileExist` and `mkdirs`.
    ///
    /// - Throws: ``EndpointError`` for a fixed `fileName` that would leave the folder.
    public init(endpoint: Endpoint, folder: any DropFolder) throws {
        try FilePaths.checkFixedName(endpoint.templates["fileName"], in: folder.root)
        self.init(
            folder: folder,
            fileName: endpoint.templates["fileName"],
            fileExist: endpoint.options.string("fileExist") ?? "override",
            mkdirs: endpoint.options.bool("mkdirs") ?? true
        )
    }
}
