// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore
import SwitchboardDropFolder

/// Local folder drops: a polling consumer that takes only complete files, archives them after
/// their route succeeded (and never processes one twice), and a producer that writes
/// atomically under names that cannot leave its folder.
public struct FileAdapter: Adapter {
    public static let spec = EndpointSpec(
        schemes: ["file"],
        summary: "Folder drops: poll a folder for complete files (archived after success, moved aside with the reason after failure, each taken once), or write files atomically.",
        consumerSyntax: "file:FOLDER[?include=*.ach&delay=1s&readLock=rename&move=.done/${file:name}] (relative folders resolve against the working directory)",
        producerSyntax: "file:FOLDER[?fileName=${file:name}&fileExist=override]",
        options: DropFolderOptions.consumer + localConsumerOptions + producerOptions
    )

    /// Consumer options of local folders only.
    public static let localConsumerOptions: [OptionSpec] = [
        OptionSpec("streamBody", .bool, default: "false", roles: [.consumer],
                   doc: "Do not read the file into the message: a split with fixed-width reads it from the folder record by record, in constant memory; other steps see an empty body. For files too large for memory."),
    ]

    /// The producer options of the local folder.
    public static let producerOptions: [OptionSpec] = [
            OptionSpec("fileName", .template, roles: [.producer],
                       doc: "Name of the file written, relative to the folder (default: ${file:name}, else the message id). A name that would leave the folder fails the step."),
            OptionSpec("fileExist", .choice(["override", "fail", "append", "unique"]), default: "override", roles: [.producer],
                       doc: "When the file exists: replace it atomically, fail the step, append to it, or write NAME-TIMESTAMP instead."),
            OptionSpec("mkdirs", .bool, default: "true", roles: [.producer],
                       doc: "Create missing folders on the way to the file."),
    ]

    /// Where the adapter keeps its records of files taken.
    public let dataDirectory: String
    let logger: Logger
    public let registry: FileRegistryHandle

    public init(dataDirectory: String, logger: Logger = Logger(label: "switchboard.file")) {
        self.dataDirectory = dataDirectory
        self.logger = logger
        self.registry = FileRegistryHandle(path: (dataDirectory as NSString).appendingPathComponent("file-consumers.db"))
    }

    /// The folder an endpoint names, absolute.
    static func folder(of endpoint: Endpoint) throws -> String {
        guard !endpoint.hasAuthority || endpoint.host == nil || endpoint.host == "" else {
            throw EndpointError("a file endpoint is a folder, as in file:var/inbox or file:/srv/drop; 'file://HOST' is not supported")
        }
        let path = endpoint.path
        guard !path.isEmpty else { throw EndpointError("a file endpoint needs a folder, as in file:var/inbox") }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }

    public func consumerBinding(_ endpoint: Endpoint) -> String? {
        (try? FileAdapter.folder(of: endpoint)).map { "folder \($0)" }
    }

    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        let settings = DropFolderOptions.consumerSettings(endpoint, drop: LocalFolder(root: try FileAdapter.folder(of: endpoint)))
        return FileConsumer(settings: settings, registry: registry, logger: logger)
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        let folder = try FileAdapter.folder(of: endpoint)
        try FilePaths.checkFixedName(endpoint.templates["fileName"], in: folder)
        return FileProducer(
            folder: folder,
            fileName: endpoint.templates["fileName"],
            fileExist: FileProducer.FileExist(rawValue: endpoint.options.string("fileExist") ?? "override") ?? .override,
            mkdirs: endpoint.options.bool("mkdirs") ?? true,
            display: endpoint.description
        )
    }

    public func shutdown() async {
        registry.close()
    }
}
