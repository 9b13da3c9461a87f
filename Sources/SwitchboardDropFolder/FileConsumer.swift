// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardDigest
import Synchronization

/// `from: file:FOLDER?…`: polls a folder and hands each complete file to the route as one
/// message. A file is archived (moved or deleted) only after its route succeeded; after a
/// failure it is moved aside with a `.error.txt` saying why. With `idempotent` (the default)
/// every file taken is recorded, so a finished file is never processed twice and a file
/// whose processing a crash interrupted is processed again.
public struct FileConsumer: Consumer {
    public enum ReadLock: String, Sendable {
        case rename, stable, marker
    }

    public struct Settings: Sendable {
        var folder: String { drop.root }
        var drop: any DropFolder
        var include: [String]
        var exclude: [String]
        var recursive: Bool
        var delay: Duration
        var readLock: ReadLock
        var minAge: Duration
        var doneSuffix: String
        var sortByTime: Bool
        var maxPerPoll: Int
        var move: (any MessageTemplate)?
        var delete: Bool
        var moveFailed: (any MessageTemplate)?
        var idempotent: Bool
        var checksumKey: Bool
        /// Leave the body empty and name the file in ``Message/bodyFileProperty`` instead.
        var streamBody = false
    }

    /// Where files being processed wait under rename locking (inside the folder, so the
    /// rename is atomic).
    static let inProgressFolder = ".inprogress"

    let settings: Settings
    let registry: FileRegistryHandle
    let logger: Logger
    /// Entries whose refusal was logged (each is logged once, not at every poll).
    private let refused = LoggedOnce()

    public init(settings: Settings, registry: FileRegistryHandle, logger: Logger) {
        self.settings = settings
        self.registry = registry
        self.logger = logger
    }

    /// What a poll saw of a file: it is taken when the next poll sees the same.
    struct Signature: Equatable {
        var size: Int64
        var modifiedNanos: Int64
    }

    struct Candidate {
        var relative: String
        var path: String
        var signature: Signature
    }

    public func run(_ deliver: @escaping Delivery) async throws {
        // A remote folder that cannot be reached yet is tried again (the folder backs off);
        // the route waits instead of failing the node.
        var reported = false
        while !Task.isCancelled {
            do {
                try await settings.drop.blocking { [settings] in try settings.drop.prepare() }
                if reported { logger.notice("drop folder reachable again", metadata: ["folder": "\(settings.drop.identity)"]) }
                break
            } catch {
                if !reported {
                    logger.error("drop folder not reachable; trying again", metadata: ["folder": "\(settings.drop.identity)", "error": "\(error)"])
                    reported = true
                }
                try? await Task.sleep(for: max(settings.delay, .seconds(1)))
            }
        }
        let registry = settings.idempotent ? try self.registry.open() : nil
        await apart { [self] in
            recoverInProgress()
            if let registry { recoverProcessing(registry) }
        }
        var previous: [String: Signature] = [:]
        while !Task.isCancelled {
            var current: [String: Signature] = [:]
            var taken = 0
            let candidates = (try? await settings.drop.blocking { [self] in scan() }) ?? []
            for candidate in candidates {
                guard taken < settings.maxPerPoll, !Task.isCancelled else { break }
                current[candidate.relative] = candidate.signature
                let last = previous[candidate.relative]
                guard (try? await settings.drop.blocking({ [self] in ready(candidate, previous: last) })) == true else { continue }
                taken += 1
                await take(candidate, registry: registry, deliver: deliver)
            }
            previous = current
            try? await Task.sleep(for: settings.delay)
        }
    }

    // MARK: Finding complete files

    /// The files in the folder that the include and exclude globs let through, in order.
    func scan() -> [Candidate] {
        var found: [Candidate] = []
        func visit(_ folder: String, _ prefix: String) {
            guard let entries = try? settings.drop.list(folder) else { return }
            for entry in entries where !entry.name.hasPrefix(".") {
                if let refusal = entry.refusal {
                    let path = folder + "/" + entry.name
                    if refused.first(path) {
                        logger.warning("a dropped entry is not taken", metadata: ["file": "\(path)", "reason": "\(refusal)"])
                    }
                    continue
                }
                if entry.isDirectory {
                    if settings.recursive { visit(folder + "/" + entry.name, prefix + entry.name + "/") }
                    continue
                }
                guard entry.isFile, wanted(entry.name) else { continue }
                found.append(Candidate(
                    relative: prefix + entry.name, path: folder + "/" + entry.name,
                    signature: Signature(size: entry.size, modifiedNanos: entry.modifiedNanos)
                ))
            }
        }
        visit(settings.folder, "")
        if settings.sortByTime {
            found.sort { ($0.signature.modifiedNanos, $0.relative) < ($1.signature.modifiedNanos, $1.relative) }
        } else {
            found.sort { $0.relative < $1.relative }
        }
        return found
    }

    func wanted(_ name: String) -> Bool {
        if settings.readLock == .marker, name.hasSuffix(settings.doneSuffix) { return false }
        if name.hasSuffix(".error.txt") { return false }
        if !settings.include.isEmpty, !settings.include.contains(where: { fnmatch($0, name, 0) == 0 }) { return false }
        return !settings.exclude.contains { fnmatch($0, name, 0) == 0 }
    }

    /// Whether a file is complete by the read-lock strategy.
    func ready(_ candidate: Candidate, previous: Signature?) -> Bool {
        switch settings.readLock {
        case .marker:
            return (try? settings.drop.exists(candidate.path + settings.doneSuffix)) ?? false
        case .rename, .stable:
            let age = Date().timeIntervalSince1970 * 1e9 - Double(candidate.signature.modifiedNanos)
            let minimum = Double(settings.minAge.components.seconds) * 1e9 + Double(settings.minAge.components.attoseconds) / 1e9
            return previous == candidate.signature && age >= minimum
        }
    }

    /// Puts files a stopped node left in `.inprogress/` back where they were dropped, so
    /// they are taken again.
    func recoverInProgress() {
        let root = settings.folder + "/" + FileConsumer.inProgressFolder
        var recovered = 0
        func visit(_ folder: String, _ prefix: String) {
            guard let entries = try? settings.drop.list(folder) else { return }
            for entry in entries where entry.name != "." && entry.name != ".." {
                if entry.isDirectory {
                    visit(folder + "/" + entry.name, prefix + entry.name + "/")
                    continue
                }
                guard entry.isFile else { continue }
                let path = folder + "/" + entry.name
                do {
                    let original = try settings.drop.unique(settings.folder + "/" + prefix + entry.name)
                    try settings.drop.makeParent(of: original)
                    try settings.drop.rename(path, to: original)
                    recovered += 1
                } catch {
                    logger.error("cannot put back a file left in progress", metadata: ["file": "\(path)", "error": "\(error)"])
                }
            }
        }
        visit(root, "")
        if recovered > 0 {
            logger.notice("files left in progress by a stop are taken again", metadata: ["folder": "\(settings.drop.identity)", "files": "\(recovered)"])
        }
    }

    /// Settles what a stop left `processing` in the registry with its file neither dropped
    /// nor in progress: a file found moved aside (by a node that stopped between the move and
    /// its note, before the move came last) is recorded as failed, and given a note if it
    /// has none. Files still to be taken are left: they are processed again.
    func recoverProcessing(_ registry: FileRegistry) {
        let consumer = settings.drop.identity
        let records: [(key: String, path: String)]
        do {
            records = try registry.processing(consumer: consumer)
        } catch {
            logger.error("cannot read the record of files taken", metadata: ["folder": "\(consumer)", "error": "\(error)"])
            return
        }
        let prefix = settings.folder.hasSuffix("/") ? settings.folder : settings.folder + "/"
        for record in records where record.path.hasPrefix(prefix) {
            let relative = String(record.path.dropFirst(prefix.count))
            let inProgress = prefix + FileConsumer.inProgressFolder + "/" + relative
            let aside = prefix + ".error/" + relative
            guard (try? settings.drop.exists(record.path)) != true, (try? settings.drop.exists(inProgress)) != true,
                  (try? settings.drop.exists(aside)) == true
            else { continue }
            let reason = "the node stopped while moving this file aside; the route's error was not kept"
            if (try? settings.drop.exists(aside + ".error.txt")) != true {
                try? settings.drop.write(Array(Self.note(for: record.path, messageID: "unknown", reason: reason).utf8), to: aside + ".error.txt")
            }
            do {
                try registry.finished(consumer: consumer, key: record.key, state: .failed, error: reason)
                logger.notice("a file left processing by a stop was found moved aside; recorded as failed", metadata: ["file": "\(aside)"])
            } catch {
                logger.error("cannot record a failed file", metadata: ["file": "\(aside)", "error": "\(error)"])
            }
        }
    }

    // MARK: Processing one file

    /// Folder work that logs its own failures, apart from the async threads for a remote
    /// folder (see ``DropFolder/blocking(_:)``).
    func apart(_ body: @escaping @Sendable () -> Void) async {
        _ = try? await settings.drop.blocking(body)
    }

    /// A file moved in progress (rename locking) and read: where it is now, its content (or
    /// its local path, streaming) and checksum.
    struct Claimed: Sendable {
        var working: String
        var content: [UInt8]
        var checksum: String?
        var streamed: String?
    }

    /// Takes the file from the folder and reads it; nil when another consumer took it, it
    /// went away, or it cannot be read (then it is put back).
    func claim(_ candidate: Candidate) -> Claimed? {
        var working = candidate.path
        if settings.readLock == .rename {
            let target = settings.folder + "/" + FileConsumer.inProgressFolder + "/" + candidate.relative
            do {
                try settings.drop.makeParent(of: target)
                try settings.drop.rename(candidate.path, to: target)
            } catch {
                // Another consumer took it, or it went away: nothing to do.
                logger.debug("file not taken", metadata: ["file": "\(candidate.path)", "reason": "\(error)"])
                return nil
            }
            working = target
        }
        var content: [UInt8] = []
        var checksum: String?
        let streamed = settings.streamBody ? settings.drop.localPath(working) : nil
        do {
            if let streamed {
                if settings.checksumKey { checksum = try FilePaths.sha256(ofFile: streamed) }
            } else {
                content = try settings.drop.read(working)
                if settings.checksumKey { checksum = content.withUnsafeBytes { SHA256.hex($0) } }
            }
        } catch {
            logger.error("cannot read a dropped file", metadata: ["file": "\(candidate.path)", "error": "\(error)"])
            putBack(working, candidate)
            return nil
        }
        return Claimed(working: working, content: content, checksum: checksum, streamed: streamed)
    }

    func take(_ candidate: Candidate, registry: FileRegistry?, deliver: Delivery) async {
        guard let claimed = try? await settings.drop.blocking({ [self] in claim(candidate) }) else { return }
        let working = claimed.working
        let checksum = claimed.checksum
        let streamed = claimed.streamed
        let key = checksum.map { "sha256:" + $0 } ?? "\(candidate.path)|\(candidate.signature.size)|\(candidate.signature.modifiedNanos)"
        var message = makeMessage(candidate, content: claimed.content)
        if let streamed { message.properties[Message.bodyFileProperty] = streamed }
        let taken = message
        let consumer = settings.drop.identity
        do {
            if let registry, let state = try registry.state(consumer: consumer, key: key), state != .processing {
                // Finished before a stop that came ahead of the archive step, or dropped again.
                logger.notice("file already processed; archived without processing it again", metadata: ["file": "\(candidate.path)", "state": "\(state.rawValue)"])
                if state == .done {
                    await apart { [self] in archive(working, taken) }
                } else {
                    await apart { [self] in moveAside(working, taken, reason: "processed before, and failed then") }
                }
                return
            }
            try registry?.taken(consumer: consumer, key: key, path: candidate.path)
        } catch {
            logger.error("cannot record a taken file; leaving it for the next poll", metadata: ["file": "\(candidate.path)", "error": "\(error)"])
            await apart { [self] in putBack(working, candidate) }
            return
        }

        do {
            _ = try await deliver(Exchange(message: message, pattern: .inOnly))
        } catch let failure as StepFailure where failure.deadLetter != nil {
            // The message is safe in the dead letter channel, to be replayed from there:
            // the file counts as handled and is archived, so it is not processed twice.
            logger.warning("file failed and went to the dead letter channel; archived", metadata: [
                "file": "\(candidate.path)", "dead-letter": "\(failure.messageID)", "error": "\(failure.reason)",
            ])
        } catch {
            if Task.isCancelled || error is CancellationError {
                // Stopping mid-route: the file stays in progress and is taken again at start.
                return
            }
            let reason = "\(error)"
            await apart { [self] in
                moveAside(working, taken, reason: reason) {
                    do {
                        try registry?.finished(consumer: consumer, key: key, state: .failed, error: reason)
                    } catch {
                        logger.error("cannot record a failed file", metadata: ["file": "\(candidate.path)", "error": "\(error)"])
                    }
                }
            }
            return
        }
        do {
            // Recorded before the archive step: a stop in between archives it at restart
            // without delivering it again.
            try registry?.finished(consumer: consumer, key: key, state: .done)
        } catch {
            logger.error("cannot record a finished file", metadata: ["file": "\(candidate.path)", "error": "\(error)"])
        }
        await apart { [self] in
            archive(working, taken)
            if settings.readLock == .marker { try? settings.drop.remove(candidate.path + settings.doneSuffix) }
        }
    }

    func makeMessage(_ candidate: Candidate, content: [UInt8]) -> Message {
        let name = (candidate.relative as NSString).lastPathComponent
        var headers = Headers()
        headers[FileHeader.name] = candidate.relative
        headers[FileHeader.onlyName] = name
        headers[FileHeader.path] = candidate.path
        headers[FileHeader.length] = String(candidate.signature.size)
        headers[FileHeader.lastModified] = String(candidate.signature.modifiedNanos / 1_000_000)
        switch (name as NSString).pathExtension.lowercased() {
        case "xml": headers["Content-Type"] = "application/xml"
        case "json": headers["Content-Type"] = "application/json"
        case "csv": headers["Content-Type"] = "text/csv"
        case "txt": headers["Content-Type"] = "text/plain"
        default: headers["Content-Type"] = "application/octet-stream"
        }
        return Message(
            headers: headers,
            body: ByteBuffer(bytes: content),
            properties: [Message.arrivedAtProperty: String(candidate.signature.modifiedNanos / 1000)]
        )
    }

    /// Moves (or deletes) a file whose route succeeded.
    func archive(_ working: String, _ message: Message) {
        if settings.delete {
            do {
                try settings.drop.remove(working)
            } catch {
                logger.error("cannot delete a processed file", metadata: ["file": "\(working)", "error": "\(error)"])
            }
            return
        }
        relocate(working, message, template: settings.move, fallback: ".done/", what: "move")
    }

    /// Moves a file whose route failed aside, with `NAME.error.txt` beside it: the note is
    /// written first, then `record` runs (the registry says failed), then the file moves. A
    /// stop between them leaves the file in progress, taken again at start (and, if the
    /// registry already said failed, moved aside then): never a moved file without its note.
    func moveAside(_ working: String, _ message: Message, reason: String, record: () -> Void = {}) {
        guard let target = destination(working, message, template: settings.moveFailed, fallback: ".error/", what: "moveFailed") else { return }
        do {
            try settings.drop.write(Array(Self.note(for: message.headers[FileHeader.path] ?? working, messageID: "\(message.id)", reason: reason).utf8),
                                    to: target + ".error.txt")
        } catch {
            logger.error("cannot write the error note of a failed file", metadata: ["file": "\(target)", "error": "\(error)"])
        }
        record()
        guard move(working, to: target) else { return }
        logger.warning("file failed and was moved aside", metadata: ["file": "\(target)", "error": "\(reason)"])
    }

    /// The text of `NAME.error.txt`.
    static func note(for file: String, messageID: String, reason: String) -> String {
        """
        file: \(file)
        failed: \(ISO8601DateFormatter().string(from: Date()))
        message: \(messageID)
        error: \(reason)

        """
    }

    /// Moves `working` to the place a template names (see ``destination(_:_:template:fallback:what:)``).
    @discardableResult
    func relocate(_ working: String, _ message: Message, template: (any MessageTemplate)?, fallback: String, what: String) -> String? {
        guard let target = destination(working, message, template: template, fallback: fallback, what: what) else { return nil }
        return move(working, to: target) ? target : nil
    }

    /// Where `working` goes: the place a template names (relative to the folder), or
    /// `fallback` + the file name when the name would leave the folder; a free name there
    /// (nothing is overwritten), its folder made.
    func destination(_ working: String, _ message: Message, template: (any MessageTemplate)?, fallback: String, what: String) -> String? {
        let relative = message.headers[FileHeader.name] ?? (working as NSString).lastPathComponent
        var target: String
        do {
            target = try FilePaths.resolve(try template?.render(message) ?? fallback + relative, in: settings.folder)
        } catch {
            logger.error("'\(what)' gave no usable name; using \(fallback)", metadata: ["file": "\(working)", "error": "\(error)"])
            target = settings.folder + "/" + fallback + relative
        }
        do {
            target = try settings.drop.unique(target)
            try settings.drop.makeParent(of: target)
            return target
        } catch {
            logger.error("cannot archive a file", metadata: ["file": "\(working)", "error": "\(error)"])
            return nil
        }
    }

    private func move(_ working: String, to target: String) -> Bool {
        do {
            try settings.drop.rename(working, to: target)
            return true
        } catch {
            logger.error("cannot archive a file", metadata: ["file": "\(working)", "error": "\(error)"])
            return false
        }
    }

    func putBack(_ working: String, _ candidate: Candidate) {
        guard working != candidate.path else { return }
        try? settings.drop.rename(working, to: candidate.path)
    }
}

/// Names something was logged for, so that it is logged once.
final class LoggedOnce: Sendable {
    private let names = Mutex<Set<String>>([])

    /// Whether this is the first time `name` comes.
    func first(_ name: String) -> Bool {
        names.withLock { $0.insert(name).inserted }
    }
}
