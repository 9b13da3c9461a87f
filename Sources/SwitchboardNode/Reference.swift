// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

/// The adapter and node-config references as Markdown tables, from the specs the loader
/// checks against: `switchboard adapters --markdown` and `switchboard schema --config
/// --markdown` print them, and the README holds them.
public enum Reference {
    /// Every endpoint scheme the node knows: the adapters and the engine's `direct:`.
    public static var endpointSpecs: [EndpointSpec] { AdapterRegistry.specs + [directSpec] }

    /// `direct:` is built into the route engine rather than the adapter catalog.
    static let directSpec = EndpointSpec(
        schemes: ["direct"],
        summary: "Calls between routes in the node: a route 'from: direct:NAME' runs when another sends 'to: direct:NAME'.",
        consumerSyntax: "direct:NAME",
        producerSyntax: "direct:NAME",
        options: []
    )

    public static func adaptersMarkdown() -> String {
        var schemes = MarkdownTable("scheme", "from", "to", "what it does")
        var options = MarkdownTable("scheme", "option", "type", "in", "default", "meaning")
        for spec in endpointSpecs {
            let name = spec.schemes.map { MarkdownTable.code($0 + ":") }.joined(separator: " ")
            schemes.add(name, spec.consumerSyntax.map(MarkdownTable.code) ?? "", spec.producerSyntax.map(MarkdownTable.code) ?? "", spec.summary)
            for option in spec.options {
                let roles = option.roles.count == 2 ? "from, to" : (option.roles.contains(.consumer) ? "from" : "to")
                options.add(
                    name, MarkdownTable.code(option.name), option.type.name.replacingOccurrences(of: "|", with: " | "), roles,
                    option.defaultValue.map(MarkdownTable.code) ?? "", option.secret ? "Secret: never printed, logged or traced. " + option.doc : option.doc
                )
            }
        }
        return ["Schemes:", "", schemes.text, "", "Options (in the URI's query, or beside `uri` in a mapping):", "", options.text].joined(separator: "\n") + "\n"
    }

    public static func configMarkdown() -> String {
        var keys = MarkdownTable("key", "meaning")
        for entry in NodeConfiguration.keys {
            keys.add(MarkdownTable.code(entry.key), entry.doc)
        }
        return keys.text + "\n"
    }

    /// A JSON Schema (draft 2020-12) of node config files: every key with its meaning, and
    /// no others, so an editor flags a misspelt key as `check` does.
    public static func configJSONSchema() -> JSONValue {
        final class Section {
            var entries: [(name: String, doc: String?, section: Section?)] = []
            func child(_ name: String) -> Section {
                if let found = entries.first(where: { $0.name == name })?.section { return found }
                let section = Section()
                entries.append((name, nil, section))
                return section
            }
            func schema() -> JSONValue {
                .object([
                    ("type", .string("object")),
                    ("properties", .object(entries.map { entry in
                        (entry.name, entry.section?.schema() ?? .object([("description", .string(entry.doc ?? ""))]))
                    })),
                    ("additionalProperties", .bool(false)),
                ])
            }
        }
        let root = Section()
        for entry in NodeConfiguration.keys {
            let parts = entry.key.split(separator: ".").map(String.init)
            var section = root
            for part in parts.dropLast() { section = section.child(part) }
            section.entries.append((parts[parts.count - 1], entry.doc, nil))
        }
        guard case .object(let members) = root.schema() else { return root.schema() }
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("title", .string("Switchboard node config")),
        ] + members)
    }
}
