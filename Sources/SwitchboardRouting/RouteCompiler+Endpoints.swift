// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardTransform

// Endpoint URIs resolved against the catalog, and the producers of `to` steps.
extension RouteCompiler {
    // MARK: Endpoints

    /// Resolves a `from`/`to` value: a URI string, or a mapping with `uri` and options.
    func resolveEndpoint(
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
            Set(type(of: $0).spec.options(for: role).filter { $0.type.holdsTemplates }.map(\.name))
        } ?? []
        // Options of an adapter's own format: the format says which parts are templates.
        let formats = EndpointURI.scheme(of: text).flatMap { catalog.adapter(for: $0) }.map { adapter -> [String: any OptionFormat] in
            var formats: [String: any OptionFormat] = [:]
            for option in type(of: adapter).spec.options(for: role) {
                if case .formatted(let format) = option.type { formats[option.name] = format }
            }
            return formats
        } ?? [:]
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
                if let format = formats[name] {
                    // Each template the format finds is compiled on its own; the rest is the format's.
                    do {
                        for (index, template) in try format.templates(in: value).enumerated() {
                            if let compiled = Template.compile(template, at: location, namespaces: namespaces, environment: environment, log: &log) {
                                resolved.endpoint.templates[OptionSpec.templateKey(name, index)] = compiled
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

    func producer(for step: StepNode, info: inout StepInfo) -> (any Producer)? {
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
}
