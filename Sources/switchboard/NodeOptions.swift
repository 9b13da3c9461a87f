// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SwitchboardCore
import SwitchboardNode

/// The `--config` every command that needs the node or its data takes.
struct NodeOptions: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Node config file (YAML). Relative paths in it resolve against its folder.",
            discussion: "Without it: embedded defaults (Routes/, Mappings/, var/, HTTP on 127.0.0.1:8080, admin on 127.0.0.1:8081).",
            valueName: "file"
        )
    )
    var config: String?

    /// The node config, or the embedded defaults.
    ///
    /// - Throws: ``ConfigurationError`` (printed by the caller) for a bad config file.
    func load() throws -> NodeConfiguration {
        guard let config else { return NodeConfiguration() }
        guard FileManager.default.fileExists(atPath: config) else {
            throw ValidationError("config file '\(config)' does not exist")
        }
        return try NodeConfiguration.load(file: config)
    }
}

extension NodeOptions {
    /// The node config; a bad config file is printed compiler-style and the command exits 1.
    func loadOrExit() throws -> NodeConfiguration {
        do {
            return try load()
        } catch let error as ConfigurationError {
            throw reportAndExit(error)
        }
    }
}

/// Prints configuration errors compiler-style to standard error and exits 1.
func reportAndExit(_ error: ConfigurationError) -> ExitCode {
    for diagnostic in error.diagnostics {
        FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8))
    }
    let count = error.errors.count
    FileHandle.standardError.write(Data("\(count) error\(count == 1 ? "" : "s")\n".utf8))
    return .failure
}
