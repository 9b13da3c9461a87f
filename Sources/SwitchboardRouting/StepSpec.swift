// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// What a route file may say: every step kind, its fields, and the predicate keys. One
/// description drives checking, `switchboard schema` and the README's step table.
public struct StepSpec: Sendable {
    public enum FieldType: Sendable, Equatable {
        case string
        /// Text with `${…}` placeholders.
        case template
        /// An endpoint URI.
        case uri
        case boolean
        case duration
        case choice([String])
        /// A list of steps.
        case steps
        /// `choice`'s list of `when` / `otherwise` branches.
        case branches
        /// An XPath 1.0 expression.
        case xpath
        /// A JSONPath (RFC 9535) query.
        case jsonpath
        /// A route's service level: percentiles, error rate, throughput, max age, window, alert.
        case sla
        /// A route's failure handling: retry and dead letter channel.
        case onError
        /// A mapping of names to templates.
        case templateMap
        /// A list of plain strings.
        case stringList
        /// A mapping checked by the step itself (a `map`'s targets).
        case mapping
    }

    public struct Field: Sendable {
        public let name: String
        public let type: FieldType
        public let required: Bool
        public let defaultValue: String?
        public let doc: String

        init(_ name: String, _ type: FieldType, required: Bool = false, default defaultValue: String? = nil, _ doc: String) {
            self.name = name
            self.type = type
            self.required = required
            self.defaultValue = defaultValue
            self.doc = doc
        }
    }

    public let name: String
    public let summary: String
    public let fields: [Field]
    /// The field a scalar value fills: `to: http://…` fills `uri`.
    public let scalarField: String?
    /// The field a list value fills: `choice: [ … ]` fills `branches`.
    public let listField: String?
    /// Whether predicate keys (`header`, `equals`, …) may be written beside the fields.
    public let inlinePredicate: Bool
    /// Whether endpoint options may be written beside the fields (`to: { uri: …, method: PUT }`).
    public let endpointOptions: Bool
    /// Exactly one of these fields must be given.
    public let oneOf: [String]
    public let example: String

    init(
        _ name: String,
        summary: String,
        fields: [Field],
        scalarField: String? = nil,
        listField: String? = nil,
        inlinePredicate: Bool = false,
        endpointOptions: Bool = false,
        oneOf: [String] = [],
        example: String
    ) {
        self.name = name
        self.summary = summary
        self.fields = fields
        self.scalarField = scalarField
        self.listField = listField
        self.inlinePredicate = inlinePredicate
        self.endpointOptions = endpointOptions
        self.oneOf = oneOf
        self.example = example
    }

    public func field(_ name: String) -> Field? {
        fields.first { $0.name == name }
    }

    /// Every step kind a route may use, from the one list of step types (`StepKinds`).
    public static let all: [StepSpec] = StepKinds.all.map { $0.spec }

    public static func named(_ name: String) -> StepSpec? {
        StepKinds.named(name)?.spec
    }

    /// The keys a predicate mapping may have.
    public static let predicateSubjects = ["header", "xpath", "jsonpath"]
    public static let predicateTests = ["equals", "not-equals", "in", "matches", "exists", "gt", "gte", "lt", "lte"]
    public static let predicateCombinators = ["all", "any", "not"]
    public static var predicateKeys: [String] { predicateSubjects + predicateTests + predicateCombinators }

    /// The keys of a route.
    public static let routeFields: [Field] = [
        Field("id", .string, required: true, "Unique route id, used by traces, metrics and `route` steps."),
        Field("from", .uri, required: true, "Source endpoint URI, or a mapping with 'uri' and endpoint options."),
        Field("steps", .steps, "The steps, in order."),
        Field("description", .string, "What the route is for."),
        Field("namespaces", .mapping, "XML namespace prefixes for XPath in this route: { prefix: uri }."),
        Field("sla", .sla, "Service level: { p95: 150ms, errors: 1%, throughput: 10/s, max-age: 15m, window: 5m, alert: route:alerts }."),
        Field("on-error", .onError, "Failure handling: { retry: { attempts: 3, backoff: 200ms, factor: 2, max-backoff: 30s, jitter: true, on: [connection, timeout, 5xx] }, dead-letter: true }; default: the node's on-error."),
    ]
}
