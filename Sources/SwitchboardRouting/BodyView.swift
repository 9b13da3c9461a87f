// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// The body of one message, parsed at most once as XML and once as JSON however many
/// predicates and templates of a step look at it.
struct BodyView {
    let message: Message
    private var xml: XMLDocument?
    private var json: JSONValue?

    init(_ message: Message) {
        self.message = message
    }

    /// The body parsed as XML (safely: no external entities, no network).
    mutating func xmlDocument() throws -> XMLDocument {
        if let xml { return xml }
        let document: XMLDocument
        do {
            document = try message.body.withUnsafeReadableBytes { try XMLDocument(bytes: $0, name: "the message body") }
        } catch let error as XMLError {
            // The body is what the caller sent: its fault, not the route's.
            throw ProcessingError("\(error)", status: 400, kind: ErrorKind.validation)
        }
        xml = document
        return document
    }

    /// The body parsed as JSON.
    mutating func jsonValue() throws -> JSONValue {
        if let json { return json }
        let value: JSONValue
        do {
            value = try message.body.withUnsafeReadableBytes { try JSONValue(bytes: $0) }
        } catch let error as JSONError {
            throw ProcessingError("the message body is not valid JSON: \(error)", status: 400, kind: ErrorKind.validation)
        }
        json = value
        return value
    }
}
