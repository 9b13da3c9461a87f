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

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show where a message went, what changed it, how long each step took and why it failed.",
        discussion: """
        With a message id (the X-Message-ID every HTTP answer carries) it prints \
        that message's timeline as a tree: the route, each step with its offset from \
        the start, duration, outcome and body sizes, the branch a choice took and \
        why, the endpoint a 'to' reached and its reply, what each step changed, the \
        error of a failed step, routes called on the way, and split children \
        (collapsed to counts; --expand shows them).

        Without an id it prints the messages the filters match, newest first.

        It asks the running node (admin API, from --config or the embedded \
        defaults); when no node answers, it reads the audit store on disk \
        (DATA/audit.db, or --store PATH).

        Examples:
          switchboard trace 0193a5f2-7c1e-7b3a-9a41-3f0c2d9e8b17
          switchboard trace --route orders --status failed --since 10m
          switchboard trace --correlation order-4711 --json
          switchboard trace --header X-Region=EU --limit 5 --expand
          switchboard trace --follow --route invoices
          switchboard trace --store var/audit.db --since 2026-11-21T08:00:00Z
        """
    )

    @OptionGroup var node: NodeOptions

    @Argument(help: ArgumentHelp("Message id to show.", valueName: "id"))
    var id: String?

    @Option(help: ArgumentHelp("Messages with this correlation id.", valueName: "id"))
    var correlation: String?

    @Option(help: ArgumentHelp("Messages that went through this route.", valueName: "route"))
    var route: String?

    @Option(help: ArgumentHelp("ok or failed.", valueName: "status"))
    var status: String?

    @Option(help: ArgumentHelp("Messages that arrived since: a duration back from now (10m, 2h) or an RFC 3339 time.", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Messages that arrived before: a duration back from now or an RFC 3339 time.", valueName: "time"))
    var until: String?

    @Option(help: ArgumentHelp("Messages that arrived with this header (name without case, value exact).", valueName: "name=value"))
    var header: String?

    @Option(help: ArgumentHelp("At most this many messages (default 20).", valueName: "n"))
    var limit: Int = 20

    @Flag(help: "Keep printing new messages as they finish (Ctrl-C stops).")
    var follow = false

    @Flag(help: "One JSON object per message (with its events array), one per line.")
    var json = false

    @Flag(help: "Show split, multicast and wire-tap children in full instead of counts.")
    var expand = false

    @Option(help: ArgumentHelp("Read this audit store file instead of asking the node.", valueName: "path"))
    var store: String?

    func validate() throws {
        if let status, TraceQuery.Status(rawValue: status) == nil {
            throw ValidationError("--status must be ok or failed")
        }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
        if id != nil, follow { throw ValidationError("--follow streams new messages; it does not take a message id") }
    }

    /// The query as admin API parameters, so online and offline read the same way.
    var parameters: [String: String] {
        var parameters: [String: String] = ["limit": String(limit)]
        if let id { parameters["id"] = id }
        if let correlation { parameters["correlation"] = correlation }
        if let route { parameters["route"] = route }
        if let status { parameters["status"] = status }
        if let since { parameters["since"] = since }
        if let until { parameters["until"] = until }
        if let header { parameters["header"] = header }
        return parameters
    }

    func run() async throws {
        let configuration = try node.loadOrExit()
        let source: TraceSource
        if let store {
            source = .store(try openStore(path: store, configuration))
        } else if configuration.adminListen.port == 0 {
            // A node on an ephemeral admin port cannot be found from here.
            source = .store(try openStore(path: nil, configuration))
        } else {
            let client = AdminClient(configuration)
            do {
                _ = try await client.request(.GET, "/health", timeout: .seconds(2))
                source = .node(client)
            } catch let error as AdminClient.Unreachable {
                printError("note: \(error); reading the audit store \(configuration.auditStore)")
                source = .store(try openStore(path: nil, configuration))
            }
        }
        defer { if case .store(let store) = source { Task { try? await store.close() } } }
        let renderer = TraceRenderer(color: !json && stdoutWantsColor(), expand: expand)
        var query = parameters
        do {
            var traces = try await source.traces(query)
            if let id, traces.isEmpty {
                printError("error: no trace for message \(id) (\(source.name))")
                throw ExitCode.failure
            }
            if follow {
                // Start after the newest message; print only what finishes from now on.
                query["limit"] = "1"
                query["after"] = nil
                let newest = try await source.traces(query).first?.entrySequence ?? 0
                query["limit"] = String(limit)
                var after = newest
                while !Task.isCancelled {
                    query["after"] = String(after)
                    traces = try await source.traces(query)
                    for trace in traces {
                        print(json ? trace.jsonLine() : renderer.render(trace))
                        after = max(after, trace.entrySequence ?? after)
                    }
                    fflush(nil)
                    try await Task.sleep(for: .milliseconds(500))
                }
                return
            }
            for (index, trace) in traces.enumerated() {
                if json {
                    print(trace.jsonLine())
                } else {
                    if index > 0 { print("") }
                    print(renderer.render(trace), terminator: "")
                }
            }
            if traces.isEmpty, !json {
                printError("no messages match (\(source.name))")
            }
        } catch let error as TraceQueryError {
            throw ValidationError(error.description)
        } catch let error as AdminClient.Failed {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    private func openStore(path: String?, _ configuration: NodeConfiguration) throws -> any AuditStore {
        do {
            let location = path ?? configuration.auditStore
            if location.hasPrefix("postgres") {
                throw ValidationError("for a PostgreSQL audit store, ask the running node (drop --store) or use psql")
            }
            return try SQLiteAuditStore(path: location, create: false)
        } catch let error as AuditStoreError {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Where `trace` reads: the running node, or the store file.
enum TraceSource {
    case node(AdminClient)
    case store(any AuditStore)

    var name: String {
        switch self {
        case .node(let client): "node at \(client.base)"
        case .store(let store): "audit store \((store as? SQLiteAuditStore)?.path ?? "")"
        }
    }

    func traces(_ parameters: [String: String]) async throws -> [Trace] {
        switch self {
        case .store(let store):
            return try await store.traces(TraceQuery(parameters: parameters))
        case .node(let client):
            var components = URLComponents()
            components.queryItems = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
            let query = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
            let (body, _) = try await client.request(.GET, "/admin/traces?" + query)
            struct Page: Decodable { let traces: [Trace] }
            return try JSONDecoder().decode(Page.self, from: Data(buffer: body)).traces
        }
    }
}
