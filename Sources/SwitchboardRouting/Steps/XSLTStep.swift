// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `xslt`: replaces an XML body with the stylesheet's result. Parameters are templates
/// rendered per message and passed as strings. `xsl:message`s that do not stop the transform
/// go to the log at warning level.
struct XSLTStep: Processor {
    let stylesheet: XSLTStylesheet
    let file: String
    let parameters: [(String, Template)]
    var logger = Logger(label: "switchboard.xslt")

    /// The step with its messages going to `logger` (which names the route and step).
    func logging(to logger: Logger) -> XSLTStep {
        var step = self
        step.logger = logger
        return step
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let values = try parameters.map { ($0.0, try $0.1.render(exchange.message)) }
        let output: [UInt8]
        do {
            output = try exchange.message.body.withUnsafeReadableBytes { bytes in
                try stylesheet.transform(bytes, name: "the body", parameters: values) { text in
                    logger.warning("xsl:message: \(text)", metadata: [
                        "stylesheet": "\(file)", "message-id": "\(exchange.message.id)",
                    ])
                }
            }
        } catch let error as XMLError {
            throw ProcessingError("\(error)", status: 400)
        } catch let error as XSLTError {
            throw ProcessingError("\(error)", status: 422)
        }
        exchange.message.body = ByteBuffer(bytes: output)
        exchange.message.contentType = stylesheet.mediaType
        return .next(exchange, detail: "\(file) → \(stylesheet.mediaType)")
    }
}

/// `validate: { xsd: FILE }` or `validate: { json-schema: FILE }`: lets a body through only
/// if it validates; otherwise the step fails with status 400 and the first problems (XSD:
/// with their lines; JSON Schema: with their instance paths and keywords).
struct ValidateStep: Processor {
    let file: String
    /// The body's problems (none: valid); throws when the body does not parse.
    let problems: @Sendable (ByteBuffer) throws -> [String]

    static func xsd(_ schema: XSDSchema, file: String) -> ValidateStep {
        ValidateStep(file: file) { body in
            do {
                return try body.withUnsafeReadableBytes { try schema.validate($0, name: "the body") }.map(\.description)
            } catch let error as XMLError {
                throw ProcessingError("\(error)", status: 400)
            }
        }
    }

    static func jsonSchema(_ schema: JSONSchema, file: String) -> ValidateStep {
        ValidateStep(file: file) { body in
            do {
                return try body.withUnsafeReadableBytes { try schema.validate($0) }.map(\.description)
            } catch let error as JSONError {
                throw ProcessingError("the body is not JSON: \(error)", status: 400)
            }
        }
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        let found = try problems(exchange.message.body)
        guard found.isEmpty else {
            let count = found.count
            throw ProcessingError(
                "the body is not valid against \(file) (\(count) problem\(count == 1 ? "" : "s")): \(summarizeProblems(found))",
                status: 400
            )
        }
        return .next(exchange, detail: "valid against \(file)")
    }
}

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
