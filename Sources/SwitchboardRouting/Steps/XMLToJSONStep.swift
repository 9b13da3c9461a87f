// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `xml-to-json`: the body as JSON in the convention of ``XMLJSON``.
struct XMLToJSONStep: Processor {
    let arrays: Set<String>

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let json: JSONValue
        do {
            json = try exchange.message.body.withUnsafeReadableBytes { bytes in
                XMLJSON.json(from: try XMLDocument(bytes: bytes, name: "the body"), arrays: arrays)
            }
        } catch {
            throw ProcessingError("\(error)", status: 400)
        }
        exchange.message.body = ByteBuffer(string: json.serialized())
        exchange.message.contentType = "application/json"
        return .next(exchange)
    }
}

extension XMLToJSONStep: StepKind {
    static let spec = StepSpec(
        "xml-to-json",
        summary: "Converts an XML body to JSON: attributes as @name, child elements by qualified name, repeats as arrays, mixed text as #text (see docs/guide/transformations.md).",
        fields: [
            Field("arrays", .stringList, "Element paths from the root (Invoice/cac:InvoiceLine) that are always arrays."),
        ],
        example: "- xml-to-json: { arrays: [\"Invoice/cac:InvoiceLine\"] }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        let arrays = Set(fields["arrays"]?.sequence?.compactMap(\.scalar) ?? [])
        return XMLToJSONStep(arrays: arrays)
    }
}
