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
        return try await datasource.poll(query) { row, runner in
            var headers = Headers()
            headers["Content-Type"] = "application/json"
            headers["sql.datasource"] = name
            let message = Message(headers: headers, body: ByteBuffer(string: row.serialized()))
            do {
                _ = try await deliver(Exchange(message: message, pattern: .inOnly))
            } catch {
                if Task.isCancelled { throw CancellationError() }
                if let onConsumeFailed {
                    _ = try await runner.run(onConsumeFailed.sql, try onConsumeFailed.values(record: row, message: nil))
                } else {
                    logger.warning("a row's route failed; the row stays and is polled again", metadata: ["datasource": "\(name)", "error": "\(error)"])
                }
                return
            }
            if let onConsume {
                _ = try await runner.run(onConsume.sql, try onConsume.values(record: row, message: nil))
            }
        }
    }
}
