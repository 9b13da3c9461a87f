// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Logging
import SwitchboardCore
import SwitchboardNode
import SwitchboardRouting

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the node config and route files offline; exit 0 when all is well, 1 otherwise.",
        discussion: """
        Runs the same checks as 'run' without starting anything: YAML syntax, step \
        kinds and options, endpoint URIs and their options, predicates, regular \
        expressions, XPath and JSONPath, template variables, duplicate route ids, \
        duplicate HTTP method+path. Every problem is printed as file:line:column: \
        error: what was expected.

        Examples:
          switchboard check
          switchboard check --routes Routes
          switchboard check --config /etc/switchboard/switchboard.yaml
        """
    )

    @OptionGroup var node: NodeOptions

    @Option(help: ArgumentHelp("Routes folder to check instead of the config's.", valueName: "dir"))
    var routes: String?

    func run() async throws {
        var configuration = try node.loadOrExit()
        if let routes { configuration.routesDirectory = routes }
        var logger = Logger(label: "switchboard")
        logger.logLevel = .critical
        let catalog = AdapterRegistry.makeCatalog(configuration, logger: logger)
        let loaded = Result {
            try RouteLoader(
                catalog: catalog, logger: logger, mappingsDirectory: configuration.mappingsDirectory,
                state: .checking, defaultErrorPolicy: configuration.onError
            ).load(directory: configuration.routesDirectory)
        }
        // Client pools made for producers are closed even though nothing ran.
        for adapter in catalog.adapters { await adapter.shutdown() }
        // What keeps 'run' from starting fails the check with the route files' problems.
        let startProblems = configuration.startProblems
        let engine: RouteEngine
        do {
            engine = try loaded.get()
        } catch let error as ConfigurationError {
            throw reportAndExit(ConfigurationError(startProblems + error.diagnostics))
        }
        if !startProblems.isEmpty {
            throw reportAndExit(ConfigurationError(startProblems))
        }
        for warning in configuration.warnings + engine.warnings {
            print(warning)
        }
        let files = Set(engine.routes.map(\.location.file)).count
        print("\(engine.routes.count) route\(engine.routes.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"): OK")
        for route in engine.routes {
            print("  \(route.id)  from \(route.source.description)  (\(route.location))")
        }
    }
}
