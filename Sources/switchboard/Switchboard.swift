// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import NIOCore
import NIOPosix

@main
enum Entry {
    static func main() async {
        // Swift tasks then run on the NIO event-loop threads that do the network I/O,
        // instead of hopping between those and Swift's own thread pool on every request.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await Switchboard.main()
    }
}

struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A protocol-mediation ESB node: YAML routes, protocol adapters, and a trace of every message.",
        discussion: """
        Routes live in YAML files (Camel's shape: routes with id, from and steps). \
        The node loads every *.yaml file in its routes folder, listens and polls \
        through adapters, and passes each message through the route's steps.

        Without --config the node runs on embedded defaults: routes from ./Routes, \
        mappings from ./Mappings, data under ./var, HTTP on 127.0.0.1:8080, admin \
        API on 127.0.0.1:8081.

        Examples:
          switchboard run
          switchboard run --config /etc/switchboard/switchboard.yaml
          switchboard check --routes Routes
          switchboard trace 0193a5f2-7c1e-7b3a-9a41-3f0c2d9e8b17
          switchboard trace --route orders --status failed --since 10m
          switchboard routes
          switchboard sla
          switchboard send orders --file order.json --header X-Region=EU
          switchboard schema > routes.schema.json
          switchboard adapters
        """,
        version: "0.1.0",
        subcommands: [Run.self, Check.self, TraceCommand.self, RoutesCommand.self, ServicesCommand.self, SLACommand.self, SendCommand.self, DeadLettersCommand.self, ReplayCommand.self, TransformCommand.self, ConvertCommand.self, ValidateCommand.self, EvalCommand.self, Schema.self, Adapters.self]
    )
}
