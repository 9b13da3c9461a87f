// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import SwitchboardNode
import SwitchboardRouting

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema (draft 2020-12) of route files or node config files, or their reference tables.",
        discussion: """
        Generated from the same step specs the loader checks against, so it is \
        always current. Point your editor's YAML language server at it for \
        completion and checking.

        Examples:
          switchboard schema > routes.schema.json
          # in a route file, for the YAML language server:
          # yaml-language-server: $schema=./routes.schema.json
          switchboard schema --config > switchboard.schema.json
          switchboard schema --markdown            # route keys, steps and their fields
          switchboard schema --config --markdown   # node config keys
        """
    )

    @Flag(help: "Describe node config files (switchboard.yaml) instead of route files.")
    var config = false

    @Flag(help: "Print the README's Markdown reference tables instead of a JSON Schema.")
    var markdown = false

    func run() throws {
        switch (config, markdown) {
        case (false, false): print(RouteSchema.document().prettySerialized())
        case (false, true): print(RouteReference.markdown(), terminator: "")
        case (true, false): print(Reference.configJSONSchema().prettySerialized())
        case (true, true): print(Reference.configMarkdown(), terminator: "")
        }
    }
}
