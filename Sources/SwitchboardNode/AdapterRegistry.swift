import Logging
import SwitchboardCore
import SwitchboardHTTP

/// The adapter catalog: the one place that names concrete adapters. A new adapter is a
/// folder under `Adapters/` plus one line here.
public enum AdapterRegistry {
    /// The specs of every adapter, for `switchboard adapters` and docs.
    public static let specs: [EndpointSpec] = [
        HTTPAdapter.spec,
    ]

    /// Builds the adapters a node runs with, configured from the node config.
    public static func makeCatalog(_ configuration: NodeConfiguration, logger: Logger) -> AdapterCatalog {
        AdapterCatalog([
            HTTPAdapter(configuration: .init(
                host: configuration.httpListen.host,
                port: configuration.httpListen.port,
                maxBodySize: configuration.maxBodySize,
                maxConnectionsPerHost: configuration.maxConnectionsPerHost,
                connectTimeout: configuration.connectTimeout
            ), logger: logger),
        ])
    }
}
