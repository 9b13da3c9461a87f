// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import SwitchboardCore
import SwitchboardNode
import SwitchboardTransform

struct Adapters: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters",
        abstract: "List the protocol adapters this node has, with their URI syntax and options.",
        discussion: """
        Options go in the endpoint URI's query (http:/orders?method=POST) or, in a \
        'to' step, beside 'uri' in a mapping. Secret options are never printed, \
        logged or traced.

        Examples:
          switchboard adapters
          switchboard adapters --json
          switchboard adapters --markdown > adapters.md
        """
    )

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Print the README's Markdown tables of schemes and options.")
    var markdown = false

    func run() throws {
        let specs = Reference.endpointSpecs
        if markdown {
            print(Reference.adaptersMarkdown(), terminator: "")
            return
        }
        if json {
            print(JSONValue.array(specs.map(jsonValue)).prettySerialized())
            return
        }
        for spec in specs {
            print("\(spec.schemes.map { "\($0):" }.joined(separator: " "))  \(spec.summary)")
            if let consumer = spec.consumerSyntax { print("  from: \(consumer)") }
            if let producer = spec.producerSyntax { print("  to:   \(producer)") }
            if !spec.options.isEmpty { print("  options:") }
            for option in spec.options {
                let roles = option.roles.count == 2 ? "from/to" : (option.roles.contains(.consumer) ? "from" : "to")
                var line = "    \(option.name) (\(option.type.name), \(roles)"
                if let defaultValue = option.defaultValue { line += ", default \(defaultValue)" }
                if option.secret { line += ", secret" }
                line += ")  \(option.doc)"
                print(line)
            }
            print("")
        }
    }

    private func jsonValue(_ spec: EndpointSpec) -> JSONValue {
        .object([
            ("schemes", .array(spec.schemes.map { .string($0) })),
            ("summary", .string(spec.summary)),
            ("consumer", spec.consumerSyntax.map { .string($0) } ?? .null),
            ("producer", spec.producerSyntax.map { .string($0) } ?? .null),
            ("options", .array(spec.options.map { option in
                .object([
                    ("name", .string(option.name)),
                    ("type", .string(option.type.name)),
                    ("default", option.defaultValue.map { .string($0) } ?? .null),
                    ("roles", .array(option.roles.map(\.rawValue).sorted().map { .string($0) })),
                    ("secret", .bool(option.secret)),
                    ("doc", .string(option.doc)),
                ])
            })),
        ])
    }
}
