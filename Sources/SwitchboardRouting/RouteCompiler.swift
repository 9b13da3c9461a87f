// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform

/// Turns route files into compiled routes, collecting every problem with its location.
///
/// Everything a message will need is built here, once: endpoints and their producers,
/// predicates, templates, XPath and JSONPath expressions, regular expressions.
final class RouteCompiler {
    var log = DiagnosticLog()
    var catalog: AdapterCatalog
    let observers: ObserverSet
    let logger: Logger
    let environment: [String: String]
    let directory = RouteDirectory()
    let background = BackgroundWork()

    var routeIDs: [String: SourceLocation] = [:]
    var bindings: [String: (routeID: String, location: SourceLocation)] = [:]
    var routeCalls: [(target: String, location: SourceLocation)] = []
    var directCalls: [(name: String, location: SourceLocation)] = []
    var compiled: [CompiledRoute] = []
    var services: [ServiceDefinition] = []

    let mappingsDirectory: String
    /// Stylesheets compiled so far, by absolute path and allowed folder: each once per load.
    var stylesheets: [String: XSLTStylesheet] = [:]
    /// Schemas compiled so far, by absolute path.
    var schemas: [String: XSDSchema] = [:]
    var jsonSchemas: [String: JSONSchema] = [:]
    var layouts: [String: FixedWidthLayout] = [:]

    let state: NodeState
    let defaultErrorPolicy: ErrorPolicy?

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
    final class RouteScope {
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

    func compileRoute(_ node: ConfigNode) -> CompiledRoute? {
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
    func compileDeadLetter(_ target: ErrorPolicy.DeadLetter, routeID: String, at location: SourceLocation) -> DeadLetterTarget? {
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

    func isValidRouteID(_ id: String) -> Bool {
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
