// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDropFolder

/// FTP and explicit FTPS drops (libcurl, passive mode): the file consumer's rules on a remote
/// folder, and uploads to a temporary name renamed into place.
public struct FTPAdapter: Adapter {
    public static let spec = EndpointSpec(
        schemes: ["ftp", "ftps"],
        summary: "FTP and explicit FTPS drops (passive): poll a remote folder for complete files (archived after success, moved aside after failure, each taken once), or upload atomically.",
        consumerSyntax: "ftp[s]://USER[:PASSWORD]@HOST[:PORT]/FOLDER[?include=*.ach&delay=5s]",
        producerSyntax: "ftp[s]://USER[:PASSWORD]@HOST[:PORT]/FOLDER[?fileName=${file:name}]",
        options: DropFolderOptions.consumer + [
            OptionSpec("password", .string, secret: true, doc: "Password (or in the URI: ftp://user:password@host)."),
            OptionSpec("caFile", .string, doc: "ftps: certificates to trust besides the system's (a private CA, or the server's own certificate)."),
            OptionSpec("connectTimeout", .duration, default: "10s", doc: "Time allowed to connect and for each server response."),
        ] + RemoteFileProducer.options
    )

    let folders: RemoteFolders
    let logger: Logger

    public init(dataDirectory: String, logger: Logger = Logger(label: "switchboard.ftp")) {
        self.folders = RemoteFolders(dataDirectory: dataDirectory)
        self.logger = logger
    }

    static func folder(_ endpoint: Endpoint) throws -> RemoteFolder {
        guard endpoint.hasAuthority, let host = endpoint.host, !host.isEmpty else {
            throw EndpointError("an FTP endpoint is \(endpoint.scheme)://USER@HOST[:PORT]/FOLDER")
        }
        guard let user = endpoint.user, !user.isEmpty else {
            throw EndpointError("an FTP endpoint names its user: \(endpoint.scheme)://USER@\(host)/…")
        }
        let tls = endpoint.scheme == "ftps"
        let port = endpoint.port ?? 21
        let path = endpoint.path.isEmpty ? "/" : endpoint.path
        let settings = FTPClient.Settings(
            host: host, port: port, user: user,
            password: endpoint.options.string("password") ?? endpoint.password ?? "",
            tls: tls, caFile: endpoint.options.string("caFile"),
            timeout: endpoint.options.duration("connectTimeout") ?? .seconds(10)
        )
        return RemoteFolder(
            root: path,
            identity: "\(endpoint.scheme)://\(user)@\(host):\(port)\(path)",
            connect: { try FTPClient(settings) },
            isConnectionError: { ($0 as? FTPError)?.connection ?? false }
        )
    }

    public func consumerBinding(_ endpoint: Endpoint) -> String? {
        "ftp \(endpoint.user ?? "")@\(endpoint.host ?? ""):\(endpoint.port ?? 21)\(endpoint.path)"
    }

    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        folders.consumer(endpoint, folder: try FTPAdapter.folder(endpoint), logger: logger)
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        try folders.producer(endpoint, folder: try FTPAdapter.folder(endpoint))
    }

    public func shutdown() async {
        folders.close()
    }
}
