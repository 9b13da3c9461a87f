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
        self.init(parsed, maximumConnections: maximumConnections, connectTimeout: connectTimeout, logger: logger)
        let client = self.client
        let clientLogger = self.logger
        let runner = self.runner
        // The pool retries connecting without end; the first use gives up after a few
        // connect timeouts (a busy server or machine may need more than one).
        let deadline = connectTimeout * 4
        let queryLogger = clientLogger
        do {
            let finished: Bool? = try await withDeadline(deadline) {
                for statement in schema {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: queryLogger)
                }
                return true
            }
            if finished == nil {
                throw ProcessingError("no connection within \(formatDuration(deadline))")
            }
        } catch let error as ProcessingError {
            runner.cancel()
            throw ProcessingError("cannot use \(what) \(parsed.redacted): \(error.message)")
        } catch {
            runner.cancel()
            throw ProcessingError("cannot use \(what) \(parsed.redacted): \(String(reflecting: error))")
        }
    }

    /// Starts a pool for `url`; connections open on first use.
    public init(_ url: PostgresURL, maximumConnections: Int = 8, connectTimeout: Duration = .seconds(5), logger: Logger) {
        displayURL = url.redacted
        var configuration = PostgresClient.Configuration(url)
        configuration.options.connectTimeout = .nanoseconds(connectTimeout.components.seconds * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000)
        configuration.options.maximumConnections = maximumConnections
        var clientLogger = logger
        clientLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, backgroundLogger: clientLogger)
        self.client = client
        self.logger = clientLogger
        runner = Task { await client.run() }
    }

    public func close() {
        runner.cancel()
    }
}

/// Runs `body`, giving up (cancelling it) after `duration`.
///
/// - Returns: The body's result, or nil when the time ran out first.
public func withDeadline<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
