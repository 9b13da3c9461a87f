// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `json-to-xml`: the reverse of `xml-to-json`.
struct JSONToXMLStep: Processor {
    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let xml: [UInt8]
        do {
            let json = try exchange.message.body.withUnsafeReadableBytes { try JSONValue(bytes: $0) }
            xml = try XMLJSON.xml(from: json)
        } catch {
            throw ProcessingError("the body cannot become XML: \(error)", status: 400)
        }
        exchange.message.body = ByteBuffer(bytes: xml)
        exchange.message.contentType = "application/xml"
        return .next(exchange)
    }
}

extension JSONToXMLStep: StepKind {
    static let spec = StepSpec(
        "json-to-xml",
        summary: "Converts a JSON body in the xml-to-json convention back to XML.",
        fields: [],
        example: "- json-to-xml: {}"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        return JSONToXMLStep()
    }
}
