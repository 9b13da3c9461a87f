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

    /// Every step kind a route may use.
    public static let all: [StepSpec] = [
        StepSpec(
            "log",
            summary: "Writes a line to the node's log.",
            fields: [
                Field("message", .template, required: true, "The text; a template."),
                Field("level", .choice(["trace", "debug", "info", "notice", "warning", "error"]), default: "info", "Log level."),
            ],
            scalarField: "message",
            example: "- log: \"order ${header.X-Order-ID} from ${header.X-Region}\""
        ),
        StepSpec(
            "set-header",
            summary: "Sets a header, replacing earlier values.",
            fields: [
                Field("name", .string, required: true, "Header name."),
                Field("value", .template, required: true, "The value; a template."),
            ],
            example: "- set-header: { name: X-Region, value: \"${xpath:/order/@region}\" }"
        ),
        StepSpec(
            "remove-header",
            summary: "Removes a header, or every header starting with a prefix written with a final '*'.",
            fields: [Field("name", .string, required: true, "Header name, or a prefix ending in '*' (X-Internal-*).")],
            scalarField: "name",
            example: "- remove-header: X-Internal-*"
        ),
        StepSpec(
            "set-body",
            summary: "Replaces the body.",
            fields: [
                Field("value", .template, required: true, "The new body; a template."),
                Field("content-type", .string, "Content type of the new body."),
            ],
            scalarField: "value",
            example: "- set-body: { value: '{\"status\":\"accepted\",\"id\":\"${id}\"}', content-type: application/json }"
        ),
        StepSpec(
            "xslt",
            summary: "Transforms an XML body with an XSLT 1.0 stylesheet (libxslt + EXSLT), compiled once at load; the result's content type follows xsl:output.",
            fields: [
                Field("file", .string, required: true, "Stylesheet path relative to the mappings folder."),
                Field("params", .templateMap, "xsl:param values as { name: template }, passed as strings."),
                Field("allow", .string, "Folder under the mappings folder the stylesheet may read (default: the mappings folder)."),
            ],
            scalarField: "file",
            example: "- xslt: { file: ubl-to-canonical.xsl, params: { received: \"${date:yyyy-MM-dd}\" } }"
        ),
        StepSpec(
            "xml-to-json",
            summary: "Converts an XML body to JSON: attributes as @name, child elements by qualified name, repeats as arrays, mixed text as #text (see the README).",
            fields: [
                Field("arrays", .stringList, "Element paths from the root (Invoice/cac:InvoiceLine) that are always arrays."),
            ],
            example: "- xml-to-json: { arrays: [\"Invoice/cac:InvoiceLine\"] }"
        ),
        StepSpec(
            "json-to-xml",
            summary: "Converts a JSON body in the xml-to-json convention back to XML.",
            fields: [],
            example: "- json-to-xml: {}"
        ),
        StepSpec(
            "map",
            summary: "Builds a new JSON body field by field: target paths (a.b.c) to JSONPath ($…, or @… inside each), templates, literals or functions (number, upper, lower, concat, substring, default, date, each, literal).",
            fields: [
                Field("fields", .mapping, "The targets and their expressions, inline."),
                Field("file", .string, "A YAML file of targets in the mappings folder, instead of 'fields'."),
            ],
            example: "- map: { fields: { id: \"$.invoice.@id\", total: { number: \"$.invoice.totals.@payable\" } } }"
        ),
        StepSpec(
            "validate",
            summary: "Refuses a body that does not validate (status 400, the violations in the error); the schema is compiled once at load. Give one of 'xsd' or 'json-schema'.",
            fields: [
                Field("xsd", .string, "XML Schema path relative to the mappings folder; its includes and imports are read from the mappings folder."),
                Field("json-schema", .string, "JSON Schema (draft 2020-12) path relative to the mappings folder; files its $refs name are read from the mappings folder."),
                Field("resources", .mapping, "For 'json-schema': remote URI prefixes its $refs use and the mappings-folder folders that hold those files, e.g. { \"http://example.com/schemas/\": schemas/ }. Nothing is fetched from the network; the 2020-12 meta-schemas are built in."),
            ],
            example: "- validate: { xsd: ubl/maindoc/UBL-Invoice-2.1.xsd }"
        ),
        StepSpec(
            "choice",
            summary: "Content-based router: runs the steps of the first 'when' that holds, else 'otherwise'.",
            fields: [Field("branches", .branches, required: true, "A list of { when: PREDICATE, steps: [...] } and at most one final { otherwise: [...] }.")],
            listField: "branches",
            example: """
            - choice:
                - when: { header: X-Region, equals: EU }
                  steps: [ { to: "http://127.0.0.1:9001/orders" } ]
                - otherwise:
                    - to: "http://127.0.0.1:9002/orders"
            """
        ),
        StepSpec(
            "filter",
            summary: "Message filter: runs its steps only for messages that match; the route goes on after it for all.",
            fields: [Field("steps", .steps, required: true, "Steps for matching messages.")],
            inlinePredicate: true,
            example: """
            - filter:
                header: X-Priority
                equals: high
                steps: [ { wire-tap: "http://127.0.0.1:9003/alerts" } ]
            """
        ),
        StepSpec(
            "to",
            summary: "Sends the message to an endpoint and continues with the reply.",
            fields: [Field("uri", .uri, required: true, "Endpoint URI. Other keys of the mapping are endpoint options, but 'headers': { include: [names], exclude: [names] } (with * for any characters) chooses the headers sent; the node's own dotted ones never are.")],
            scalarField: "uri",
            endpointOptions: true,
            example: "- to: \"http://127.0.0.1:9001/orders?connectTimeout=2s\""
        ),
        StepSpec(
            "wire-tap",
            summary: "Sends a copy of the message to an endpoint without waiting for it.",
            fields: [Field("uri", .uri, required: true, "Endpoint URI. Other keys of the mapping are endpoint options.")],
            scalarField: "uri",
            endpointOptions: true,
            example: "- wire-tap: \"http://127.0.0.1:9003/audit\""
        ),
        StepSpec(
            "multicast",
            summary: "Sends a copy down every branch (each step is one branch) and combines the replies.",
            fields: [
                Field("steps", .steps, required: true, "One step per branch, such as several 'to' steps."),
                Field("parallel", .boolean, default: "true", "Run the branches at the same time."),
                Field("aggregate", .choice(Aggregation.allCases.map(\.rawValue)), default: "json-array", "How replies are combined."),
                Field("timeout", .duration, "Fail the step if the branches take longer than this."),
            ],
            listField: "steps",
            example: """
            - multicast:
                aggregate: json-array
                steps:
                  - to: "http://127.0.0.1:9001/quote"
                  - to: "http://127.0.0.1:9002/quote"
            """
        ),
        StepSpec(
            "split",
            summary: "Splitter: runs its steps on each part of the body as a child message, then goes on.",
            fields: [
                Field("xpath", .xpath, "Split an XML body into the nodes this selects."),
                Field("jsonpath", .jsonpath, "Split a JSON body into the values this selects."),
                Field("lines", .boolean, "Split the body into lines."),
                Field("fixed-width", .string, "Split a fixed-width file, read with this layout from the mappings folder, into the JSON values at 'path'."),
                Field("path", .string, "With 'fixed-width': the structure path whose values become the parts, such as batches.entries."),
                Field("steps", .steps, required: true, "Steps run on each part."),
                Field("aggregate", .choice(Aggregation.allCases.map(\.rawValue)), default: "original", "What the route continues with: the original message, or the parts' results combined."),
                Field("parallel", .boolean, default: "false", "Process up to 16 parts at the same time."),
                Field("rejects", .uri, "Send each part whose steps fail (after retries) here, with X-Dead-Letter-* headers, and go on with the others; default: the first failure fails the split."),
            ],
            oneOf: ["xpath", "jsonpath", "lines", "fixed-width"],
            example: """
            - split:
                xpath: "/orders/order"
                steps: [ { to: "http://127.0.0.1:9001/order" } ]
            """
        ),
        StepSpec(
            "idempotent",
            summary: "Idempotent consumer: the steps after it run once per key; a message whose key was seen within the ttl ends the route here, traced as a duplicate. A key is given up when the message fails, so a retry or replay goes through.",
            fields: [
                Field("key", .template, required: true, "The key; a template such as ${header.X-Order-ID} or ${json:$.id}."),
                Field("ttl", .duration, default: "24h", "How long a key is remembered."),
                Field("scope", .string, "Name the keys are kept under (default: the route id); routes sharing a scope share keys."),
            ],
            scalarField: "key",
            example: "- idempotent: { key: \"${header.X-Order-ID}\", ttl: 24h }"
        ),
        StepSpec(
            "route",
            summary: "Runs another route's steps on the message and continues with its result.",
            fields: [Field("id", .string, required: true, "The id of the route to run.")],
            scalarField: "id",
            example: "- route: enrich-customer"
        ),
        StepSpec(
            "stop",
            summary: "Ends the route for this message; the message as it is becomes the route's result.",
            fields: [],
            example: "- stop: {}"
        ),
    ]

    public static func named(_ name: String) -> StepSpec? {
        all.first { $0.name == name }
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
        Field("namespaces", .string, "XML namespace prefixes for XPath in this route: { prefix: uri }."),
        Field("sla", .sla, "Service level: { p95: 150ms, errors: 1%, throughput: 10/s, max-age: 15m, window: 5m, alert: route:alerts }."),
        Field("on-error", .onError, "Failure handling: { retry: { attempts: 3, backoff: 200ms, factor: 2, max-backoff: 30s, jitter: true, on: [connection, timeout, 5xx] }, dead-letter: true }; default: the node's on-error."),
    ]
}
