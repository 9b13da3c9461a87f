// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardRouting

extension DeadLetter {
    /// The dead letter as one JSON object, for the admin API and `switchboard dead-letters`.
    ///
    /// Header values named in `mask` (case-insensitive) show as `***`. With `body`, the
    /// body is included as text when it is UTF-8, else base64 (`bodyEncoding`).
    public func json(mask: [String], body includeBody: Bool = false) -> String {
        let masked = Set(mask.map { $0.lowercased() })
        let headers = message.headers.map { field in
            "[\(jsonQuoted(field.name)),\(jsonQuoted(masked.contains(field.name.lowercased()) ? "***" : field.value))]"
        }
        var json = "{\"id\":\(jsonQuoted(id.description)),\"route\":\(jsonQuoted(routeID)),\"step\":\(jsonQuoted(step))"
        json += ",\"error\":\(jsonQuoted(error)),\"attempts\":\(attempts),\"replays\":\(replays)"
        json += ",\"firstFailedAt\":\(jsonQuoted(Self.iso(firstFailedAt))),\"lastFailedAt\":\(jsonQuoted(Self.iso(lastFailedAt)))"
        json += ",\"correlationId\":\(jsonQuoted(message.correlationID)),\"bodySize\":\(message.body.readableBytes)"
        json += ",\"headers\":[\(headers.joined(separator: ","))]"
        if includeBody {
            let bytes = Array(message.body.readableBytesView)
            if let text = String(validating: bytes, as: UTF8.self) {
                json += ",\"body\":\(jsonQuoted(text)),\"bodyEncoding\":\"utf-8\""
            } else {
                json += ",\"body\":\(jsonQuoted(Data(bytes).base64EncodedString())),\"bodyEncoding\":\"base64\""
            }
        }
        return json + "}"
    }

    static func iso(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
