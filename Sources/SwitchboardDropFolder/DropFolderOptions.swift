// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore

/// The endpoint options every drop folder shares (local, SFTP, FTP) and the consumer
/// settings they give.
public enum DropFolderOptions {
    /// The consumer options every drop folder shares (local, SFTP, FTP).
    public static let consumer: [OptionSpec] = [
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
}
