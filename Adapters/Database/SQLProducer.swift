// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `to: sql:NAME?statement=…`: runs the statement with the message's values bound.
///
/// A JSON array body whose statement has `:name` parameters runs once per element, in one
/// transaction. The reply: a query's rows as a JSON array (or merged into the body at
/// `resultField`), else `{"affectedRows": N}`; header `sql.rows` or `sql.affectedRows`.
struct SQLProducer: Producer {
    let datasource: any SQLDatasource
    let statement: CompiledSQL
    let resultField: String?

    func send(_ exchange: Exchange) async throws -> Exchange {
        let message = exchange.message
        var body: JSONValue?
        if statement.usesNames || resultField != nil, message.body.readableBytes > 0 {
            body = try? JSONValue(parsing: message.bodyString)
            if body == nil, resultField != nil {
                throw ProcessingError("resultField '\(resultField ?? "")' needs a JSON object body", status: 400, kind: ErrorKind.validation)
            }
        }
        let bindings: [[SQLValue]]
        if statement.usesNames, case .array(let items) = body {
            // Each element is a record of its own: its fields for :name, and the body that
            // templates such as :${json:$.amount} read.
            bindings = try items.map { item in
                var element = message
                element.body = ByteBuffer(string: item.serialized())
                return try statement.values(record: item, message: element)
            }
        } else {
            bindings = [try statement.values(record: body, message: message)]
        }
        let result = try await datasource.execute(statement.sql, bindings: bindings)
        var reply = exchange
        if result.returnsRows {
            let rows = JSONValue.array(result.rows)
            if let resultField {
                guard case .object(var members) = body else {
                    throw ProcessingError("resultField '\(resultField)' needs a JSON object body", status: 400, kind: ErrorKind.validation)
                }
                members.removeAll { $0.key == resultField }
                members.append((resultField, rows))
                reply.message.body = ByteBuffer(string: JSONValue.object(members).serialized())
            } else {
                reply.message.body = ByteBuffer(string: rows.serialized())
            }
            reply.message.headers["sql.rows"] = String(result.rows.count)
        } else {
            reply.message.body = ByteBuffer(string: "{\"affectedRows\":\(result.affectedRows)}")
            reply.message.headers["sql.affectedRows"] = String(result.affectedRows)
        }
        reply.message.contentType = "application/json"
        return reply
    }

    func describeReply(_ reply: Exchange) -> String? {
        if let rows = reply.message.headers["sql.rows"] { return "\(rows) rows" }
        return reply.message.headers["sql.affectedRows"].map { "\($0) rows affected" }
    }
}
