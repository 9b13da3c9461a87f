// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

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
            let finished: Bool? = try await firstWithin(deadline) {
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
    /// - Parameter startupParameters: Session settings every connection starts with, such
    ///   as `statement_timeout`.
    public init(
        _ url: PostgresURL, maximumConnections: Int = 8, connectTimeout: Duration = .seconds(5),
        startupParameters: [(String, String)] = [], logger: Logger
    ) {
        displayURL = url.redacted
        var configuration = PostgresClient.Configuration(url)
        configuration.options.connectTimeout = .nanoseconds(connectTimeout.nanoseconds)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = startupParameters
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
