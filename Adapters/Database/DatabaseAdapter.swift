// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `sql:NAME`: statements and polling queries on the node's named datasources (SQLite
/// embedded, PostgreSQL through PostgresNIO), with parameters always bound, never spliced.
public final class DatabaseAdapter: Adapter {
    public static let spec = EndpointSpec(
        schemes: ["sql"],
        summary: "SQL on a named datasource (node config 'datasources'): statements with bound parameters, polling queries.",
        consumerSyntax: "sql:NAME?query=SELECT …&onConsume=UPDATE … WHERE id = :id&delay=5s&maxRows=500",
        producerSyntax: "sql:NAME?statement=INSERT … VALUES (:id, :${json:$.amount})",
        options: [
            OptionSpec("statement", .formatted(SQLStatement.format), roles: [.producer],
                       doc: "The statement. :name binds the JSON body's field (else the header) of that name; :${…} binds a template's value. A JSON array body runs it once per element in one transaction."),
            OptionSpec("resultField", .string, roles: [.producer],
                       doc: "For queries: put the rows into this field of the JSON body (enrichment) instead of replacing the body with them."),
            OptionSpec("query", .formatted(SQLStatement.format), roles: [.consumer],
                       doc: "The polling query; on PostgreSQL it runs with FOR UPDATE SKIP LOCKED (unless it says FOR UPDATE itself), so two nodes never take the same row."),
            OptionSpec("onConsume", .formatted(SQLStatement.format), roles: [.consumer],
                       doc: "Runs for each row after its route succeeded, in the poll's transaction; :name binds the row's column of that name."),
            OptionSpec("onConsumeFailed", .formatted(SQLStatement.format), roles: [.consumer],
                       doc: "Runs for each row whose route failed (without it the row stays and is polled again)."),
            OptionSpec("delay", .duration, default: "5s", roles: [.consumer], doc: "Time between polls."),
            OptionSpec("maxRows", .int, default: "500", roles: [.consumer], doc: "Most rows one poll takes (added as LIMIT unless the query has one)."),
            OptionSpec("batch", .bool, default: "false", roles: [.consumer],
                       doc: "One message per poll, its body a JSON array of the rows, instead of one per row; onConsume then runs for every row once the batch's route succeeded."),
        ]
    )

    let datasources: [String: any SQLDatasource]
    /// Datasources whose URL is wrong, with why; routes using them fail to load.
    let unusable: [String: String]
    let logger: Logger

    /// Prepares every datasource. Nothing connects or opens a file until first use
    /// (SQLite files are created then).
    public init(datasources: [DatasourceSpec], logger: Logger) {
        var opened: [String: any SQLDatasource] = [:]
        var unusable: [String: String] = [:]
        for spec in datasources {
            do {
                opened[spec.name] = try openDatasource(spec, logger: logger)
            } catch {
                unusable[spec.name] = "\(error)"
            }
        }
        self.datasources = opened
        self.unusable = unusable
        self.logger = logger
    }

    private func datasource(_ endpoint: Endpoint) throws -> any SQLDatasource {
        let name = endpoint.path
        if let problem = unusable[name] { throw EndpointError(problem) }
        guard let datasource = datasources[name] else {
            let known = datasources.keys.sorted()
            throw EndpointError(known.isEmpty
                ? "no datasource '\(name)': the node config has no 'datasources'"
                : "no datasource '\(name)'; the node config has \(known.map { "'\($0)'" }.joined(separator: ", "))")
        }
        return datasource
    }

    /// A statement option, compiled: its SQL for the datasource and its template parameters.
    static func compiled(_ option: String, of endpoint: Endpoint, for datasource: any SQLDatasource) throws -> CompiledSQL? {
        guard let text = endpoint.options.string(option) else { return nil }
        let statement = try SQLStatement(text)
        var templates: [any MessageTemplate] = []
        for index in statement.templateTexts.indices {
            guard let template = endpoint.templates[OptionSpec.templateKey(option, index)] else {
                throw EndpointError("'\(option)': the parameter \(statement.templateTexts[index]) was not compiled")
            }
            templates.append(template)
        }
        return CompiledSQL(statement: statement, sql: statement.text(placeholder: datasource.placeholder), templates: templates)
    }

    /// A statement run for a polled row: its parameters are the row's columns (`:name`);
    /// a `:${…}` template has no message to read and is refused at load.
    static func rowStatement(_ option: String, of endpoint: Endpoint, for datasource: any SQLDatasource) throws -> CompiledSQL? {
        guard let compiled = try compiled(option, of: endpoint, for: datasource) else { return nil }
        if let template = compiled.statement.templateTexts.first {
            throw EndpointError("'\(option)' runs for a polled row, so its parameters are the row's columns (:id); \(template) has no message to read")
        }
        return compiled
    }

    public func makeProducer(_ endpoint: Endpoint) throws -> any Producer {
        let datasource = try datasource(endpoint)
        guard let statement = try Self.compiled("statement", of: endpoint, for: datasource) else {
            throw EndpointError("'to: sql:\(endpoint.path)' needs a statement, as in sql:\(endpoint.path)?statement=INSERT INTO t (id) VALUES (:id)")
        }
        return SQLProducer(datasource: datasource, statement: statement, resultField: endpoint.options.string("resultField"))
    }

    public func makeConsumer(_ endpoint: Endpoint) throws -> any Consumer {
        let datasource = try datasource(endpoint)
        guard var query = try Self.compiled("query", of: endpoint, for: datasource) else {
            throw EndpointError("'from: sql:\(endpoint.path)' needs a query, as in sql:\(endpoint.path)?query=SELECT * FROM orders WHERE processed = false")
        }
        guard query.statement.parameters.isEmpty else {
            throw EndpointError("'query' takes no parameters; it runs on its own, not for a message")
        }
        let maxRows = endpoint.options.int("maxRows") ?? 500
        let lowered = query.sql.lowercased()
        if !lowered.contains(" limit ") { query.sql += " LIMIT \(maxRows)" }
        if datasource is PostgresDatasource, !lowered.contains("for update") { query.sql += " FOR UPDATE SKIP LOCKED" }
        return SQLConsumer(
            datasource: datasource,
            query: query.sql,
            onConsume: try Self.rowStatement("onConsume", of: endpoint, for: datasource),
            onConsumeFailed: try Self.rowStatement("onConsumeFailed", of: endpoint, for: datasource),
            delay: endpoint.options.duration("delay") ?? .seconds(5),
            batch: endpoint.options.bool("batch") ?? false,
            logger: logger
        )
    }

    public func shutdown() async {
        for datasource in datasources.values { await datasource.close() }
    }
}

/// A statement ready to run: the SQL with placeholders, and how to fill them.
struct CompiledSQL: Sendable {
    let statement: SQLStatement
    var sql: String
    let templates: [any MessageTemplate]
    /// Whether some parameter is a `:name` (a field of a JSON body or row).
    let usesNames: Bool

    init(statement: SQLStatement, sql: String, templates: [any MessageTemplate]) {
        self.statement = statement
        self.sql = sql
        self.templates = templates
        usesNames = statement.parameters.contains { if case .name = $0 { true } else { false } }
    }

    /// The values for one run: `:name` from `record` (a JSON object), else from the
    /// message's headers; `:${…}` from its template.
    ///
    /// - Throws: ``ProcessingError`` (400) naming a parameter that has no value.
    func values(record: JSONValue?, message: Message?) throws -> [SQLValue] {
        try statement.parameters.map { parameter -> SQLValue in
            switch parameter {
            case .name(let name):
                if let value = record?[name] { return Self.value(value) }
                if let header = message?.headers[name] { return .text(header) }
                throw ProcessingError(
                    "the SQL parameter :\(name) has no value: no field '\(name)' in the \(message == nil ? "row" : "body") and no header '\(name)'",
                    status: 400, kind: ErrorKind.validation
                )
            case .template(_, let index):
                guard let message else {
                    throw ProcessingError("the SQL parameter \(statement.templateTexts[index]) has no message to read", status: 500)
                }
                return .text(try templates[index].render(message))
            }
        }
    }

    static func value(_ value: JSONValue) -> SQLValue {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .number(let number): .number(number.text)
        case .string(let text): .text(text)
        case .array, .object: .text(value.serialized())
        }
    }
}
