// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardNode

/// Asks the running node for `path` and decodes the JSON answer, or exits 1 with a clear error.
func askNode(_ options: NodeOptions, _ path: String) async throws -> (ByteBuffer, [String: Any]) {
    let configuration = try options.loadOrExit()
    do {
        let (body, _) = try await AdminClient(configuration).request(.GET, path)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        return (body, object)
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

/// Prints rows as a left-aligned table with a header.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { $0.offset == row.count - 1 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "List the running node's routes with their source, message counts, failures and p95.",
        discussion: """
        Counts are since the node started; p95 is over the last five minutes (or the \
        route's SLA window). SLA shows '-' for routes without one, else ok or the \
        breached objectives.

        Examples:
          switchboard routes
          switchboard routes --json
          switchboard routes --config /etc/switchboard/switchboard.yaml
        """
    )

    @OptionGroup var node: NodeOptions

    @Flag(help: "Print the admin API's JSON.")
    var json = false

    func run() async throws {
        let (body, object) = try await askNode(node, "/admin/routes")
        if json {
            print(String(buffer: body))
            return
        }
        let routes = object["routes"] as? [[String: Any]] ?? []
        printTable(["ROUTE", "SOURCE", "MESSAGES", "FAILURES", "IN FLIGHT", "P95", "SLA"], routes.map { route in
            [
                route["id"] as? String ?? "",
                route["source"] as? String ?? "",
                "\(route["messages"] as? Int ?? 0)",
                "\(route["failures"] as? Int ?? 0)",
                "\(route["inFlight"] as? Int ?? 0)",
                (route["p95Micros"] as? Int).map { formatDuration(.microseconds($0)) } ?? "-",
                route["sla"] as? String ?? "-",
            ]
        })
    }
}

struct SLACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sla",
        abstract: "Show every route's SLA objectives: target, current value, window and state.",
        discussion: """
        Objectives come from 'sla:' in route files (p95: 150ms, errors: 1%, \
        throughput: 10/s, max-age: 15m, window: 5m). State is ok, 'breached since \
        TIME', or 'no data' when the window holds nothing to measure. Breaches and \
        recoveries are logged, stored in the audit trail, counted in /metrics and \
        sent to 'sla.alert' when set.

        Examples:
          switchboard sla
          switchboard sla --json
        """
    )

    @OptionGroup var node: NodeOptions

    @Flag(help: "Print the admin API's JSON (objectives and recent breach/recovery events).")
    var json = false

    func run() async throws {
        let (body, object) = try await askNode(node, "/admin/sla")
        if json {
            print(String(buffer: body))
            return
        }
        let objectives = object["objectives"] as? [[String: Any]] ?? []
        if objectives.isEmpty {
            print("no route has an SLA (add 'sla:' to a route, such as sla: { p95: 150ms, errors: 1% })")
            return
        }
        let formatter = ISO8601DateFormatter()
        printTable(["ROUTE", "OBJECTIVE", "TARGET", "CURRENT", "WINDOW", "STATE"], objectives.map { objective in
            var state = objective["state"] as? String ?? ""
            if let since = objective["breachedSince"] as? Int {
                state += " since " + formatter.string(from: Date(timeIntervalSince1970: Double(since) / 1_000_000))
            }
            return [
                objective["route"] as? String ?? "",
                objective["objective"] as? String ?? "",
                objective["target"] as? String ?? "",
                objective["value"] as? String ?? "-",
                objective["window"] as? String ?? "",
                state,
            ]
        })
    }
}

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message into a route of the running node and print the reply.",
        discussion: """
        The file's bytes are the body (standard input with '-'); --header adds \
        headers. The reply body goes to standard output, the message id (for \
        'switchboard trace') to standard error. Exits 1 when a step fails, with the \
        error naming route and step.

        Examples:
          switchboard send orders --file order.json --header X-Region=EU
          switchboard send invoices --file UBL-Invoice-2.1-Example.xml
          echo '{"id":1}' | switchboard send orders --file - \\
              --header Content-Type=application/json
        """
    )

    @OptionGroup var node: NodeOptions

    @Argument(help: ArgumentHelp("The route id.", valueName: "route"))
    var route: String

    @Option(help: ArgumentHelp("File with the message body; '-' reads standard input.", valueName: "file"))
    var file: String

    @Option(name: .customLong("header"), help: ArgumentHelp("A header, NAME=VALUE (repeatable).", valueName: "name=value"))
    var headers: [String] = []

    func validate() throws {
        for header in headers where !header.contains("=") || header.hasPrefix("=") {
            throw ValidationError("--header must be NAME=VALUE, found '\(header)'")
        }
    }

    func run() async throws {
        let configuration = try node.loadOrExit()
        let data = try readInput(file)
        let pairs = headers.compactMap(splitPair)
        let path = "/admin/routes/" + (route.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? route) + "/messages"
        do {
            let (body, answer) = try await AdminClient(configuration).request(.POST, path, body: ByteBuffer(bytes: data), headers: pairs)
            if let id = answer.first(where: { $0.0.lowercased() == "x-message-id" })?.1 {
                printError("message \(id)")
            }
            FileHandle.standardOutput.write(Data(buffer: body))
        } catch let failure as AdminClient.Failed {
            printError("error: \(failure)")
            // What to trace, and what to replay.
            if let id = failure.messageID { printError("message \(id)") }
            if let letter = failure.deadLetter { printError("dead letter \(letter) (switchboard replay \(letter))") }
            throw ExitCode.failure
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}

struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services",
        abstract: "List the running node's services: instances, health, breaker state, in flight, calls, failures, latency.",
        discussion: """
        Services come from 'services:' in the node config and route files, and from \
        instances registered at run time (PUT /admin/services/NAME/instances/ID with a \
        TTL renewed by heartbeat; those show when their registration lapses).

        Examples:
          switchboard services
          switchboard services --json
        """
    )

    @OptionGroup var node: NodeOptions

    @Flag(help: "Print the admin API's JSON.")
    var json = false

    func run() async throws {
        let (body, object) = try await askNode(node, "/admin/services")
        if json {
            print(String(buffer: body))
            return
        }
        let services = object["services"] as? [[String: Any]] ?? []
        if services.isEmpty {
            print("no services")
            return
        }
        var rows: [[String]] = []
        for service in services {
            let name = service["name"] as? String ?? ""
            for instance in service["instances"] as? [[String: Any]] ?? [] {
                let expires = (instance["expiresIn"] as? Double).map { String(format: "ttl %.0fs", $0) } ?? "config"
                rows.append([
                    name + ((instance["version"] as? String).map { "@\($0)" } ?? ""),
                    instance["id"] as? String ?? "",
                    instance["url"] as? String ?? "",
                    (instance["healthy"] as? Bool ?? true) ? "healthy" : "UNHEALTHY",
                    instance["breaker"] as? String ?? "",
                    "\(instance["inFlight"] as? Int ?? 0)",
                    "\(instance["calls"] as? Int ?? 0)",
                    "\(instance["failures"] as? Int ?? 0)",
                    (instance["latencyMillis"] as? Double).map { String(format: "%.1fms", $0) } ?? "-",
                    "\(service["balance"] as? String ?? "") w\(instance["weight"] as? Int ?? 1)",
                    expires,
                ])
            }
            if (service["instances"] as? [Any])?.isEmpty ?? true {
                rows.append([name, "-", "(no instances)", "", "", "", "", "", "", service["balance"] as? String ?? "", ""])
            }
        }
        printTable(["SERVICE", "INSTANCE", "URL", "HEALTH", "BREAKER", "IN FLIGHT", "CALLS", "FAILURES", "LATENCY", "BALANCE", "SOURCE"], rows)
    }
}
