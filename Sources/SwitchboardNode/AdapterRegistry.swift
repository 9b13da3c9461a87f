// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import SwitchboardCore
import SwitchboardFile
import SwitchboardHTTP
import SwitchboardFTP
import SwitchboardDatabase
import SwitchboardRegistry
import Metrics
import SwitchboardSFTP

/// The adapter catalog: the one place that names concrete adapters. A new adapter is a
/// folder under `Adapters/` plus one line here.
public enum AdapterRegistry {
    /// The specs of every adapter, for `switchboard adapters` and docs.
    public static let specs: [EndpointSpec] = [
        HTTPAdapter.spec,
        FileAdapter.spec,
        SFTPAdapter.spec,
        FTPAdapter.spec,
        DatabaseAdapter.spec,
        ServiceAdapter.spec,
    ]

    /// Names of options marked secret in any adapter, plus `password`: headers with these
    /// names are masked in the audit trail.
    public static var secretOptionNames: [String] {
        var names = ["password"]
        for spec in specs {
            for option in spec.options where option.secret && !names.contains(option.name) {
                names.append(option.name)
            }
        }
        return names
    }

    /// Builds the adapters a node runs with, configured from the node config.
    public static func makeCatalog(_ configuration: NodeConfiguration, metrics: (any MetricsFactory)? = nil, logger: Logger) -> AdapterCatalog {
        var settings = HTTPAdapter.Configuration(
            host: configuration.httpListen.host,
            port: configuration.httpListen.port,
            maxBodySize: configuration.maxBodySize,
            maxConnectionsPerHost: configuration.maxConnectionsPerHost,
            connectTimeout: configuration.connectTimeout
        )
        let limits = configuration.httpLimits
        if let idleTimeout = limits.idleTimeout { settings.idleTimeout = idleTimeout }
        settings.maxConnections = limits.maxConnections
        if let headerTimeout = limits.headerTimeout { settings.headerTimeout = headerTimeout }
        if let bodyTimeout = limits.bodyTimeout { settings.bodyTimeout = bodyTimeout }
        if let maxHeaderCount = limits.maxHeaderCount { settings.maxHeaderCount = maxHeaderCount }
        if let maxHeaderSize = limits.maxHeaderSize { settings.maxHeaderSize = maxHeaderSize }
        if let maxBufferedBodies = limits.maxBufferedBodies { settings.maxBufferedBodies = maxBufferedBodies }
        if let bodyFileThreshold = limits.bodyFileThreshold { settings.bodyFileThreshold = bodyFileThreshold }
        settings.bodyFileDirectory = configuration.temporaryDirectory
        settings.tls = configuration.httpTLS
        let http = HTTPAdapter(configuration: settings, metrics: metrics, logger: logger)
        let httpOnly = AdapterCatalog([http])
        let registry = ServiceRegistry(metrics: metrics, logger: logger)
        return AdapterCatalog([
            http,
            ServiceAdapter(registry: registry) { url in
                let resolved = try httpOnly.resolve(url, role: .producer)
                return try resolved.adapter.makeProducer(resolved.endpoint)
            },
            FileAdapter(dataDirectory: configuration.dataDirectory, logger: logger),
            SFTPAdapter(dataDirectory: configuration.dataDirectory, logger: logger),
            FTPAdapter(dataDirectory: configuration.dataDirectory, logger: logger),
            DatabaseAdapter(datasources: configuration.datasources, logger: logger),
        ])
    }
}
