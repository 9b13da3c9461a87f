// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
@testable import SwitchboardDropFolder
@testable import SwitchboardFile
import SwitchboardRouting
import Testing

/// The file adapter against real folders: routes load with a file consumer, run, and the
/// tests drop files and look at what the folders hold.
@Suite struct FileAdapterTests {
    /// A scratch folder with `in/`, `out/` and `data/`.
    struct Folders {
        let root: String
        var inbox: String { root + "/in" }
        var outbox: String { root + "/out" }
        var data: String { root + "/data" }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("sb-file-\(UUID().uuidString)").path
            for folder in ["/in", "/out", "/data"] {
                try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
            }
        }

        func files(_ folder: String) -> [String] {
            guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return [] }
            var found: [String] = []
            while let relative = enumerator.nextObject() as? String {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                    found.append(relative)
                }
            }
            return found.sorted()
        }

        func read(_ path: String) -> String? {
            try? String(contentsOfFile: path, encoding: .utf8)
        }

        func write(_ text: String, to path: String) throws {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
    }

    static func engine(_ yaml: String, folders: Folders) throws -> RouteEngine {
        let loader = RouteLoader(
            catalog: AdapterCatalog([FileAdapter(dataDirectory: folders.data, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })]),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
            environment: [:]
        )
        return try loader.load(sources: [(yaml, "routes.yaml")])
    }

    /// Runs the engine while `body` runs, then stops it.
    static func running<T>(_ engine: RouteEngine, _ body: () async throws -> T) async throws -> T {
        let task = Task { try await engine.run() }
        defer { task.cancel() }
        let result = try await body()
        task.cancel()
        _ = await task.result
        return result
    }

    /// Waits up to `seconds` for `condition` (generous: under a full parallel test run the
    /// consumer's tasks may wait long for a thread; it returns as soon as the condition holds).
    static func eventually(_ seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    static func route(_ folders: Folders, options: String = "", to: String? = nil) -> String {
        """
        routes:
          - id: drop
            from: "file:\(folders.inbox)?delay=50ms\(options.contains("minAge") ? "" : "&minAge=100ms")\(options)"
            steps:
              - to: "\(to ?? "file:\(folders.outbox)?fileName=${file:name.noext}.out&fileExist=unique")"
        """
    }

    @Test func completeFilesAreDeliveredThenArchived() async throws {
        let folders = try Folders()
        let engine = try Self.engine(Self.route(folders), folders: folders)
        try await Self.running(engine) {
            try folders.write("first", to: folders.inbox + "/a.txt")
            try folders.write("second", to: folders.inbox + "/b.txt")
            #expect(await Self.eventually { folders.files(folders.inbox) == [".done/a.txt", ".done/b.txt"] }, "\(folders.files(folders.inbox))")
            #expect(folders.files(folders.outbox) == ["a.out", "b.out"])
            #expect(folders.read(folders.outbox + "/a.out") == "first")
            #expect(folders.read(folders.outbox + "/b.out") == "second")
        }
    }

    @Test func halfWrittenFilesAreNotTaken() async throws {
        let folders = try Folders()
        let engine = try Self.engine(Self.route(folders, options: "&minAge=300ms"), folders: folders)
        try await Self.running(engine) {
            let path = folders.inbox + "/big.txt"
            let handle = try #require(FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: path, contents: nil); return path }()))
            // A writer that keeps adding a line every 50 ms for over a second: the file is
            // never unchanged long enough to be taken.
            var written = ""
            for index in 0..<25 {
                let line = "line \(index)\n"
                handle.write(Data(line.utf8))
                written += line
                try await Task.sleep(for: .milliseconds(50))
                #expect(folders.files(folders.outbox).isEmpty, "taken while written, after \(index + 1) lines")
                #expect(FileManager.default.fileExists(atPath: path))
            }
            try handle.close()
            #expect(await Self.eventually { folders.files(folders.outbox) == ["big.out"] })
            #expect(folders.read(folders.outbox + "/big.out") == written)
        }
    }

    @Test func markerFilesSayWhenAFileIsComplete() async throws {
        let folders = try Folders()
        let engine = try Self.engine(Self.route(folders, options: "&readLock=marker&delete=true"), folders: folders)
        try await Self.running(engine) {
            try folders.write("payload", to: folders.inbox + "/batch.ach")
            try await Task.sleep(for: .milliseconds(400))
            #expect(folders.files(folders.outbox).isEmpty)
            try folders.write("", to: folders.inbox + "/batch.ach.done")
            #expect(await Self.eventually { folders.files(folders.outbox) == ["batch.out"] })
            #expect(await Self.eventually { folders.files(folders.inbox).isEmpty }, "\(folders.files(folders.inbox))")
        }
    }

    @Test func includeExcludeAndRecursiveChooseTheFiles() async throws {
        let folders = try Folders()
        let engine = try Self.engine(Self.route(folders, options: "&include=*.ach,*.txt&exclude=skip*&recursive=true&move=archive/${file:name}"), folders: folders)
        try await Self.running(engine) {
            try folders.write("1", to: folders.inbox + "/one.ach")
            try folders.write("2", to: folders.inbox + "/sub/two.txt")
            try folders.write("3", to: folders.inbox + "/skip-me.ach")
            try folders.write("4", to: folders.inbox + "/other.csv")
            #expect(await Self.eventually { folders.files(folders.outbox) == ["one.out", "sub/two.out"] }, "\(folders.files(folders.outbox))")
            #expect(await Self.eventually { folders.files(folders.inbox) == ["archive/one.ach", "archive/sub/two.txt", "other.csv", "skip-me.ach"] }, "\(folders.files(folders.inbox))")
        }
    }

    @Test func aFailedFileIsMovedAsideWithTheReasonAndNamesCannotEscape() async throws {
        let folders = try Folders()
        let engine = try Self.engine(Self.route(folders, to: "file:\(folders.outbox)?fileName=../${file:name}"), folders: folders)
        try await Self.running(engine) {
            try folders.write("data", to: folders.inbox + "/escape.txt")
            #expect(await Self.eventually { folders.files(folders.inbox) == [".error/escape.txt", ".error/escape.txt.error.txt"] }, "\(folders.files(folders.inbox))")
            let note = try #require(folders.read(folders.inbox + "/.error/escape.txt.error.txt"))
            #expect(note.contains("error: route 'drop' step 0"), "\(note)")
            #expect(note.contains("the file name '../escape.txt' would leave the folder \(folders.outbox)"), "\(note)")
            #expect(!FileManager.default.fileExists(atPath: folders.root + "/escape.txt"))
        }
    }

    @Test func aRestartNeverProcessesAFinishedFileTwiceAndTakesUnfinishedOnesAgain() async throws {
        let folders = try Folders()
        let yaml = Self.route(folders)
        try folders.write("once", to: folders.inbox + "/a.txt")
        try await Self.running(try Self.engine(yaml, folders: folders)) {
            #expect(await Self.eventually { folders.files(folders.outbox) == ["a.out"] })
        }
        // The node stopped after recording a.txt as done but before archiving it (the file
        // is still in progress), and while c.txt was in its route.
        try FileManager.default.createDirectory(atPath: folders.inbox + "/.inprogress", withIntermediateDirectories: true)
        #expect(rename(folders.inbox + "/.done/a.txt", folders.inbox + "/.inprogress/a.txt") == 0)
        try folders.write("interrupted", to: folders.inbox + "/.inprogress/c.txt")
        try await Self.running(try Self.engine(yaml, folders: folders)) {
            #expect(await Self.eventually { folders.files(folders.inbox) == [".done/a.txt", ".done/c.txt"] }, "\(folders.files(folders.inbox))")
            #expect(folders.files(folders.outbox) == ["a.out", "c.out"], "a.txt delivered twice? \(folders.files(folders.outbox))")
        }
        // The same name dropped again with new content is a new file.
        try folders.write("twice", to: folders.inbox + "/a.txt")
        try await Self.running(try Self.engine(yaml, folders: folders)) {
            #expect(await Self.eventually { folders.files(folders.outbox).count == 3 }, "\(folders.files(folders.outbox))")
        }
    }

    @Test func checksumKeysRecogniseTheSameContentUnderAnotherTime() async throws {
        let folders = try Folders()
        let yaml = Self.route(folders, options: "&idempotentKey=checksum")
        try await Self.running(try Self.engine(yaml, folders: folders)) {
            try folders.write("same", to: folders.inbox + "/a.txt")
            #expect(await Self.eventually { folders.files(folders.outbox) == ["a.out"] })
            try folders.write("same", to: folders.inbox + "/a.txt")
            #expect(await Self.eventually { folders.files(folders.inbox).count == 2 }, "\(folders.files(folders.inbox))")
            #expect(folders.files(folders.outbox) == ["a.out"])
        }
    }

    @Test func theProducerWritesAtomicallyAndHonoursFileExist() async throws {
        let folders = try Folders()
        let engine = try Self.engine("""
        routes:
          - id: override
            from: direct:override
            steps: [ { to: "file:\(folders.outbox)?fileName=${header.name}" } ]
          - id: fail
            from: direct:fail
            steps: [ { to: "file:\(folders.outbox)?fileName=${header.name}&fileExist=fail" } ]
          - id: append
            from: direct:append
            steps: [ { to: "file:\(folders.outbox)?fileName=${header.name}&fileExist=append" } ]
          - id: unique
            from: direct:unique
            steps: [ { to: "file:\(folders.outbox)?fileName=${header.name}&fileExist=unique&mkdirs=true" } ]
        """, folders: folders)
        func send(_ route: String, _ name: String, _ body: String) async throws -> Exchange {
            var message = Message(body: ByteBuffer(string: body))
            message.headers["name"] = name
            return try await engine.process(routeID: route, Exchange(message: message, pattern: .inOnly))
        }
        let reply = try await send("override", "x.txt", "one")
        #expect(reply.message.headers[FileHeader.produced] == folders.outbox + "/x.txt")
        // The adapter's own headers are dotted: never sent on the wire by an HTTP call after it.
        #expect(reply.message.headers.filter { $0.name != "name" }.allSatisfy { $0.name.contains(".") }, "\(reply.message.headers)")
        let consumer = try #require(try FileAdapter(dataDirectory: folders.data, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
            .makeConsumer(try AdapterCatalog([FileAdapter(dataDirectory: folders.data)]).resolve("file:\(folders.inbox)", role: .consumer).endpoint) as? FileConsumer)
        let taken = consumer.makeMessage(.init(relative: "a/b.xml", path: folders.inbox + "/a/b.xml", signature: .init(size: 3, modifiedNanos: 0)), content: [])
        #expect(taken.headers.filter { !$0.name.contains(".") }.map(\.name) == ["Content-Type"], "\(taken.headers)")
        #expect(taken.headers[FileHeader.name] == "a/b.xml" && taken.headers[FileHeader.onlyName] == "b.xml")
        _ = try await send("override", "x.txt", "two")
        #expect(folders.read(folders.outbox + "/x.txt") == "two")
        await #expect {
            try await send("fail", "x.txt", "three")
        } throws: { error in
            "\(error)".contains("already exists (fileExist=fail)")
        }
        #expect(folders.read(folders.outbox + "/x.txt") == "two")
        _ = try await send("append", "x.txt", "+more")
        #expect(folders.read(folders.outbox + "/x.txt") == "two+more")
        _ = try await send("unique", "deep/y.txt", "a")
        _ = try await send("unique", "deep/y.txt", "b")
        let deep = folders.files(folders.outbox + "/deep")
        #expect(deep.count == 2 && deep.contains("y.txt"), "\(deep)")
        #expect(Set(deep.compactMap { folders.read(folders.outbox + "/deep/" + $0) }) == ["a", "b"])
        #expect(!folders.files(folders.outbox).contains { $0.hasSuffix(".tmp") })

        for bad in ["../x.txt", "/etc/passwd", "a/../../x", "nul\u{0}.txt", "", "dir/.."] {
            await #expect {
                try await send("override", bad, "evil")
            } throws: { error in
                guard let failure = error as? StepFailure else { return false }
                return failure.status == 400 && failure.reason.contains("refused to write")
            }
        }
        #expect(folders.files(folders.root).allSatisfy { $0.hasPrefix("out/") }, "\(folders.files(folders.root))")
    }

    @Test func placeholdersOnlyInTemplateOptionsAndBadTemplatesAreLoadErrors() throws {
        let folders = try Folders()
        #expect {
            try Self.engine("""
            routes:
              - id: a
                from: "file:\(folders.inbox)?include=${header.x}"
                steps: [ { log: x } ]
              - id: b
                from: "file:\(folders.inbox)/b?move=${nope}"
                steps: [ { log: x } ]
            """, folders: folders)
        } throws: { error in
            let text = "\(error)"
            return text.contains("'${…}' placeholders cannot be used in 'from' (only in the options move, moveFailed)")
                && text.contains("unknown template variable '${nope}'")
        }
    }

    @Test func aMisspelledOptionHoldingAPlaceholderIsReportedAsUnknown() throws {
        let folders = try Folders()
        #expect {
            try Self.engine("""
            routes:
              - id: a
                from: direct:a
                steps: [ { to: "file:\(folders.outbox)?fileNmae=${file:name}" } ]
            """, folders: folders)
        } throws: { error in
            "\(error)".contains("unknown option 'fileNmae' for 'file:' producers; did you mean 'fileName'?") && !"\(error)".contains("placeholders")
        }
    }

    @Test func aFixedFileNameThatLeavesTheFolderIsALoadError() throws {
        let folders = try Folders()
        #expect {
            try Self.engine("""
            routes:
              - id: a
                from: direct:a
                steps: [ { to: "file:\(folders.outbox)?fileName=../../etc/x" } ]
            """, folders: folders)
        } throws: { error in
            "\(error)".contains("routes.yaml:4:") && "\(error)".contains("fileName: the file name '../../etc/x' would leave the folder")
        }
        // With a placeholder the name is only known per message: checked then.
        _ = try Self.engine("""
        routes:
          - id: a
            from: direct:a
            steps: [ { to: "file:\(folders.outbox)?fileName=${header.name}" } ]
        """, folders: folders)
    }

    @Test func symbolicLinksAreNotFollowedOutOfADropOrOutputFolder() async throws {
        let folders = try Folders()
        let secret = folders.root + "/secret.txt"
        try folders.write("secret", to: secret)
        try folders.write("inside", to: folders.root + "/in/sub/kept.txt")
        // A link to a file outside the drop folder, and one to a file inside it.
        try FileManager.default.createSymbolicLink(atPath: folders.inbox + "/leak.txt", withDestinationPath: secret)
        try FileManager.default.createSymbolicLink(atPath: folders.inbox + "/alias.txt", withDestinationPath: folders.inbox + "/sub/kept.txt")
        // An output subfolder that is a link out of the output folder.
        let elsewhere = folders.root + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folders.outbox + "/linked", withDestinationPath: elsewhere)
        let engine = try Self.engine("""
        routes:
          - id: drop
            from: "file:\(folders.inbox)?delay=50ms&minAge=100ms&readLock=stable"
            steps:
              - to: "file:\(folders.outbox)?fileName=${file:name.noext}.out"
          - id: escape
            from: direct:escape
            steps:
              - to: "file:\(folders.outbox)?fileName=linked/x.out"
        """, folders: folders)
        try await Self.running(engine) {
            #expect(await Self.eventually { folders.files(folders.outbox).contains("alias.out") }, "\(folders.files(folders.outbox))")
            try await Task.sleep(for: .milliseconds(500))
            #expect(folders.read(folders.outbox + "/alias.out") == "inside")
            #expect(!folders.files(folders.outbox).contains("leak.out"), "the link out of the folder was read")
            #expect(FileManager.default.fileExists(atPath: folders.inbox + "/leak.txt"), "the link is left where it is")
            await #expect {
                _ = try await engine.process(routeID: "escape", Exchange(message: Message(body: ByteBuffer(string: "x")), pattern: .inOnly))
            } throws: { error in
                "\(error)".contains("leads out of") && "\(error)".contains("through a symbolic link")
            }
            #expect(folders.files(elsewhere).isEmpty, "written through the link: \(folders.files(elsewhere))")
        }
    }

    @Test func aFailedFilesNoteIsWrittenBeforeTheFileMovesAndTheRegistrySaysSoBetween() throws {
        let folders = try Folders()
        let adapter = FileAdapter(dataDirectory: folders.data, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let resolved = try AdapterCatalog([adapter]).resolve("file:\(folders.inbox)", role: .consumer)
        let consumer = try #require(try adapter.makeConsumer(resolved.endpoint) as? FileConsumer)
        let working = folders.inbox + "/.inprogress/bad.txt"
        try folders.write("bad", to: working)
        var message = Message(body: ByteBuffer(string: "bad"))
        message.headers[FileHeader.name] = "bad.txt"
        message.headers[FileHeader.path] = folders.inbox + "/bad.txt"
        var seen: (note: Bool, moved: Bool)?
        consumer.moveAside(working, message, reason: "it broke") {
            seen = (FileManager.default.fileExists(atPath: folders.inbox + "/.error/bad.txt.error.txt"),
                    FileManager.default.fileExists(atPath: folders.inbox + "/.error/bad.txt"))
        }
        // When the registry is told, the note is there and the file not yet moved: a stop
        // then leaves the file in progress, never moved without its note.
        #expect(seen?.note == true)
        #expect(seen?.moved == false)
        #expect(folders.files(folders.inbox) == [".error/bad.txt", ".error/bad.txt.error.txt"])
        #expect(folders.read(folders.inbox + "/.error/bad.txt.error.txt")?.contains("error: it broke") == true)
    }

    @Test func aFileLeftProcessingButMovedAsideIsRecordedAsFailedAtStart() async throws {
        let folders = try Folders()
        // What a node stopped between the move and its note left: the file moved aside
        // without a note, its record still processing.
        let registry = try FileRegistry(path: folders.data + "/file-consumers.db")
        try registry.taken(consumer: folders.inbox, key: "k1", path: folders.inbox + "/late.txt")
        try folders.write("late", to: folders.inbox + "/.error/late.txt")
        let engine = try Self.engine(Self.route(folders), folders: folders)
        try await Self.running(engine) {
            #expect(await Self.eventually { (try? registry.state(consumer: folders.inbox, key: "k1")) == .failed })
            #expect(folders.read(folders.inbox + "/.error/late.txt.error.txt")?.contains("the node stopped while moving this file aside") == true)
        }
    }
}
