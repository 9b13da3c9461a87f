// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// The route-file reference as Markdown tables, from the same specs the loader checks
/// against: `switchboard schema --markdown` prints it and the README holds it.
public enum RouteReference {
    public static func markdown() -> String {
        var keys = MarkdownTable("key", "type", "required", "meaning")
        for field in StepSpec.routeFields {
            keys.add(MarkdownTable.code(field.name), typeName(field.type), field.required ? "yes" : "", field.doc)
        }
        var steps = MarkdownTable("step", "what it does", "short form")
        for spec in StepSpec.all {
            steps.add(MarkdownTable.code(spec.name), spec.summary, shortForm(spec).map(MarkdownTable.code) ?? "")
        }
        var fields = MarkdownTable("step", "field", "type", "default", "meaning")
        for spec in StepSpec.all {
            for field in spec.fields {
                var given = field.required ? "required" : field.defaultValue.map(MarkdownTable.code) ?? ""
                if spec.oneOf.contains(field.name) { given = "one of " + spec.oneOf.map(MarkdownTable.code).joined(separator: ", ") }
                fields.add(MarkdownTable.code(spec.name), MarkdownTable.code(field.name), typeName(field.type), given, field.doc)
            }
            if spec.inlinePredicate {
                fields.add(MarkdownTable.code(spec.name), "a predicate", "predicate", "required", "Predicate keys beside the fields: header: X-Type, equals: order (see Predicates).")
            }
            if spec.endpointOptions {
                fields.add(MarkdownTable.code(spec.name), "endpoint options", "options", "", "Beside 'uri', the endpoint's options (see Adapters).")
            }
        }
        return [
            "Route keys:", "", keys.text, "",
            "Steps:", "", steps.text, "",
            "Step fields:", "", fields.text,
        ].joined(separator: "\n") + "\n"
    }

    /// `log: MESSAGE`, `choice: [BRANCHES]`, or nil when the step takes only a mapping.
    static func shortForm(_ spec: StepSpec) -> String? {
        if let scalar = spec.scalarField { return "\(spec.name): \(scalar.uppercased())" }
        if let list = spec.listField { return "\(spec.name): [\(list.uppercased())]" }
        return nil
    }

    static func typeName(_ type: StepSpec.FieldType) -> String {
        switch type {
        case .string: "string"
        case .template: "template"
        case .uri: "URI"
        case .boolean: "boolean"
        case .duration: "duration"
        case .choice(let words): words.joined(separator: " | ")
        case .steps: "steps"
        case .branches: "branches"
        case .xpath: "XPath"
        case .jsonpath: "JSONPath"
        case .sla: "SLA"
        case .onError: "on-error"
        case .templateMap: "names → templates"
        case .stringList: "list of strings"
        case .mapping: "mapping"
        }
    }
}
