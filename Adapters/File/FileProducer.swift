// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardDropFolder

/// `to: file:FOLDER?fileName=…`: writes the body to a temporary name in the target folder,
/// flushes it, and renames it into place, so readers never see half a file.
struct FileProducer: Producer {
    enum FileExist: String {
        case override, fail, append, unique
    }

    let folder: String
    let fileName: (any MessageTemplate)?
    let fileExist: FileExist
    let mkdirs: Bool
    let display: String

    func send(_ exchange: Exchange) async throws -> Exchange {
        let message = exchange.message
        let name: String
        if let fileName {
            name = try fileName.render(message)
        } else {
            name = message.headers[FileHeader.name] ?? message.headers[FileHeader.camelName] ?? message.id.description
        }
        var path: String
        do {
            path = try FilePaths.resolve(name, in: folder)
        } catch let error as FileAdapterError {
            throw ProcessingError("refused to write: \(error.message)", status: 400)
        }
        if mkdirs { try FilePaths.makeParent(of: path) }
        do {
            try FilePaths.checkInside(path, folder: folder)
        } catch let error as FileAdapterError {
            throw ProcessingError("refused to write: \(error.message)", status: 400)
        }
        let exists = FileManager.default.fileExists(atPath: path)
        switch fileExist {
        case .fail where exists:
            throw ProcessingError("\(path) already exists (fileExist=fail)", status: 409)
        case .append where exists:
            try message.body.withUnsafeReadableBytes { try FilePaths.write($0, to: path, append: true) }
        case .unique:
            path = try LocalFolder(root: folder).unique(path)
            try writeAtomically(message.body, to: path, replace: false)
        default:
            try writeAtomically(message.body, to: path, replace: fileExist != .fail)
        }
        var reply = exchange
        reply.message.headers[FileHeader.produced] = path
        return reply
    }

    /// Writes to `.NAME.ID.tmp` beside the target and renames it over the target (or, when
    /// `replace` is false, links it so an existing file is never overwritten).
    private func writeAtomically(_ body: ByteBuffer, to path: String, replace: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/." + (path as NSString).lastPathComponent + "." + MessageID().description + ".tmp"
        try body.withUnsafeReadableBytes { try FilePaths.write($0, to: temporary, exclusive: true) }
        defer { unlink(temporary) }
        if replace {
            try FilePaths.rename(temporary, to: path)
        } else if link(temporary, path) != 0 {
            let reason = errno == EEXIST ? "it already exists" : String(cString: strerror(errno))
            throw ProcessingError("cannot write \(path): \(reason)", status: 409)
        }
        FilePaths.syncFolder(directory)
    }

    func describeReply(_ reply: Exchange) -> String? {
        reply.message.headers[FileHeader.produced].map { "wrote \($0)" }
    }
}
