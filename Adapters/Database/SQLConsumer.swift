// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `from: sql:NAME?query=…&onConsume=…`: polls; each row becomes a message (a JSON object
/// of its columns, header `sql.datasource`), and `onConsume` runs for it, in the poll's
/// transaction, only after its route succeeded.
///
/// On PostgreSQL the query takes its rows `FOR UPDATE SKIP LOCKED`: another node polling
/// the same table skips them until this poll commits. A crash before the commit leaves
/// the rows unmarked: they are taken again (at least once).
struct SQLConsumer: Consumer {
    let datasource: any SQLDatasource
    let query: String
    let onConsume: CompiledSQL?
    let onConsumeFailed: CompiledSQL?
    let delay: Duration
    /// One message per poll (a JSON array of the rows) instead of one per row.
    var batch = false
    let logger: Logger

    func run(_ deliver: @escaping Delivery) async throws {
        while !Task.isCancelled {
            do {
                let taken = try await poll(deliver)
                if taken > 0 { continue }
            } catch is CancellationError {
                return
            } catch {
                logger.error("polling the datasource failed", metadata: ["datasource": "\(datasource.spec.name)", "error": "\(error)"])
            }
            try? await Task.sleep(for: delay)
        }
    }

    /// One poll; returns the rows taken.
    func poll(_ deliver: @escaping Delivery) async throws -> Int {
        let name = datasource.spec.name
        let onConsume = self.onConsume
        let onConsumeFailed = self.onConsumeFailed
        let logger = self.logger
        let batch = self.batch
        return try await datasource.poll(query) { rows, runner in
            // Each group is one message: every row, or all of them in batch mode.
            let groups: [[JSONValue]] = batch ? [rows] : rows.map { [$0] }
            for group in groups {
                var headers = Headers()
                headers["Content-Type"] = "application/json"
                headers["sql.datasource"] = name
                headers["sql.rows"] = String(group.count)
                let body = batch ? JSONValue.array(group) : group[0]
                let message = Message(headers: headers, body: ByteBuffer(string: body.serialized()))
                var follow = onConsume
                do {
                    _ = try await deliver(Exchange(message: message, pattern: .inOnly))
                } catch {
                    if Task.isCancelled { throw CancellationError() }
                    follow = onConsumeFailed
                    if follow == nil {
                        logger.warning("a polled message's route failed; its rows stay and are polled again", metadata: ["datasource": "\(name)", "error": "\(error)"])
                    }
                }
                guard let follow else { continue }
                for row in group {
                    _ = try await runner.run(follow.sql, try follow.values(record: row, message: nil))
                }
            }
        }
    }
}
