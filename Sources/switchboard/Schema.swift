// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import SwitchboardRouting

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema (draft 2020-12) of route files.",
        discussion: """
        Generated from the same step specs the loader checks against, so it is \
        always current. Point your editor's YAML language server at it for \
        completion and checking.

        Examples:
          switchboard schema > routes.schema.json
          # in a route file, for the YAML language server:
          # yaml-language-server: $schema=./routes.schema.json
        """
    )

    func run() throws {
        print(RouteSchema.document().prettySerialized())
    }
}
