// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

extension ServiceDefinition {
    static let keys = ["instances", "balance", "health", "failover", "breaker"]

    /// Reads `services: { NAME: { instances: [...], balance, health, failover, breaker } }`.
    ///
    /// - Returns: The services; problems go to `log` with their place.
    public static func parseAll(_ node: ConfigNode, log: inout DiagnosticLog) -> [ServiceDefinition] {
        guard let entries = node.mapping else {
            log.error(node.location, "'services' maps service names to { instances: [...], balance: round-robin }, found \(node.kindDescription)")
            return []
        }
        return entries.compactMap { parse(name: $0.key, $0.value, log: &log) }
    }

    static func parse(name: String, _ node: ConfigNode, log: inout DiagnosticLog) -> ServiceDefinition? {
        guard let entries = node.mapping else {
            log.error(node.location, "service '\(name)' expects a mapping such as { instances: [\"http://127.0.0.1:9001\"] }, found \(node.kindDescription)")
            return nil
        }
        let before = log.diagnostics.count
        var service = ServiceDefinition(name: name)
        service.location = node.location
        func scalar(_ value: ConfigNode, _ key: String) -> String? {
            guard let text = value.scalar, !value.isNull else {
                log.error(value.location, "'\(key)' expects a single value, found \(value.kindDescription)")
                return nil
            }
            return text
        }
        func count(_ value: ConfigNode, _ key: String, minimum: Int) -> Int? {
            guard let text = scalar(value, key) else { return nil }
            guard let number = Int(text), number >= minimum else {
                log.error(value.contentLocation, "'\(key)' expects a whole number of at least \(minimum), found '\(text)'")
                return nil
            }
            return number
        }
        func duration(_ value: ConfigNode, _ key: String) -> Duration? {
            guard let text = scalar(value, key) else { return nil }
            guard let duration = parseDuration(text), duration > .zero else {
                log.error(value.contentLocation, "'\(key)' expects a duration such as 5s, found '\(text)'")
                return nil
            }
            return duration
        }
        for entry in entries {
            let key = "services.\(name).\(entry.key)"
            switch entry.key {
            case "instances":
                guard let items = entry.value.sequence else {
                    log.error(entry.value.location, "'\(key)' expects a list of URLs or { url, id, version, zone, weight }, found \(entry.value.kindDescription)")
                    continue
                }
                for (position, item) in items.enumerated() {
                    if let instance = parseInstance(item, position: position, key: key, log: &log) {
                        if service.instances.contains(where: { $0.id == instance.id }) {
                            log.error(item.location, "service '\(name)' has two instances with id '\(instance.id)'")
                        } else {
                            service.instances.append(instance)
                        }
                    }
                }
            case "balance":
                guard let text = scalar(entry.value, key) else { continue }
                if let balance = Balance(rawValue: text) {
                    service.balance = balance
                } else {
                    log.error(entry.value.contentLocation, "'\(key)' expects one of \(Balance.allCases.map(\.rawValue).joined(separator: ", ")), found '\(text)'")
                }
            case "failover":
                if let number = count(entry.value, key, minimum: 0) { service.failover = number }
            case "health":
                guard let pairs = entry.value.mapping else {
                    log.error(entry.value.location, "'\(key)' expects { path, every, timeout, healthy, unhealthy }, found \(entry.value.kindDescription)")
                    continue
                }
                var health = HealthCheck()
                for pair in pairs {
                    let subkey = "\(key).\(pair.key)"
                    switch pair.key {
                    case "path":
                        if let text = scalar(pair.value, subkey) { health.path = text.hasPrefix("/") ? text : "/" + text }
                    case "every": if let value = duration(pair.value, subkey) { health.every = value }
                    case "timeout": if let value = duration(pair.value, subkey) { health.timeout = value }
                    case "healthy": if let value = count(pair.value, subkey, minimum: 1) { health.healthy = value }
                    case "unhealthy": if let value = count(pair.value, subkey, minimum: 1) { health.unhealthy = value }
                    default:
                        log.error(pair.keyNode.location, unknownKeyMessage(pair.key, what: "health key", known: ["path", "every", "timeout", "healthy", "unhealthy"]))
                    }
                }
                service.health = health
            case "breaker":
                guard let pairs = entry.value.mapping else {
                    log.error(entry.value.location, "'\(key)' expects { failures, ratio, window, open, trials }, found \(entry.value.kindDescription)")
                    continue
                }
                for pair in pairs {
                    let subkey = "\(key).\(pair.key)"
                    switch pair.key {
                    case "failures": if let value = count(pair.value, subkey, minimum: 1) { service.breaker.failures = value }
                    case "ratio":
                        guard let text = scalar(pair.value, subkey) else { continue }
                        if let rate = SLAPolicy.parseRate(text), rate > 0, rate <= 1 {
                            service.breaker.ratio = rate
                        } else {
                            log.error(pair.value.contentLocation, "'\(subkey)' expects a share of failed calls such as 50% or 0.5, found '\(text)'")
                        }
                    case "minimum-calls": if let value = count(pair.value, subkey, minimum: 1) { service.breaker.minimumCalls = value }
                    case "window": if let value = duration(pair.value, subkey) { service.breaker.window = value }
                    case "open": if let value = duration(pair.value, subkey) { service.breaker.open = value }
                    case "trials": if let value = count(pair.value, subkey, minimum: 1) { service.breaker.trials = value }
                    default:
                        log.error(pair.keyNode.location, unknownKeyMessage(pair.key, what: "breaker key", known: ["failures", "ratio", "minimum-calls", "window", "open", "trials"]))
                    }
                }
            default:
                log.error(entry.keyNode.location, unknownKeyMessage(entry.key, what: "service key", known: keys))
            }
        }
        return log.diagnostics.count == before ? service : nil
    }

    private static func parseInstance(_ node: ConfigNode, position: Int, key: String, log: inout DiagnosticLog) -> Instance? {
        func checked(_ url: String, at location: SourceLocation) -> String? {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                log.error(location, "'\(key)' expects http:// or https:// URLs, found '\(url)'")
                return nil
            }
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let text = node.scalar, !node.isNull {
            guard let url = checked(text, at: node.contentLocation) else { return nil }
            return Instance(id: String(position), url: url)
        }
        guard let pairs = node.mapping else {
            log.error(node.location, "'\(key)' items are URLs or { url, id, version, zone, weight }, found \(node.kindDescription)")
            return nil
        }
        var instance = Instance(id: String(position), url: "")
        for pair in pairs {
            guard let text = pair.value.scalar, !pair.value.isNull else {
                log.error(pair.value.location, "'\(key).\(pair.key)' expects a single value")
                continue
            }
            switch pair.key {
            case "url": instance.url = checked(text, at: pair.value.contentLocation) ?? ""
            case "id": instance.id = text
            case "version": instance.version = text
            case "zone": instance.zone = text
            case "weight":
                if let weight = Int(text), (1...ServiceDefinition.maximumWeight).contains(weight) { instance.weight = weight } else {
                    log.error(pair.value.contentLocation, "'\(key).weight' expects a whole number from 1 to \(ServiceDefinition.maximumWeight), found '\(text)'")
                }
            default:
                log.error(pair.keyNode.location, unknownKeyMessage(pair.key, what: "instance key", known: ["url", "id", "version", "zone", "weight"]))
            }
        }
        guard !instance.url.isEmpty else {
            log.error(node.location, "an instance of '\(key)' needs a url")
            return nil
        }
        return instance
    }
}
