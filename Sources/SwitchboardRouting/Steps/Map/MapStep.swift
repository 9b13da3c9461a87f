// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `map`: builds a new JSON body from the old one, field by field.
struct MapStep: Processor {
    let targets: [MapTarget]

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let root: JSONValue
        do {
            root = try exchange.message.body.withUnsafeReadableBytes { try JSONValue(bytes: $0) }
        } catch {
            throw ProcessingError("map: the body is not JSON: \(error)", status: 400)
        }
        let result = try MapTarget.build(targets, root: root, item: nil, message: exchange.message)
        exchange.message.body = ByteBuffer(string: result.serialized())
        exchange.message.contentType = "application/json"
        return .next(exchange)
    }
}

extension MapStep: StepKind {
    static let spec = StepSpec(
        "map",
        summary: "Builds a new JSON body field by field: target paths (a.b.c) to JSONPath ($…, or @… inside each), templates, literals or functions (number, upper, lower, concat, substring, default, date, each, literal).",
        fields: [
            Field("fields", .mapping, "The targets and their expressions, inline."),
            Field("file", .string, "A YAML file of targets in the mappings folder, instead of 'fields'."),
        ],
        example: "- map: { fields: { id: \"$.invoice.@id\", total: { number: \"$.invoice.totals.@payable\" } } }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        return compiler.buildMap(fields, scope: scope, at: step.location)
    }
}
