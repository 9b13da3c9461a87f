// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDigest
import SwitchboardDropFolder

/// SFTP drops (libssh2): the file consumer's rules on a remote folder, and uploads to a
/// temporary name renamed into place. The host key is always checked: pinned by fingerprint
/// or against a known_hosts file.
public struct SFTPAdapter: Adapter {
    static let connectionOptions: [OptionSpec] = [
        OptionSpec("privateKey", .string, doc: "Private key file (ed25519 or RSA, OpenSSH or PEM format)."),
        OptionSpec("passphrase", .string, secret: true, doc: "Passphrase of the private key."),
        OptionSpec("password", .string, secret: true, doc: "Password, when the server takes one (or in the URI: sftp://user:password@host)."),
        OptionSpec("hostKey", .string, doc: "The server's host key fingerprint as OpenSSH prints it (SHA256:…). This or knownHosts is required."),
        OptionSpec("knownHosts", .string, doc: "A known_hosts file that lists the server. This or hostKey is required."),
        OptionSpec("connectTimeout", .duration, default: "10s", doc: "Time allowed to connect and for each operation."),
    ]

    public static let spec = EndpointSpec(
        schemes: ["sftp"],
        summary: "SFTP drops: poll a remote folder for complete files (archived after success, moved aside after failure, each taken once), or upload atomically. Host keys are always checked.",
        consumerSyntax: "sftp://USER@HOST[:PORT]/FOLDER?privateKey=FILE&hostKey=SHA256:…[&include=*.ach&delay=5s]",
        producerSyntax: "sftp://USER@HOST[:PORT]/FOLDER?privateKey=FILE&knownHosts=FILE[&fileName=${file:name}]",
        options: DropFolderOptions.consumer + connectionOptions + RemoteFileProducer.options
    )

    let folders: RemoteFolders
    let logger: Logger

    public init(dataDirectory: String, logger: Logger = Logger(label: "switchboard.sftp")) {
        self.folders = RemoteFolders(dataDirectory: dataDirectory)
        self.logger = logger
    }

    static func folder(_ endpoint: Endpoint) throws -> RemoteFolder {
        guard endpoint.hasAuthority, let host = endpoint.host, !host.isEmpty else {
            throw EndpointError("an SFTP endpoint is sftp://USER@HOST[:PORT]/FOLDER")
        }
        guard let user = endpoint.user, !user.isEmpty else {
            throw EndpointError("an SFTP endpoint names its user: sftp://USER@\(host)/…")
        }
        let path = endpoint.path.isEmpty ? "/" : endpoint.path
        let options = endpoint.options
        let check: SFTPHostKeyCheck
        switch (options.string("hostKey"), options.string("knownHosts")) {
        case (let fingerprint?, nil):
            guard fingerprint.hasPrefix("SHA256:") else {
                throw EndpointError("option 'hostKey' is the fingerprint as OpenSSH prints it, SHA256:…; got '\(fingerprint)'")
            }
            check = .fingerprint(fingerprint)
        case (nil, let file?):
            check = .knownHosts(file)
        case (.some, .some):
            throw EndpointError("give one of 'hostKey' and 'knownHosts', not both")
        case (nil, nil):
            throw EndpointError("an SFTP endpoint needs 'hostKey=SHA256:…' or 'knownHosts=FILE': the server's host key is always checked (ssh-keyscan -p PORT HOST | ssh-keygen -lf - shows it)")
        }
        let authentication: SFTPAuthentication
        if let key = options.string("privateKey") {
            authentication = .privateKey(path: key, passphrase: options.string("passphrase"))
        } else if let password = options.string("password") ?? endpoint.password {
            authentication = .password(password)
        } else {
            throw EndpointError("an SFTP endpoint needs 'privateKey=FILE' or a password")
        }
        let port = endpoint.port ?? 22
        let timeout = options.duration("connectTimeout") ?? .seconds(10)
        return RemoteFolder(
            root: path,
            identity: "sftp://\(user)@\(host):\(port)\(path)",
            connect: { try SFTPSession(host: host, port: port, user: user, authentication: authentication, hostKey: check, timeout: timeout) },
            isConnectionError: { ($0 as? SFTPError)?.connection ?? false }
        )
    }

    public func consumerBinding(_ endpoint: Endpoint) -> String? {
        "sftp \(endpoint.user ?? "")@\(endpoint.host ?? ""):\(endpoint.port ?? 22)\(endpoint.path)"
    }

    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        folders.consumer(endpoint, folder: try SFTPAdapter.folder(endpoint), logger: logger)
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        try folders.producer(endpoint, folder: try SFTPAdapter.folder(endpoint))
    }

    public func shutdown() async {
        folders.close()
    }
}
