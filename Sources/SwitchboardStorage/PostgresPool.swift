import Logging
import PostgresNIO
import SwitchboardCore

/// A running PostgreSQL client pool for one URL, with its schema created.
public struct PostgresPool: Sendable {
    public let client: PostgresClient
    /// The pool's run loop; cancelled by ``close()``.
    public let runner: Task<Void, Never>
    /// The client's logger: warnings and worse only.
    public let logger: Logger
    /// The URL with its password replaced by `***`.
    public let displayURL: String

    /// Connects and runs `schema` (statements that create what is missing).
    ///
    /// - Parameter what: The setting, for errors (`audit.store`).
    /// - Throws: ``ProcessingError`` naming the URL with its password hidden.
    public init(url: String, what: String, schema: [String], maximumConnections: Int = 8, logger: Logger) async throws {
        let parsed = try PostgresURL(url, what: what)
        displayURL = parsed.redacted
        var configuration = PostgresClient.Configuration(parsed)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = maximumConnections
        var clientLogger = logger
        clientLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, backgroundLogger: clientLogger)
        self.client = client
        self.logger = clientLogger
        runner = Task { await client.run() }
        do {
            for statement in schema {
                try await client.query(PostgresQuery(unsafeSQL: statement), logger: clientLogger)
            }
        } catch {
            runner.cancel()
            throw ProcessingError("cannot use \(what) \(parsed.redacted): \(String(reflecting: error))")
        }
    }

    public func close() {
        runner.cancel()
    }
}
