// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// How `multicast` and `split` combine the results of their branches or children into the
/// message the route goes on with.
enum Aggregation: String, Sendable, CaseIterable {
    /// The message as it was before the step (the default for `split`).
    case original
    /// The last result's body and headers.
    case last
    /// A JSON array with one element per result: the result's JSON, or its text as a string
    /// (the default for `multicast`).
    case jsonArray = "json-array"
    /// `<results><result>…</result>…</results>`, each holding the result's root element, or
    /// its text escaped.
    case xml
    /// The result bodies one after another, separated by line breaks.
    case concat

    func combine(original: Exchange, results: [Exchange]) -> Exchange {
        var combined = original
        switch self {
        case .original:
            break
        case .last:
            if let last = results.last {
                combined.message.headers = last.message.headers
                combined.message.body = last.message.body
            }
        case .jsonArray:
            var output = "["
            for (index, result) in results.enumerated() {
                if index > 0 { output += "," }
                let value = (try? result.message.body.withUnsafeReadableBytes { try JSONValue(bytes: $0) })
                    ?? .string(result.message.bodyString)
                value.write(to: &output)
            }
            output += "]"
            combined.message.body = ByteBuffer(string: output)
            combined.message.contentType = "application/json"
        case .xml:
            var output = "<results>"
            for result in results {
                output += "<result>"
                if let document = try? result.message.body.withUnsafeReadableBytes({ try XMLDocument(bytes: $0) }) {
                    output += document.serializedRootElement()
                } else {
                    output += escapeXML(result.message.bodyString)
                }
                output += "</result>"
            }
            output += "</results>"
            combined.message.body = ByteBuffer(string: output)
            combined.message.contentType = "application/xml"
        case .concat:
            var body = ByteBuffer()
            for (index, result) in results.enumerated() {
                if index > 0 { body.writeString("\n") }
                var part = result.message.body
                body.writeBuffer(&part)
            }
            combined.message.body = body
        }
        return combined
    }
}

func escapeXML(_ text: String) -> String {
    var output = ""
    output.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "<": output += "&lt;"
        case ">": output += "&gt;"
        case "&": output += "&amp;"
        case "\"": output += "&quot;"
        default: output.append(character)
        }
    }
    return output
}
