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
    public init(url: String, what: String, schema: [String], maximumConnections: Int = 8, connectTimeout: Duration = .seconds(5), logger: Logger) async throws {
        let parsed = try PostgresURL(url, what: what)
        displayURL = parsed.redacted
        var configuration = PostgresClient.Configuration(parsed)
        configuration.options.connectTimeout = .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000)
        configuration.options.maximumConnections = maximumConnections
        var clientLogger = logger
        clientLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, backgroundLogger: clientLogger)
        self.client = client
        self.logger = clientLogger
        runner = Task { await client.run() }
        // The pool retries connecting without end; the first use gives up after a while.
        let deadline = connectTimeout
        let queryLogger = clientLogger
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for statement in schema {
                        try await client.query(PostgresQuery(unsafeSQL: statement), logger: queryLogger)
                    }
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: deadline)
                    return false
                }
                let finished = try await group.next() ?? false
                group.cancelAll()
                if !finished {
                    throw ProcessingError("no connection within \(formatDuration(deadline))")
                }
            }
        } catch let error as ProcessingError {
            runner.cancel()
            throw ProcessingError("cannot use \(what) \(parsed.redacted): \(error.message)")
        } catch {
            runner.cancel()
            throw ProcessingError("cannot use \(what) \(parsed.redacted): \(String(reflecting: error))")
        }
    }

    public func close() {
        runner.cancel()
    }
}
