// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Logging
import SwitchboardCore
import SwitchboardNode

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the node: load routes, listen, poll, route messages until SIGTERM or SIGINT.",
        discussion: """
        The node loads every *.yaml file in the routes folder (every problem in \
        every file is reported, with file:line:column, and the node does not start). \
        It then serves HTTP routes on http.listen and the admin API (GET /health) on \
        admin.listen.

        On SIGTERM or SIGINT it stops accepting, lets in-flight exchanges finish (up \
        to shutdown-timeout, 30s by default) and exits 0.

        Examples:
          switchboard run
          switchboard run --config switchboard.yaml --log-level debug
          curl -s -X POST -H 'X-Region: EU' -d '{"id":1}' http://127.0.0.1:8080/orders
        """
    )

    @OptionGroup var node: NodeOptions

    @Option(help: ArgumentHelp("Log level, overriding the config: trace, debug (every step), info (every exchange), notice, warning, error.", valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        var configuration = try node.loadOrExit()
        if let logLevel, let level = Logger.Level(rawValue: logLevel) {
            configuration.logLevel = level
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in NodeLogHandler(label: label, level: level) }
        var logger = Logger(label: "switchboard")
        logger.logLevel = level
        let running: SwitchboardNode
        do {
            running = try await SwitchboardNode(configuration: configuration, logger: logger)
        } catch let error as ConfigurationError {
            throw reportAndExit(error)
        }
        do {
            try await running.run()
        } catch let error as ConfigurationError {
            throw reportAndExit(error)
        } catch let error as ListenError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
