import Foundation
import Logging
import SwitchboardCore

/// Local folder drops: a polling consumer that takes only complete files, archives them after
/// their route succeeded (and never processes one twice), and a producer that writes
/// atomically under names that cannot leave its folder.
public struct FileAdapter: Adapter {
    public static let spec = EndpointSpec(
        schemes: ["file"],
        summary: "Folder drops: poll a folder for complete files (archived after success, moved aside with the reason after failure, each taken once), or write files atomically.",
        consumerSyntax: "file:FOLDER[?include=*.ach&delay=1s&readLock=rename&move=.done/${file:name}] (relative folders resolve against the working directory)",
        producerSyntax: "file:FOLDER[?fileName=${file:name}&fileExist=override]",
        options: consumerOptions + localConsumerOptions + producerOptions
    )

    /// Consumer options of local folders only.
    public static let localConsumerOptions: [OptionSpec] = [
        OptionSpec("streamBody", .bool, default: "false", roles: [.consumer],
                   doc: "Do not read the file into the message: a split with fixed-width reads it from the folder record by record, in constant memory; other steps see an empty body. For files too large for memory."),
    ]

    /// The consumer options every drop folder shares (local, SFTP, FTP).
    public static let consumerOptions: [OptionSpec] = [
            OptionSpec("include", .string, roles: [.consumer],
                       doc: "Comma-separated globs of file names to take (default: every file)."),
            OptionSpec("exclude", .string, roles: [.consumer],
                       doc: "Comma-separated globs of file names to leave alone."),
            OptionSpec("recursive", .bool, default: "false", roles: [.consumer],
                       doc: "Also take files in sub-folders (except dot folders such as .done)."),
            OptionSpec("delay", .duration, default: "1s", roles: [.consumer],
                       doc: "Time between polls."),
            OptionSpec("readLock", .choice(["rename", "stable", "marker"]), default: "rename", roles: [.consumer],
                       doc: "When a file counts as complete: rename (unchanged between two polls and for minAge, then renamed into .inprogress/ so nothing else takes it), stable (unchanged between two polls and for minAge, processed in place) or marker (a NAME.done file beside it)."),
            OptionSpec("minAge", .duration, default: "1s", roles: [.consumer],
                       doc: "How long a file must have been left unmodified before it is taken (rename and stable)."),
            OptionSpec("doneSuffix", .string, default: ".done", roles: [.consumer],
                       doc: "With readLock=marker: the marker is the file name plus this suffix; it is deleted with the file."),
            OptionSpec("sortBy", .choice(["name", "time"]), default: "name", roles: [.consumer],
                       doc: "Order files are taken in: by name or by modification time (oldest first)."),
            OptionSpec("maxMessagesPerPoll", .int, default: "100", roles: [.consumer],
                       doc: "Most files taken in one poll."),
            OptionSpec("move", .template, default: ".done/${file:name}", roles: [.consumer],
                       doc: "Where a file goes after its route succeeded, relative to the folder (templates: ${file:name}, ${date:yyyyMMdd}, …). An existing file there is not overwritten: a timestamp is added."),
            OptionSpec("delete", .bool, default: "false", roles: [.consumer],
                       doc: "Delete a file after success instead of moving it."),
            OptionSpec("moveFailed", .template, default: ".error/${file:name}", roles: [.consumer],
                       doc: "Where a file goes after its route failed, with NAME.error.txt beside it saying why."),
            OptionSpec("idempotent", .bool, default: "true", roles: [.consumer],
                       doc: "Record every file taken (in DATA/file-consumers.db) so that a restart never processes a finished file again."),
            OptionSpec("idempotentKey", .choice(["path", "checksum"]), default: "path", roles: [.consumer],
                       doc: "What identifies a file: path (full path + size + modification time) or checksum (SHA-256 of the content)."),
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

    /// The consumer settings an endpoint's shared options give, for a drop folder.
    public static func consumerSettings(_ endpoint: Endpoint, drop: any DropFolder) -> FileConsumer.Settings {
        let options = endpoint.options
        let globs = { (name: String) in
            (options.string(name) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return FileConsumer.Settings(
            drop: drop,
            include: globs("include"),
            exclude: globs("exclude"),
            recursive: options.bool("recursive") ?? false,
            delay: options.duration("delay") ?? .seconds(1),
            readLock: FileConsumer.ReadLock(rawValue: options.string("readLock") ?? "rename") ?? .rename,
            minAge: options.duration("minAge") ?? .seconds(1),
            doneSuffix: options.string("doneSuffix") ?? ".done",
            sortByTime: options.string("sortBy") == "time",
            maxPerPoll: max(1, options.int("maxMessagesPerPoll") ?? 100),
            move: endpoint.templates["move"],
            delete: options.bool("delete") ?? false,
            moveFailed: endpoint.templates["moveFailed"],
            idempotent: options.bool("idempotent") ?? true,
            checksumKey: options.string("idempotentKey") == "checksum",
            streamBody: options.bool("streamBody") ?? false
        )
    }

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
        let settings = FileAdapter.consumerSettings(endpoint, drop: LocalFolder(root: try FileAdapter.folder(of: endpoint)))
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
