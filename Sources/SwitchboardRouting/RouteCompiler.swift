import Foundation
import Logging
import Yams
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform

/// Turns route files into compiled routes, collecting every problem with its location.
///
/// Everything a message will need is built here, once: endpoints and their producers,
/// predicates, templates, XPath and JSONPath expressions, regular expressions.
final class RouteCompiler {
    private(set) var log = DiagnosticLog()
    private var catalog: AdapterCatalog
    private let observers: ObserverSet
    private let logger: Logger
    private let environment: [String: String]
    private let directory = RouteDirectory()
    private let background = BackgroundWork()

    private var routeIDs: [String: SourceLocation] = [:]
    private var bindings: [String: (routeID: String, location: SourceLocation)] = [:]
    private var routeCalls: [(target: String, location: SourceLocation)] = []
    private var directCalls: [(name: String, location: SourceLocation)] = []
    private var compiled: [CompiledRoute] = []
    private var services: [ServiceDefinition] = []

    private let mappingsDirectory: String
    /// Stylesheets compiled so far, by absolute path and allowed folder: each once per load.
    private var stylesheets: [String: XSLTStylesheet] = [:]
    /// Schemas compiled so far, by absolute path.
    private var schemas: [String: XSDSchema] = [:]
    private var jsonSchemas: [String: JSONSchema] = [:]
    private var layouts: [String: FixedWidthLayout] = [:]

    private let state: NodeState
    private let defaultErrorPolicy: ErrorPolicy?

    init(
        catalog: AdapterCatalog, observers: ObserverSet, logger: Logger, environment: [String: String], mappingsDirectory: String = "Mappings",
        state: NodeState = NodeState(), defaultErrorPolicy: ErrorPolicy? = nil
    ) {
        self.mappingsDirectory = mappingsDirectory
        self.state = state
        self.defaultErrorPolicy = defaultErrorPolicy
        var catalog = catalog
        catalog.add(DirectAdapter(directory: directory))
        self.catalog = catalog
        self.observers = observers
        self.logger = logger
        self.environment = environment
    }

    /// Scope of one route while its steps compile.
    private final class RouteScope {
        let routeID: String
        let namespaces: XPathNamespaces
        let retry: RetryPolicy?
        var nextIndex = 0

        init(routeID: String, namespaces: XPathNamespaces, retry: RetryPolicy?) {
            self.routeID = routeID
            self.namespaces = namespaces
            self.retry = retry
        }
    }

    // MARK: Files and routes

    /// Compiles the routes of one file.
    func compileFile(_ root: ConfigNode?, file: String) {
        guard let root, !root.isNull else {
            log.warning(SourceLocation(file: file, line: 1, column: 1), "the file is empty; expected 'routes:' with a list of routes")
            return
        }
        guard let entries = root.mapping else {
            log.error(root.location, "expected a mapping with a 'routes:' list, found \(root.kindDescription)")
            return
        }
        var sawRoutes = false
        for entry in entries {
            switch entry.key {
            case "routes":
                sawRoutes = true
                guard let routes = entry.value.sequence else {
                    if !entry.value.isNull {
                        log.error(entry.value.location, "'routes' must be a list of routes ('- id: …'), found \(entry.value.kindDescription)")
                    }
                    continue
                }
                for route in routes {
                    if let compiledRoute = compileRoute(route) { compiled.append(compiledRoute) }
                }
            case "services":
                for service in ServiceDefinition.parseAll(entry.value, log: &log) {
                    if let first = services.first(where: { $0.name == service.name }) {
                        log.error(entry.value.location, "service '\(service.name)' is defined twice; first at \(first.location.map(\.description) ?? "?")")
                    } else {
                        services.append(service)
                    }
                }
            default:
                var message = "unknown top-level key '\(entry.key)'; a route file has 'routes:' (and 'services:')"
                if let guess = closestMatch(to: entry.key, in: ["routes", "services"]) { message += " (did you mean '\(guess)'?)" }
                log.error(entry.keyNode.location, message)
            }
        }
        if !sawRoutes, root["services"] == nil {
            log.error(root.location, "no 'routes:' list in the file")
        }
    }

    private func compileRoute(_ node: ConfigNode) -> CompiledRoute? {
        guard let entries = node.mapping else {
            log.error(node.location, "expected a route (a mapping with 'id', 'from' and 'steps'), found \(node.kindDescription)")
            return nil
        }
        let known = StepSpec.routeFields.map(\.name)
        for entry in entries where !known.contains(entry.key) {
            log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "route key", known: known))
        }
        // Id.
        var routeID: String?
        if let idNode = node["id"] {
            if let id = idNode.scalar, !id.isEmpty, isValidRouteID(id) {
                if let first = routeIDs[id] {
                    log.error(idNode.location, "duplicate route id '\(id)'; it is already used at \(first)")
                } else {
                    routeIDs[id] = idNode.location
                    routeID = id
                }
            } else {
                log.error(idNode.contentLocation, "route id must be letters, digits, '.', '_' or '-', found \(idNode.kindDescription)")
            }
        } else {
            log.error(node.location, "route has no 'id'; expected a unique id such as 'id: orders'")
        }
        let displayID = routeID ?? "?"
        // Namespaces.
        var bindings: [(prefix: String, uri: String)] = []
        if let namespaces = node["namespaces"] {
            if let pairs = namespaces.mapping {
                for pair in pairs {
                    guard let uri = pair.value.scalar, !uri.isEmpty else {
                        log.error(pair.value.location, "namespace '\(pair.key)' needs a URI")
                        continue
                    }
                    bindings.append((pair.key, uri))
                }
            } else {
                log.error(namespaces.location, "'namespaces' must map prefixes to URIs, as in { inv: \"urn:example:invoice\" }")
            }
        }
        // Failure handling: the route's own, else the node's default.
        var errorPolicy = defaultErrorPolicy
        if let node = node["on-error"] {
            errorPolicy = ErrorPolicy.parse(node, log: &log)
        }
        let deadLetter = errorPolicy.flatMap { compileDeadLetter($0.deadLetter, routeID: displayID, at: node["on-error"]?.location ?? node.location) }
        let scope = RouteScope(routeID: displayID, namespaces: XPathNamespaces(bindings), retry: errorPolicy?.retry)
        // Source.
        var source: (endpoint: Endpoint, adapter: any Adapter)?
        if let from = node["from"] {
            source = resolveEndpoint(from, role: .consumer, what: "from", namespaces: scope.namespaces)
        } else {
            log.error(node.location, "route '\(displayID)' has no 'from'; expected a source endpoint such as 'from: http:/orders?method=POST'")
        }
        // Steps.
        var pipeline: Pipeline?
        if let steps = node["steps"] {
            pipeline = compileSteps(steps, scope: scope, pathPrefix: "")
        } else {
            pipeline = Pipeline(steps: [], observers: observers, retry: scope.retry)
        }
        // Service level.
        var sla: SLAPolicy?
        var alert: SLAAlertTarget?
        if let node = node["sla"] {
            (sla, alert) = compileSLA(node)
        }
        // The consumer is built even when other parts failed, so its problems are reported too.
        guard let source else { return nil }
        let consumer: any Consumer
        do {
            consumer = try source.adapter.makeConsumer(source.endpoint)
        } catch {
            log.error(node["from"]?.contentLocation ?? node.location, "\(error)")
            return nil
        }
        guard let routeID, let pipeline else { return nil }
        if consumer.storesBeforeRouting, state.intake == nil, !state.checkOnly {
            log.error(node["from"]?.contentLocation ?? node.location, "route '\(routeID)' accepts messages asynchronously, which needs the node's state store to keep them")
        }
        if let binding = source.adapter.consumerBinding(source.endpoint) {
            let location = node["from"]?.contentLocation ?? node.location
            if let first = self.bindings[binding] {
                log.error(location, "route '\(routeID)' listens on \(binding), which route '\(first.routeID)' already does (\(first.location))")
            } else {
                self.bindings[binding] = (routeID, location)
            }
        }
        return CompiledRoute(
            id: routeID,
            source: source.endpoint,
            location: node.location,
            consumer: consumer,
            pipeline: pipeline,
            observers: observers,
            sla: sla,
            slaAlert: alert,
            deadLetter: deadLetter,
            deadLetterOn: errorPolicy?.deadLetterOn,
            storesBeforeRouting: consumer.storesBeforeRouting
        )
    }

    /// Where a route's dead letters go: the node's store, or a producer.
    private func compileDeadLetter(_ target: ErrorPolicy.DeadLetter, routeID: String, at location: SourceLocation) -> DeadLetterTarget? {
        switch target {
        case .none:
            return nil
        case .store:
            if let store = state.deadLetters { return .store(store) }
            if !state.checkOnly {
                log.error(location,
                          "route '\(routeID)' sends failed messages to the dead letter store, but the node has no state store")
            }
            return nil
        case .endpoint(let uri, let uriLocation):
            do {
                let resolved = try catalog.resolve(uri, role: .producer, extraOptions: [])
                return .producer(try resolved.adapter.makeProducer(resolved.endpoint), resolved.endpoint.description)
            } catch let error as EndpointError {
                log.error(uriLocation.advanced(by: error.offset ?? 0), "on-error.dead-letter: \(error.message)")
            } catch {
                log.error(uriLocation, "on-error.dead-letter: \(error)")
            }
            return nil
        }
    }

    /// `sla: { p95: 150ms, errors: 1%, throughput: 10/s, max-age: 15m, window: 5m, alert: … }`.
    private func compileSLA(_ node: ConfigNode) -> (SLAPolicy?, SLAAlertTarget?) {
        guard let entries = node.mapping else {
            log.error(node.location, "'sla' must be a mapping such as { p95: 150ms, errors: 1% }, found \(node.kindDescription)")
            return (nil, nil)
        }
        var policy = SLAPolicy()
        var alert: SLAAlertTarget?
        let diagnosticsBefore = log.diagnostics.count
        for entry in entries {
            guard let text = entry.value.scalar, !entry.value.isNull else {
                log.error(entry.value.location, "'sla.\(entry.key)' expects a single value, found \(entry.value.kindDescription)")
                continue
            }
            let at = entry.value.contentLocation
            switch entry.key {
            case "errors":
                if let rate = SLAPolicy.parseRate(text) {
                    policy.errorRate = rate
                } else {
                    log.error(at, "'sla.errors' expects a share of failed exchanges such as 1% or 0.01, found '\(text)'")
                }
            case "throughput":
                if let rate = SLAPolicy.parseThroughput(text) {
                    policy.minThroughput = rate
                } else {
                    log.error(at, "'sla.throughput' expects a minimum rate such as 10/s, 600/m or 1000/h, found '\(text)'")
                }
            case "max-age":
                if let duration = parseDuration(text) {
                    policy.maxAge = duration
                } else {
                    log.error(at, "'sla.max-age' expects a duration such as 15m, found '\(text)'")
                }
            case "window":
                if let duration = parseDuration(text), duration >= .seconds(10) {
                    policy.window = duration
                } else {
                    log.error(at, "'sla.window' expects a duration of at least 10s such as 5m, found '\(text)'")
                }
            case "alert":
                policy.alert = text
                if text.hasPrefix("route:") {
                    let target = String(text.dropFirst("route:".count))
                    routeCalls.append((target, at))
                    alert = .route(target)
                } else if let (endpoint, adapter) = resolveEndpoint(entry.value, role: .producer, what: "sla.alert") {
                    do {
                        alert = .producer(try adapter.makeProducer(endpoint), endpoint.description)
                    } catch {
                        log.error(at, "\(error)")
                    }
                }
            default:
                if let percentile = SLAPolicy.parsePercentileKey(entry.key) {
                    if let duration = parseDuration(text) {
                        policy.latency.append(.init(percentile: percentile, target: duration, name: entry.key))
                    } else {
                        log.error(at, "'sla.\(entry.key)' expects a latency such as 150ms, found '\(text)'")
                    }
                } else {
                    let known = ["p50", "p95", "p99", "errors", "throughput", "max-age", "window", "alert"]
                    log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "sla key", known: known))
                }
            }
        }
        if policy.isEmpty, log.diagnostics.count == diagnosticsBefore {
            log.error(node.location, "'sla' sets no objective; give at least one of pNN (p95: 150ms), errors, throughput or max-age")
            return (nil, nil)
        }
        return (policy, alert)
    }

    private func isValidRouteID(_ id: String) -> Bool {
        id.unicodeScalars.allSatisfy { ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    /// Checks cross-route references and builds the engine.
    func finish() throws -> RouteEngine {
        for call in routeCalls where routeIDs[call.target] == nil {
            var message = "route '\(call.target)' does not exist"
            if let guess = closestMatch(to: call.target, in: routeIDs.keys) { message += "; did you mean '\(guess)'?" }
            log.error(call.location, message)
        }
        let directNames = Set(compiled.filter { $0.source.scheme == DirectAdapter.scheme }.map(\.source.path))
        for call in directCalls where !directNames.contains(call.name) {
            log.error(call.location, "no route has 'from: direct:\(call.name)'")
        }
        try log.throwIfErrors()
        directory.install(compiled)
        return RouteEngine(routes: compiled, warnings: log.diagnostics, background: background, observers: observers, logger: logger, state: state, services: services)
    }

    // MARK: Endpoints

    /// Resolves a `from`/`to` value: a URI string, or a mapping with `uri` and options.
    private func resolveEndpoint(
        _ node: ConfigNode,
        role: EndpointRole,
        what: String,
        namespaces: XPathNamespaces = XPathNamespaces(),
        stepKeys: Set<String> = []
    ) -> (endpoint: Endpoint, adapter: any Adapter)? {
        var uriNode = node
        var options: [(name: String, value: String)] = []
        var optionLocations: [String: SourceLocation] = [:]
        if let entries = node.mapping {
            guard let uri = node["uri"] else {
                log.error(node.location, "'\(what)' needs 'uri' when written as a mapping")
                return nil
            }
            uriNode = uri
            // Keys the step itself reads (a `to`'s `headers`) are not endpoint options.
            for entry in entries where entry.key != "uri" && !stepKeys.contains(entry.key) {
                guard let value = entry.value.scalar else {
                    log.error(entry.value.location, "endpoint option '\(entry.key)' must be a single value, found \(entry.value.kindDescription)")
                    continue
                }
                options.append((entry.key, value))
                optionLocations[entry.key] = entry.keyNode.location
            }
        }
        guard let text = uriNode.scalar, !text.isEmpty, !uriNode.isNull else {
            log.error(uriNode.location, "'\(what)' needs an endpoint URI such as 'http://host:8080/path', found \(uriNode.kindDescription)")
            return nil
        }
        let templateOptions = EndpointURI.scheme(of: text).flatMap { catalog.adapter(for: $0) }.map {
            Set(type(of: $0).spec.options(for: role).filter { $0.type == .template || $0.type == .sql }.map(\.name))
        } ?? []
        let sqlOptions = EndpointURI.scheme(of: text).flatMap { catalog.adapter(for: $0) }.map {
            Set(type(of: $0).spec.options(for: role).filter { $0.type == .sql }.map(\.name))
        } ?? []
        // Options the adapter refuses as unknown: a placeholder in one is a misspelled option,
        // which resolving reports with "did you mean".
        let unknownRefused = EndpointURI.scheme(of: text).flatMap { catalog.adapter(for: $0) }.map { adapter -> (String) -> Bool in
            let spec = type(of: adapter).spec
            let known = Set(spec.options(for: role).map(\.name))
            let keeps = role == .producer && spec.producerKeepsUnknownQuery
            return { !keeps && !known.contains($0) }
        } ?? { _ in false }
        var searchFrom = text.startIndex
        while let placeholder = text.range(of: "${", range: searchFrom..<text.endIndex) {
            searchFrom = placeholder.upperBound
            // Placeholders may stand only in the value of an option that is a template.
            let before = text[..<placeholder.lowerBound]
            let parameter = before.lastIndex(where: { $0 == "?" || $0 == "&" }).map { before[before.index(after: $0)...] }
            if let parameter, let equals = parameter.firstIndex(of: "="),
               templateOptions.contains(String(parameter[..<equals])) || unknownRefused(String(parameter[..<equals])) { continue }
            let offset = text.distance(from: text.startIndex, to: placeholder.lowerBound)
            let allowed = templateOptions.isEmpty ? "" : " (only in the option\(templateOptions.count == 1 ? "" : "s") \(templateOptions.sorted().joined(separator: ", ")))"
            log.error(uriNode.contentLocation.advanced(by: offset), "endpoint URIs are fixed when routes load, so '${…}' placeholders cannot be used in '\(what)'\(allowed); route with 'choice' to fixed endpoints instead")
            return nil
        }
        do {
            var resolved = try catalog.resolve(text, role: role, extraOptions: options)
            var failed = false
            for name in templateOptions.sorted() {
                guard let value = resolved.endpoint.options.string(name) else { continue }
                let location = optionLocations[name] ?? uriNode.contentLocation.advanced(by: text.range(of: name + "=").map { text.distance(from: text.startIndex, to: $0.upperBound) } ?? 0)
                if sqlOptions.contains(name) {
                    // Each `:${…}` parameter is a template of its own; the rest is SQL.
                    do {
                        let statement = try SQLStatement(value)
                        for (index, template) in statement.templateTexts.enumerated() {
                            if let compiled = Template.compile(template, at: location, namespaces: namespaces, environment: environment, log: &log) {
                                resolved.endpoint.templates[SQLStatement.templateKey(name, index)] = compiled
                            } else {
                                failed = true
                            }
                        }
                    } catch let error as EndpointError {
                        log.error(location, "'\(name)': \(error.message)")
                        failed = true
                    }
                    continue
                }
                if let template = Template.compile(value, at: location, namespaces: namespaces, environment: environment, log: &log) {
                    resolved.endpoint.templates[name] = template
                } else {
                    failed = true
                }
            }
            return failed ? nil : resolved
        } catch let error as EndpointError {
            var location = uriNode.contentLocation.advanced(by: error.offset ?? 0)
            if error.offset == nil, let name = options.first(where: { error.message.contains("'\($0.name)'") })?.name, let optionLocation = optionLocations[name] {
                location = optionLocation
            }
            log.error(location, error.message)
        } catch {
            log.error(uriNode.contentLocation, "\(error)")
        }
        return nil
    }

    // MARK: Steps

    private func compileSteps(_ node: ConfigNode, scope: RouteScope, pathPrefix: String) -> Pipeline? {
        if node.isNull { return Pipeline(steps: [], observers: observers, retry: scope.retry) }
        guard let items = node.sequence else {
            log.error(node.location, "expected a list of steps ('- to: …'), found \(node.kindDescription)")
            return nil
        }
        var steps: [CompiledStep] = []
        var failed = false
        for (position, item) in items.enumerated() {
            if let step = compileStep(item, scope: scope, path: pathPrefix + String(position)) {
                steps.append(step)
            } else {
                failed = true
            }
        }
        guard !failed else { return nil }
        // An idempotent step holds the steps after it, so it can give up its claim when they fail.
        var tail: [CompiledStep] = []
        for step in steps.reversed() {
            if let pending = step.processor as? PendingIdempotentStep {
                let rest = Pipeline(steps: tail, observers: observers, retry: scope.retry)
                tail = [CompiledStep(info: step.info, processor: pending.wrapping(rest))]
            } else {
                tail.insert(step, at: 0)
            }
        }
        return Pipeline(steps: tail, observers: observers, retry: scope.retry)
    }

    /// The parts of one step after the generic checks: its kind, its fields, and any
    /// predicate keys or endpoint options written beside them.
    private struct StepNode {
        let spec: StepSpec
        let keyNode: ConfigNode
        var fields: [String: ConfigNode] = [:]
        var predicate: [(key: String, keyNode: ConfigNode, value: ConfigNode)] = []
        var options: ConfigNode?

        var location: SourceLocation { keyNode.location }
    }

    private func compileStep(_ node: ConfigNode, scope: RouteScope, path: String) -> CompiledStep? {
        guard let entries = node.mapping, !entries.isEmpty else {
            log.error(node.location, "expected a step such as '- to: http://…', found \(node.kindDescription)")
            return nil
        }
        guard entries.count == 1 else {
            let keys = entries.map { "'\($0.key)'" }.joined(separator: ", ")
            log.error(node.location, "a step is a mapping with one key, the step kind; found \(keys) (is a '-' missing, or is the indentation off?)")
            return nil
        }
        let (kind, keyNode, value) = entries[0]
        guard let spec = StepSpec.named(kind) else {
            log.error(keyNode.location, unknownKeyMessage(kind, what: "step", known: StepSpec.all.map(\.name)))
            return nil
        }
        var step = StepNode(spec: spec, keyNode: keyNode)
        guard readFields(value, into: &step) else { return nil }
        let index = scope.nextIndex
        scope.nextIndex += 1
        var info = StepInfo(routeID: scope.routeID, index: index, path: path, kind: kind, location: keyNode.location)
        guard let processor = build(step, scope: scope, info: &info) else { return nil }
        return CompiledStep(info: info, processor: processor)
    }

    /// Sorts a step's value into fields, predicate keys and endpoint options, and checks
    /// the keys, the required fields and the simple value types.
    private func readFields(_ value: ConfigNode, into step: inout StepNode) -> Bool {
        let spec = step.spec
        let errorsBefore = log.diagnostics.count
        if let entries = value.mapping {
            var options: [(Yams.Node, Yams.Node)] = []
            for entry in entries {
                if spec.field(entry.key) != nil {
                    step.fields[entry.key] = entry.value
                } else if spec.inlinePredicate, StepSpec.predicateKeys.contains(entry.key) {
                    step.predicate.append(entry)
                } else if spec.endpointOptions {
                    options.append((entry.keyNode.node, entry.value.node))
                } else {
                    var known = spec.fields.map(\.name)
                    if spec.inlinePredicate { known += StepSpec.predicateKeys }
                    log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "option", of: "step '\(spec.name)'", known: known))
                }
            }
            if !options.isEmpty { step.options = value }
        } else if value.sequence != nil {
            guard let listField = spec.listField else {
                log.error(value.location, "'\(spec.name)' takes \(shapeDescription(spec)), not a list")
                return false
            }
            step.fields[listField] = value
        } else if !value.isNull {
            guard let scalarField = spec.scalarField else {
                if spec.fields.isEmpty, ["true", "yes", "on"].contains(value.scalar ?? "") { return true }
                log.error(value.location, "'\(spec.name)' takes \(shapeDescription(spec)), not a single value")
                return false
            }
            step.fields[scalarField] = value
        }
        for field in spec.fields where field.required && step.fields[field.name] == nil {
            log.error(step.location, "step '\(spec.name)' needs '\(field.name)': \(field.doc)")
        }
        if !spec.oneOf.isEmpty {
            let given = spec.oneOf.filter { step.fields[$0] != nil }
            if given.count != 1 {
                log.error(step.location, "step '\(spec.name)' needs exactly one of \(spec.oneOf.map { "'\($0)'" }.joined(separator: ", "))\(given.count > 1 ? "; found \(given.joined(separator: ", "))" : "")")
            }
        }
        if spec.inlinePredicate && step.predicate.isEmpty {
            log.error(step.location, "step '\(spec.name)' needs a predicate, such as 'header: X-Type, equals: order'")
        }
        for (name, node) in step.fields {
            guard let field = spec.field(name) else { continue }
            checkType(of: node, as: field)
        }
        return log.diagnostics.count == errorsBefore
    }

    private func shapeDescription(_ spec: StepSpec) -> String {
        if let scalar = spec.scalarField { return "a \(scalar) or a mapping" }
        if let list = spec.listField { return "a list of \(list) or a mapping" }
        return "a mapping with \(spec.fields.map { "'\($0.name)'" }.joined(separator: ", "))"
    }

    private func checkType(of node: ConfigNode, as field: StepSpec.Field) {
        let name = field.name
        switch field.type {
        case .string, .template, .uri, .xpath, .jsonpath:
            if node.scalar == nil {
                log.error(node.location, "'\(name)' expects a single value, found \(node.kindDescription)")
            }
        case .boolean:
            if parseBool(node.scalar) == nil {
                log.error(node.contentLocation, "'\(name)' expects true or false, found \(node.kindDescription)")
            }
        case .duration:
            if node.scalar.flatMap({ parseDuration($0) }) == nil {
                log.error(node.contentLocation, "'\(name)' expects a duration such as 500ms, 5s or 2m, found \(node.kindDescription)")
            }
        case .choice(let words):
            if let value = node.scalar, words.contains(value) { return }
            log.error(node.contentLocation, "'\(name)' expects one of \(words.joined(separator: ", ")), found \(node.kindDescription)")
        case .steps, .branches:
            if node.sequence == nil, !node.isNull {
                log.error(node.location, "'\(name)' expects a list, found \(node.kindDescription)")
            }
        case .stringList:
            if node.sequence.map({ $0.allSatisfy { $0.scalar != nil } }) != true {
                log.error(node.location, "'\(name)' expects a list of strings, found \(node.kindDescription)")
            }
        case .sla, .onError, .templateMap, .mapping:
            if node.mapping == nil {
                log.error(node.location, "'\(name)' expects a mapping, found \(node.kindDescription)")
            }
        }
    }

    // MARK: Building steps

    private func build(_ step: StepNode, scope: RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        switch step.spec.name {
        case "log":
            guard let message = template(fields["message"], scope: scope) else { return nil }
            let level = fields["level"]?.scalar.flatMap(Logger.Level.init(rawValue:)) ?? .info
            var stepLogger = logger
            stepLogger[metadataKey: "route"] = "\(scope.routeID)"
            return LogStep(message: message, level: level, logger: stepLogger)

        case "set-header":
            guard let name = headerName(fields["name"]), let value = template(fields["value"], scope: scope) else { return nil }
            return SetHeaderStep(name: name, value: value)

        case "remove-header":
            guard let name = headerName(fields["name"], allowPrefix: true) else { return nil }
            if name.hasSuffix("*") {
                return RemoveHeaderStep(selection: .prefix(String(name.dropLast())))
            }
            return RemoveHeaderStep(selection: .name(name))

        case "set-body":
            guard let value = template(fields["value"], scope: scope) else { return nil }
            return SetBodyStep(value: value, contentType: fields["content-type"]?.scalar)

        case "xslt":
            var stepLogger = logger
            stepLogger[metadataKey: "route"] = "\(scope.routeID)"
            stepLogger[metadataKey: "step"] = "\(info.path)"
            return buildXSLT(fields, scope: scope, at: step.location)?.logging(to: stepLogger)

        case "map":
            return buildMap(fields, scope: scope, at: step.location)

        case "xml-to-json":
            let arrays = Set(fields["arrays"]?.sequence?.compactMap(\.scalar) ?? [])
            return XMLToJSONStep(arrays: arrays)

        case "json-to-xml":
            return JSONToXMLStep()

        case "validate":
            return buildValidate(fields, at: step.location)

        case "choice":
            guard let branchesNode = fields["branches"] else { return nil }
            return buildChoice(branchesNode, scope: scope, path: info.path)

        case "filter":
            let predicate = compilePredicate(entries: step.predicate, at: step.location, scope: scope)
            let pipeline = fields["steps"].flatMap { compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
            guard let predicate, let pipeline else { return nil }
            return FilterStep(predicate: CompiledPredicate(root: predicate), pipeline: pipeline)

        case "to", "wire-tap":
            guard let producer = producer(for: step, info: &info) else { return nil }
            if step.spec.name == "to" {
                return ToStep(producer: producer)
            }
            let logger = self.logger
            return WireTapStep(producer: producer, info: info, background: background, observers: observers) { failure in
                logger.warning("wire-tap copy failed", metadata: ["route": "\(failure.step.routeID)", "message-id": "\(failure.messageID)", "error": "\(failure)"])
            }

        case "multicast":
            guard let stepsNode = fields["steps"], let items = stepsNode.sequence else { return nil }
            var branches: [Pipeline] = []
            for (position, item) in items.enumerated() {
                guard let branch = compileStep(item, scope: scope, path: "\(info.path).\(position)") else { continue }
                branches.append(Pipeline(steps: [branch], observers: observers, retry: scope.retry))
            }
            guard branches.count == items.count else { return nil }
            if branches.isEmpty {
                log.error(stepsNode.location, "'multicast' needs at least one branch")
                return nil
            }
            return MulticastStep(
                branches: branches,
                parallel: parseBool(fields["parallel"]?.scalar) ?? true,
                aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .jsonArray,
                timeout: fields["timeout"]?.scalar.flatMap { parseDuration($0) }
            )

        case "split":
            var source: SplitStep.Source?
            if let node = fields["xpath"] {
                source = xpath(node, scope: scope).map { .xpath($0) }
            } else if let node = fields["jsonpath"] {
                source = jsonpath(node).map { .jsonpath($0) }
            } else if let node = fields["lines"] {
                if parseBool(node.scalar) == true {
                    source = .lines
                } else {
                    log.error(node.contentLocation, "'lines' must be true to split by lines")
                }
            } else if let node = fields["fixed-width"] {
                source = fixedWidthSource(node, path: fields["path"], at: step.location)
            }
            let pipeline = fields["steps"].flatMap { compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
            var rejects: (any Producer, String)?
            if let node = fields["rejects"] {
                guard let (endpoint, adapter) = resolveEndpoint(node, role: .producer, what: "rejects") else { return nil }
                do {
                    rejects = (try adapter.makeProducer(endpoint), endpoint.description)
                    if endpoint.scheme == DirectAdapter.scheme { directCalls.append((endpoint.path, node.contentLocation)) }
                } catch {
                    log.error(node.contentLocation, "\(error)")
                    return nil
                }
            }
            guard let source, let pipeline else { return nil }
            return SplitStep(
                source: source,
                pipeline: pipeline,
                aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .original,
                parallel: parseBool(fields["parallel"]?.scalar) ?? false,
                rejects: rejects,
                info: info
            )

        case "idempotent":
            guard let key = template(fields["key"], scope: scope) else { return nil }
            let ttl = fields["ttl"]?.scalar.flatMap { parseDuration($0) } ?? .seconds(86_400)
            let keyScope = fields["scope"]?.scalar ?? scope.routeID
            if let store = state.idempotency {
                return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: store)
            }
            if state.checkOnly {
                return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: UnavailableStateStore())
            }
            log.error(step.location, "'idempotent' keeps its keys in the node's state store, and this node has none")
            return nil

        case "route":
            guard let node = fields["id"], let target = node.scalar, !target.isEmpty else { return nil }
            routeCalls.append((target, node.contentLocation))
            return RouteCallStep(target: target, directory: directory)

        case "stop":
            return StopStep()

        default:
            log.error(step.location, "step '\(step.spec.name)' is declared but has no builder")
            return nil
        }
    }

    private func producer(for step: StepNode, info: inout StepInfo) -> (any Producer)? {
        let node = step.options ?? step.fields["uri"]
        guard let node, let (endpoint, adapter) = resolveEndpoint(node, role: .producer, what: step.spec.name, stepKeys: ["headers"]) else { return nil }
        info.endpoint = endpoint.description
        var filter: HeaderFilter?
        if let headers = node.mapping == nil ? nil : node["headers"] {
            guard let parsed = HeaderFilter.parse(headers, key: "\(step.spec.name).headers", log: &log) else { return nil }
            filter = parsed
        }
        do {
            let producer = try adapter.makeProducer(endpoint)
            if endpoint.scheme == DirectAdapter.scheme {
                directCalls.append((endpoint.path, step.fields["uri"]?.contentLocation ?? step.location))
            }
            if let filter { return FilteredProducer(producer: producer, filter: filter) }
            return producer
        } catch {
            log.error(step.fields["uri"]?.contentLocation ?? step.location, "\(error)")
            return nil
        }
    }

    /// `xslt: FILE` or `xslt: { file, params: { name: template }, allow: FOLDER }`: the
    /// stylesheet is compiled here, once, and may read only inside the mappings folder
    /// (or the `allow` folder under it).
    private func buildXSLT(_ fields: [String: ConfigNode], scope: RouteScope, at location: SourceLocation) -> XSLTStep? {
        guard let fileNode = fields["file"], let file = fileNode.scalar else { return nil }
        guard let path = mappingsPath(file, at: fileNode.contentLocation, what: "stylesheet") else { return nil }
        var root = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        if let allowNode = fields["allow"], let allow = allowNode.scalar {
            guard let widened = mappingsPath(allow, at: allowNode.contentLocation, what: "'allow' folder", mustExist: false) else { return nil }
            root = widened
        }
        var parameters: [(String, Template)] = []
        if let paramsNode = fields["params"] {
            guard let pairs = paramsNode.mapping else {
                log.error(paramsNode.location, "'params' maps parameter names to values, as in { lang: en, sent: \"${date:yyyy-MM-dd}\" }")
                return nil
            }
            for pair in pairs {
                guard let value = template(pair.value, scope: scope) else {
                    log.error(pair.value.location, "parameter '\(pair.key)' needs a single value")
                    continue
                }
                parameters.append((pair.key, value))
            }
        }
        let key = path + "\u{0}" + root
        if let compiled = stylesheets[key] {
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(fileNode.contentLocation, "stylesheet '\(file)' does not exist in the mappings folder (\(mappingsDirectory))")
            return nil
        }
        do {
            let compiled = try XSLTStylesheet(path: path, allowedRoot: root)
            stylesheets[key] = compiled
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        } catch {
            log.error(fileNode.contentLocation, "\(error)")
            return nil
        }
    }

    /// `split: { fixed-width: LAYOUT, path: batches.entries }`: the layout compiled once.
    private func fixedWidthSource(_ node: ConfigNode, path pathNode: ConfigNode?, at location: SourceLocation) -> SplitStep.Source? {
        guard let file = node.scalar, let path = mappingsPath(file, at: node.contentLocation, what: "layout") else { return nil }
        let layout: FixedWidthLayout
        if let compiled = layouts[path] {
            layout = compiled
        } else {
            do {
                layout = try FixedWidthLayout(path: path)
                layouts[path] = layout
            } catch let error as ConfigurationError {
                for diagnostic in error.diagnostics { log.error(diagnostic.location, diagnostic.message) }
                return nil
            } catch {
                log.error(node.contentLocation, "\(error)")
                return nil
            }
        }
        guard let pathNode, let split = pathNode.scalar else {
            log.error(location, "'split' with 'fixed-width' needs 'path': one of \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        guard layout.structurePaths.contains(split) else {
            log.error(pathNode.contentLocation, "'\(split)' is not a path of the layout's structure; paths: \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        return .fixedWidth(layout, path: split.split(separator: ".").map(String.init))
    }

    /// `validate: { xsd: F }` or `validate: { json-schema: F }`: the schema compiled once,
    /// shared by every step that names the same file.
    private func buildValidate(_ fields: [String: ConfigNode], at location: SourceLocation) -> (any Processor)? {
        let given = ["xsd", "json-schema"].filter { fields[$0] != nil }
        guard given.count == 1, let kind = given.first, let node = fields[kind], let file = node.scalar else {
            log.error(location, given.isEmpty
                ? "'validate' needs a schema: { xsd: FILE } or { json-schema: FILE }"
                : "'validate' takes one schema: 'xsd' or 'json-schema', not both")
            return nil
        }
        if kind == "xsd", let resources = fields["resources"] {
            log.error(resources.location, "'resources' maps URIs for a 'json-schema'; an 'xsd' reads its includes and imports from the mappings folder")
            return nil
        }
        guard let path = mappingsPath(file, at: node.contentLocation, what: "schema") else { return nil }
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(node.contentLocation, "schema '\(file)' does not exist in the mappings folder (\(mappingsDirectory))")
            return nil
        }
        let root = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        do {
            if kind == "xsd" {
                let compiled = schemas[path] == nil
                let schema = try schemas[path] ?? XSDSchema(path: path, allowedRoot: root)
                schemas[path] = schema
                if compiled {
                    for warning in schema.warnings {
                        log.warning(node.contentLocation, "schema '\(file)'\(warning.line.map { " line \($0)" } ?? ""): \(warning.message)")
                    }
                }
                return ValidateStep.xsd(schema, file: file)
            }
            guard let resources = schemaResources(fields["resources"]) else { return nil }
            let key = ([path] + resources.keys.sorted().map { "\($0)=\(resources[$0] ?? "")" }).joined(separator: "\n")
            let schema = try jsonSchemas[key] ?? JSONSchema(path: path, allowedRoot: root, resources: resources)
            jsonSchemas[key] = schema
            return ValidateStep.jsonSchema(schema, file: file)
        } catch {
            log.error(node.contentLocation, "\(error)")
            return nil
        }
    }

    /// A JSON Schema's `resources:`: remote URI prefixes and the folders in the mappings
    /// folder that stand for them. Nil (with the error logged) when one is wrong.
    private func schemaResources(_ node: ConfigNode?) -> [String: String]? {
        guard let node else { return [:] }
        guard let entries = node.mapping else {
            log.error(node.location, "'resources' maps URI prefixes to folders in the mappings folder, e.g. { \"http://example.com/schemas/\": schemas/ }")
            return nil
        }
        var resources: [String: String] = [:]
        for entry in entries {
            guard let url = URL(string: entry.key), url.scheme != nil, !entry.key.contains("#") else {
                log.error(entry.keyNode.location, "'\(entry.key)' is not an absolute URI prefix (like http://example.com/schemas/)")
                return nil
            }
            guard let folder = entry.value.scalar,
                  let path = mappingsPath(folder, at: entry.value.contentLocation, what: "resource folder")
            else {
                if entry.value.scalar == nil { log.error(entry.value.location, "the folder for '\(entry.key)' must be a path in the mappings folder") }
                return nil
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
                log.error(entry.value.contentLocation, "resource folder '\(folder)' for '\(entry.key)' is not a folder in the mappings folder (\(mappingsDirectory))")
                return nil
            }
            resources[entry.key] = path
        }
        return resources
    }

    /// `map: { fields: {…} }` or `map: { file: F }`.
    private func buildMap(_ fields: [String: ConfigNode], scope: RouteScope, at location: SourceLocation) -> (any Processor)? {
        var targetsNode = fields["fields"]
        if let fileNode = fields["file"], let file = fileNode.scalar {
            guard targetsNode == nil else {
                log.error(fileNode.location, "'map' takes 'fields' or 'file', not both")
                return nil
            }
            guard let path = mappingsPath(file, at: fileNode.contentLocation, what: "map file") else { return nil }
            do {
                targetsNode = try ConfigNode.load(path: path, displayName: path)
            } catch let error as ConfigurationError {
                log.append(contentsOf: error.diagnostics)
                return nil
            } catch {
                log.error(fileNode.contentLocation, "map file '\(file)' cannot be read: \(error)")
                return nil
            }
        }
        guard let targetsNode else {
            log.error(location, "'map' needs 'fields' (targets and expressions) or 'file'")
            return nil
        }
        guard let targets = compileMapTargets(targetsNode, scope: scope) else { return nil }
        return MapStep(targets: targets)
    }

    private func compileMapTargets(_ node: ConfigNode, scope: RouteScope) -> [MapTarget]? {
        guard let pairs = node.mapping else {
            log.error(node.location, "a map is a mapping of target paths to expressions, found \(node.kindDescription)")
            return nil
        }
        var targets: [MapTarget] = []
        var failed = false
        for pair in pairs {
            let path = pair.key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                log.error(pair.keyNode.location, "target '\(pair.key)' has an empty part; write paths as a.b.c")
                failed = true
                continue
            }
            guard let expression = compileMapExpression(pair.value, scope: scope) else {
                failed = true
                continue
            }
            targets.append(MapTarget(path: path, expression: expression))
        }
        return failed ? nil : targets
    }

    private func compileMapExpression(_ node: ConfigNode, scope: RouteScope) -> MapExpression? {
        if node.isNull { return .literal(.null) }
        if let text = node.scalar {
            if text.contains("${") {
                return template(node, scope: scope).map(MapExpression.template)
            }
            if text.hasPrefix("$") || text.hasPrefix("@") {
                let relative = text.hasPrefix("@")
                do {
                    return .path(try JSONPath(relative ? "$" + text.dropFirst() : text), relative: relative)
                } catch let error as JSONPathError {
                    log.error(node.contentLocation.advanced(by: error.offset), "invalid JSONPath '\(text)': \(error.message)")
                    return nil
                } catch {
                    log.error(node.contentLocation, "invalid JSONPath '\(text)': \(error)")
                    return nil
                }
            }
            return .literal(.string(text))
        }
        guard let entries = node.mapping, let first = entries.first else {
            log.error(node.location, "a map expression is a JSONPath, a template, a literal or a function such as { upper: \"$.name\" }")
            return nil
        }
        let arguments = first.value
        func list() -> [ConfigNode]? {
            guard let items = arguments.sequence else {
                log.error(arguments.location, "'\(first.key)' takes a list, as in \(first.key): [\"$.a\", \"$.b\"]")
                return nil
            }
            return items
        }
        switch first.key {
        case "literal":
            guard let text = arguments.scalar else { return .literal(.null) }
            return .literal((try? JSONValue(parsing: text)) ?? .string(text))
        case "number":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.number)
        case "upper":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.upper)
        case "lower":
            return compileMapExpression(arguments, scope: scope).map(MapExpression.lower)
        case "concat", "default":
            guard let items = list() else { return nil }
            let parts = items.compactMap { compileMapExpression($0, scope: scope) }
            guard parts.count == items.count else { return nil }
            return first.key == "concat" ? .concat(parts) : .firstOf(parts)
        case "substring":
            guard let items = list() else { return nil }
            let length = items.count == 3 ? items[2].scalar.flatMap { Int($0) } : nil
            guard (2...3).contains(items.count), let start = items[1].scalar.flatMap({ Int($0) }),
                  items.count == 2 || length != nil else {
                log.error(arguments.location, "'substring' takes [expression, start, length], start and length as numbers")
                return nil
            }
            guard let inner = compileMapExpression(items[0], scope: scope) else { return nil }
            return .substring(inner, start: start, length: length)
        case "date":
            let options = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let from = options["from"]?.scalar, let to = options["to"]?.scalar else {
                log.error(node.location, "'date' takes { date: EXPRESSION, from: PATTERN, to: PATTERN }, such as from: yyyy-MM-dd")
                return nil
            }
            guard let inner = compileMapExpression(arguments, scope: scope) else { return nil }
            return .date(inner, from: DateFormatterBox(from), to: DateFormatterBox(to))
        case "each":
            let options = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let text = arguments.scalar, text.hasPrefix("$") || text.hasPrefix("@"), let inner = options["map"] else {
                log.error(node.location, "'each' takes { each: JSONPATH, map: { target: expression, … } }")
                return nil
            }
            let relative = text.hasPrefix("@")
            guard let path = try? JSONPath(relative ? "$" + text.dropFirst() : text) else {
                log.error(arguments.contentLocation, "invalid JSONPath '\(text)'")
                return nil
            }
            guard let targets = compileMapTargets(inner, scope: scope) else { return nil }
            return .each(path, relative: relative, targets)
        default:
            let known = ["literal", "number", "upper", "lower", "concat", "default", "substring", "date", "each", "map", "from", "to"]
            // A mapping of plain names is a nested object of targets.
            if entries.allSatisfy({ !known.contains($0.key) }), entries.count > 1 || closestMatch(to: first.key, in: known) == nil {
                return compileMapTargets(node, scope: scope).map(MapExpression.object)
            }
            log.error(first.keyNode.location, unknownKeyMessage(first.key, what: "map function", known: Array(known.prefix(9))))
            return nil
        }
    }

    /// A path inside the mappings folder, or nil (with an error) when it would leave it.
    private func mappingsPath(_ relative: String, at location: SourceLocation, what: String, mustExist: Bool = true) -> String? {
        let base = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        let path = URL(fileURLWithPath: relative, relativeTo: URL(fileURLWithPath: base + "/")).standardizedFileURL.path
        guard !relative.hasPrefix("/"), path == base || path.hasPrefix(base + "/") else {
            log.error(location, "\(what) '\(relative)' is outside the mappings folder; give a path relative to \(mappingsDirectory)")
            return nil
        }
        return path
    }

    private func buildChoice(_ node: ConfigNode, scope: RouteScope, path: String) -> (any Processor)? {
        guard let items = node.sequence, !items.isEmpty else {
            log.error(node.location, "'choice' needs a list of '- when: …' branches")
            return nil
        }
        var branches: [ChoiceStep.Branch] = []
        var otherwise: Pipeline?
        var failed = false
        for (position, item) in items.enumerated() {
            guard let entries = item.mapping else {
                log.error(item.location, "a choice branch is '- when: PREDICATE' with 'steps:', or '- otherwise: [steps]'; found \(item.kindDescription)")
                failed = true
                continue
            }
            if let otherwiseNode = item["otherwise"] {
                if entries.count > 1 {
                    log.error(item.location, "'otherwise' stands alone in its branch; put its steps under it")
                    failed = true
                }
                if position != items.count - 1 {
                    log.error(item.location, "'otherwise' must be the last branch of a choice")
                    failed = true
                }
                otherwise = compileSteps(otherwiseNode, scope: scope, pathPrefix: "\(path).otherwise.")
                if otherwise == nil { failed = true }
                continue
            }
            guard let when = item["when"] else {
                log.error(item.location, "a choice branch needs 'when' (or is the final 'otherwise')")
                failed = true
                continue
            }
            for entry in entries where entry.key != "when" && entry.key != "steps" {
                log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "key", of: "a 'when' branch", known: ["when", "steps"]))
                failed = true
            }
            let branchIndex = branches.count
            let predicate = compilePredicate(node: when, scope: scope)
            var pipeline: Pipeline?
            if let steps = item["steps"] {
                pipeline = compileSteps(steps, scope: scope, pathPrefix: "\(path).when[\(branchIndex)].")
            } else {
                log.error(item.location, "this 'when' branch has no 'steps'")
            }
            guard let predicate, let pipeline else {
                failed = true
                continue
            }
            branches.append(ChoiceStep.Branch(index: branchIndex, predicate: CompiledPredicate(root: predicate), pipeline: pipeline))
        }
        guard !failed else { return nil }
        return ChoiceStep(branches: branches, otherwise: otherwise)
    }

    // MARK: Values

    private func template(_ node: ConfigNode?, scope: RouteScope) -> Template? {
        guard let node, let text = node.scalar else { return nil }
        return Template.compile(text, at: node.contentLocation, namespaces: scope.namespaces, environment: environment, log: &log)
    }

    private func headerName(_ node: ConfigNode?, allowPrefix: Bool = false) -> String? {
        guard let node, let name = node.scalar else { return nil }
        let body = allowPrefix && name.hasSuffix("*") ? String(name.dropLast()) : name
        let valid = !body.isEmpty && body.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && scalar.value > 0x20 && scalar.value < 0x7F && !"()<>@,;:\\\"/[]?={}".unicodeScalars.contains(scalar)
        }
        guard valid else {
            log.error(node.contentLocation, "'\(name)' is not a valid header name (letters, digits and -._~!#$%&'*+^`| only)")
            return nil
        }
        return name
    }

    private func xpath(_ node: ConfigNode, scope: RouteScope) -> XPathExpression? {
        guard let text = node.scalar else { return nil }
        do {
            return try XPathExpression(text, namespaces: scope.namespaces)
        } catch {
            log.error(node.contentLocation, "\(error)")
            return nil
        }
    }

    private func jsonpath(_ node: ConfigNode) -> JSONPath? {
        guard let text = node.scalar else { return nil }
        do {
            return try JSONPath(text)
        } catch let error as JSONPathError {
            log.error(node.contentLocation.advanced(by: error.offset), "invalid JSONPath '\(text)': \(error.message)")
        } catch {
            log.error(node.contentLocation, "invalid JSONPath '\(text)': \(error)")
        }
        return nil
    }

    // MARK: Predicates

    private func compilePredicate(node: ConfigNode, scope: RouteScope) -> PredicateNode? {
        guard let entries = node.mapping, !entries.isEmpty else {
            log.error(node.location, "expected a predicate such as { header: X-Region, equals: EU }, found \(node.kindDescription)")
            return nil
        }
        var failed = false
        for entry in entries where !StepSpec.predicateKeys.contains(entry.key) {
            log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "predicate key", known: StepSpec.predicateKeys))
            failed = true
        }
        let valid = entries.filter { StepSpec.predicateKeys.contains($0.key) }
        guard let predicate = compilePredicate(entries: valid, at: node.location, scope: scope), !failed else { return nil }
        return predicate
    }

    private func compilePredicate(
        entries: [(key: String, keyNode: ConfigNode, value: ConfigNode)],
        at location: SourceLocation,
        scope: RouteScope
    ) -> PredicateNode? {
        let subjects = entries.filter { StepSpec.predicateSubjects.contains($0.key) }
        let tests = entries.filter { StepSpec.predicateTests.contains($0.key) }
        let combinators = entries.filter { StepSpec.predicateCombinators.contains($0.key) }

        if let combinator = combinators.first {
            guard combinators.count == 1, subjects.isEmpty, tests.isEmpty else {
                log.error(location, "a predicate with '\(combinator.key)' has nothing else beside it; nest the other checks inside it")
                return nil
            }
            if combinator.key == "not" {
                return compilePredicate(node: combinator.value, scope: scope).map { .not($0) }
            }
            guard let items = combinator.value.sequence, !items.isEmpty else {
                log.error(combinator.value.location, "'\(combinator.key)' expects a list of predicates, found \(combinator.value.kindDescription)")
                return nil
            }
            let terms = items.map { compilePredicate(node: $0, scope: scope) }
            guard terms.allSatisfy({ $0 != nil }) else { return nil }
            let compiled = terms.compactMap { $0 }
            return combinator.key == "all" ? .all(compiled) : .any(compiled)
        }

        guard let subjectEntry = subjects.first else {
            let test = tests.first.map { "'\($0.key)' needs something to test: " } ?? "a predicate needs "
            log.error(tests.first?.keyNode.location ?? location, test + "one of 'header', 'xpath' or 'jsonpath' (or 'all', 'any', 'not')")
            return nil
        }
        guard subjects.count == 1 else {
            log.error(subjects[1].keyNode.location, "a predicate tests one subject; combine several with 'all: [ … ]' or 'any: [ … ]'")
            return nil
        }
        guard tests.count <= 1 else {
            log.error(tests[1].keyNode.location, "a predicate has one test; found \(tests.map { "'\($0.key)'" }.joined(separator: ", ")); combine with 'all: [ … ]'")
            return nil
        }
        let subject: PredicateSubject
        switch subjectEntry.key {
        case "header":
            guard let name = headerName(subjectEntry.value) else { return nil }
            subject = .header(name)
        case "xpath":
            guard let expression = xpath(subjectEntry.value, scope: scope) else { return nil }
            subject = .xpath(expression)
        default:
            guard let path = jsonpath(subjectEntry.value) else { return nil }
            subject = .jsonpath(path)
        }
        guard let testEntry = tests.first else {
            if case .header = subject { return .check(subject, .exists(true)) }
            return .check(subject, .truthy)
        }
        let value = testEntry.value
        switch testEntry.key {
        case "in":
            guard let items = value.sequence, items.allSatisfy({ $0.scalar != nil }) else {
                log.error(value.location, "'in' expects a list of values, as in [EU, UK], found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .oneOf(items.compactMap(\.scalar)))
        case "exists":
            guard let flag = parseBool(value.scalar) else {
                log.error(value.contentLocation, "'exists' expects true or false, found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .exists(flag))
        default:
            break
        }
        guard let text = value.scalar else {
            log.error(value.location, "'\(testEntry.key)' expects a single value, found \(value.kindDescription)")
            return nil
        }
        switch testEntry.key {
        case "equals":
            return .check(subject, .equals(text))
        case "not-equals":
            return .check(subject, .notEquals(text))
        case "matches":
            do {
                return .check(subject, .matches(try Pattern(text)))
            } catch {
                log.error(value.contentLocation, "invalid regular expression '\(text)': \(error)")
                return nil
            }
        default:
            guard let number = JSONNumber(loose: text), let comparison = PredicateTest.NumericComparison(rawValue: testEntry.key) else {
                log.error(value.contentLocation, "'\(testEntry.key)' expects a number, found \(value.kindDescription)")
                return nil
            }
            return .check(subject, .compare(comparison, number))
        }
    }
}

/// `true`/`false` the ways YAML writes them; nil for anything else.
func parseBool(_ text: String?) -> Bool? {
    switch text?.lowercased() {
    case "true", "yes", "on": true
    case "false", "no", "off": false
    default: nil
    }
}

/// "unknown step 'sett-header'; did you mean 'set-header'?" or the list of what is known.
public func unknownKeyMessage(_ key: String, what: String, of context: String? = nil, known: [String]) -> String {
    var message = "unknown \(what) '\(key)'"
    if let context { message += " for \(context)" }
    if let guess = closestMatch(to: key, in: known) {
        message += "; did you mean '\(guess)'?"
    } else {
        message += "; expected one of: \(known.joined(separator: ", "))"
    }
    return message
}
