// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Logging
import NIOCore
import SwitchboardAudit
import SwitchboardCore
import SwitchboardNode
import SwitchboardStorage
import SwitchboardState

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List the messages in the dead letter store: route, failed step, error, attempts, times.",
        discussion: """
        A message lands here when its route has 'on-error: { dead-letter: true }' (or the \
        node's on-error says so) and it failed after its retries, and for every failed \
        message accepted by an asynchronous source (http:/…?mode=async). Each keeps the \
        message as the route received it; 'switchboard replay ID' sends it again.

        Asks the running node's admin API; when no node answers, reads the SQLite state \
        store on disk (DATA/state.db, or --store PATH). Secret headers show as ***.

        --discard ID removes one dead letter without replaying it; --discard-all removes \
        every one (of --route R only, with it). Each removal is printed.

        Examples:
          switchboard dead-letters
          switchboard dead-letters --route orders --json
          switchboard dead-letters --show 01936f3e-7c1a-7b2e-9f00-1a2b3c4d5e6f
          switchboard dead-letters --discard 01936f3e-7c1a-7b2e-9f00-1a2b3c4d5e6f
          switchboard dead-letters --discard-all --route orders
        """
    )

    @OptionGroup var node: NodeOptions

    @Option(help: "Only this route's dead letters.")
    var route: String?

    @Option(help: "Show one dead letter in full, with its headers and body.")
    var show: String?

    @Option(help: "At most this many, oldest first.")
    var limit = 1000

    @Flag(help: "Print JSON: {\"deadLetters\": [...]}, or one object with --show.")
    var json = false

    @Option(help: ArgumentHelp("Remove this dead letter without replaying it.", valueName: "id"))
    var discard: String?

    @Flag(help: "Remove every dead letter (of --route only, when given) without replaying them.")
    var discardAll = false

    @Option(help: ArgumentHelp("Read this state store file instead of asking the node.", valueName: "path"))
    var store: String?

    func validate() throws {
        if discard != nil, discardAll { throw ValidationError("give --discard ID or --discard-all, not both") }
        if discard.map({ MessageID($0) == nil }) == true { throw ValidationError("--discard takes a dead letter's id, such as 01936f3e-7c1a-7b2e-9f00-1a2b3c4d5e6f") }
    }

    func run() async throws {
        let configuration = try node.loadOrExit()
        if discard != nil || discardAll {
            try await remove(configuration)
            return
        }
        let body = try await fetch(configuration)
        if json {
            print(body)
            return
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        if show != nil {
            printLetter(object)
            return
        }
        let letters = object["deadLetters"] as? [[String: Any]] ?? []
        if letters.isEmpty {
            print(route.map { "no dead letters for route '\($0)'" } ?? "no dead letters")
            return
        }
        printTable(["ID", "ROUTE", "FAILED AT", "STEP", "ATTEMPTS", "ERROR"], letters.map { letter in
            [
                letter["id"] as? String ?? "",
                letter["route"] as? String ?? "",
                letter["firstFailedAt"] as? String ?? "",
                letter["step"] as? String ?? "",
                "\(letter["attempts"] as? Int ?? 0)",
                String((letter["error"] as? String ?? "").prefix(100)),
            ]
        })
    }

    /// The JSON, from the node or the store file.
    private func fetch(_ configuration: NodeConfiguration) async throws -> String {
        var query = "limit=\(limit)"
        if let route { query += "&route=\(route.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? route)" }
        let path = show.map { "/admin/dead-letters/\($0)" } ?? "/admin/dead-letters?\(query)"
        if store == nil {
            do {
                let (body, _) = try await AdminClient(configuration).request(.GET, path)
                return String(buffer: body)
            } catch let error as AdminClient.Unreachable {
                printError("note: \(error); reading the state store \(configuration.stateStore)")
            } catch {
                printError("error: \(error)")
                throw ExitCode.failure
            }
        }
        let location = store ?? configuration.stateStore
        if PostgresURL.isPostgres(location) {
            throw ValidationError("for a PostgreSQL state store, ask the running node (drop --store)")
        }
        let stateStore: SQLiteStateStore
        do {
            stateStore = try SQLiteStateStore(path: location, create: false)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        let mask = AuditPolicy.defaultMask + configuration.audit.mask
        if let show {
            guard let id = MessageID(show), let letter = try await stateStore.get(id) else {
                printError("error: no dead letter with id \(show)")
                throw ExitCode.failure
            }
            return letter.json(mask: mask, body: true)
        }
        let letters = try await stateStore.list(routeID: route, limit: limit)
        return "{\"deadLetters\":[" + letters.map { $0.json(mask: mask) }.joined(separator: ",") + "]}"
    }

    /// Removes `--discard`'s letter, or every one `--discard-all` names, through the node or
    /// in the state store file.
    private func remove(_ configuration: NodeConfiguration) async throws {
        var ids = discard.map { [$0] } ?? []
        if discardAll {
            let listing = try await fetch(configuration)
            let object = (try? JSONSerialization.jsonObject(with: Data(listing.utf8))) as? [String: Any] ?? [:]
            ids = (object["deadLetters"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        }
        var removed = 0
        for id in ids {
            if try await removeOne(id, configuration) {
                print("discarded \(id)")
                removed += 1
            } else {
                printError("error: no dead letter with id \(id)")
            }
        }
        if discardAll { print("\(removed) dead letter\(removed == 1 ? "" : "s") discarded") }
        if removed < ids.count || (discard != nil && removed == 0) { throw ExitCode.failure }
    }

    private func removeOne(_ id: String, _ configuration: NodeConfiguration) async throws -> Bool {
        if store == nil {
            do {
                _ = try await AdminClient(configuration).request(.DELETE, "/admin/dead-letters/\(id)")
                return true
            } catch let failure as AdminClient.Failed where failure.status == 404 {
                return false
            } catch is AdminClient.Unreachable {
                // Offline: the store file below.
            }
        }
        let location = store ?? configuration.stateStore
        if PostgresURL.isPostgres(location) {
            throw ValidationError("for a PostgreSQL state store, ask the running node (drop --store)")
        }
        guard let messageID = MessageID(id) else { return false }
        return try await SQLiteStateStore(path: location, create: false).remove(messageID)
    }

    private func printLetter(_ letter: [String: Any]) {
        for key in ["id", "route", "step", "error", "attempts", "replays", "firstFailedAt", "lastFailedAt", "correlationId", "bodySize"] {
            print("\(key.padding(toLength: 14, withPad: " ", startingAt: 0)) \(letter[key].map { "\($0)" } ?? "")")
        }
        print("headers:")
        for pair in letter["headers"] as? [[String]] ?? [] where pair.count == 2 {
            print("  \(pair[0]): \(pair[1])")
        }
        if let body = letter["body"] as? String {
            print("body (\(letter["bodyEncoding"] as? String ?? "")):")
            print(body)
        }
    }
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send dead letters through their route again; each is removed once its replay succeeds.",
        discussion: """
        A replay is a new message (new id, same correlation id) carrying the header \
        'replay.of' with the dead letter's id, so 'switchboard trace' shows both and \
        'switchboard trace --header replay.of=ID' finds the replay. A replay that fails \
        again stays in the store with its attempts, error and replay count updated; it is \
        not stored twice. Needs the running node.

        Exit status: 0 when every replay succeeded, 1 when one failed or none was found.

        Examples:
          switchboard replay 01936f3e-7c1a-7b2e-9f00-1a2b3c4d5e6f
          switchboard replay --dead-letter --route orders
          switchboard replay --dead-letter            (every dead letter)
        """
    )

    @OptionGroup var node: NodeOptions

    @Argument(help: "The dead letter's id (the failed message's id).")
    var id: String?

    @Flag(name: .customLong("dead-letter"), help: "Replay every dead letter (of --route, or all).")
    var allDeadLetters = false

    @Option(help: "With --dead-letter: only this route's.")
    var route: String?

    @Flag(help: "Print the admin API's JSON.")
    var json = false

    func validate() throws {
        if id == nil, !allDeadLetters {
            throw ValidationError("give a dead letter id, or --dead-letter [--route R] to replay them all")
        }
        if id != nil, allDeadLetters {
            throw ValidationError("give either an id or --dead-letter, not both")
        }
        if route != nil, !allDeadLetters {
            throw ValidationError("--route goes with --dead-letter")
        }
    }

    func run() async throws {
        let configuration = try node.loadOrExit()
        let path: String
        if let id {
            path = "/admin/dead-letters/\(id)/replay"
        } else {
            path = "/admin/dead-letters/replay" + (route.map { "?route=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? "")
        }
        let body: ByteBuffer
        do {
            (body, _) = try await AdminClient(configuration).request(.POST, path, timeout: .hours(1))
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        if json { print(String(buffer: body)) }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        let replays = object["replays"] as? [[String: Any]] ?? []
        var failed = 0
        for replay in replays {
            let succeeded = replay["succeeded"] as? Bool ?? false
            if !succeeded { failed += 1 }
            guard !json else { continue }
            let deadLetter = replay["deadLetter"] as? String ?? ""
            guard let message = replay["replay"] as? String else {
                print("did not replay \(deadLetter): \(replay["error"] as? String ?? "")")
                continue
            }
            if succeeded {
                print("replayed \(deadLetter) as \(message): delivered; removed from the dead letter store")
            } else {
                print("replayed \(deadLetter) as \(message): failed again: \(replay["error"] as? String ?? ""); kept")
            }
        }
        if !json {
            print("\(replays.count) replayed, \(replays.count - failed) delivered, \(failed) failed")
        }
        if replays.isEmpty || failed > 0 { throw ExitCode.failure }
    }
}
