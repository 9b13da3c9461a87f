// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardCore
import SwitchboardDigest

// The JSON form of traces: what the admin API answers, what `switchboard trace --json`
// prints, and what the CLI reads back from a running node. Bodies appear as `bodyText`
// when they are UTF-8 and as `bodyBase64` otherwise.

extension AuditRecord {
    enum CodingKeys: String, CodingKey {
        case sequence, messageId, correlationId, parentId, traceId, route, entry, kind, stepIndex, step, endpoint, phase
        case startedAt, durationMicros, error, detail, headers, bodyHash, bodyText, bodyBase64, bodyChanged, bodySizeIn, bodySize
        /// Stored events only: the body is stored whole and its hash is that of the stored
        /// bytes (worked out here rather than on every exchange).
        case bodyHashed
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var prefix: [UInt8]?
        if let text = try container.decodeIfPresent(String.self, forKey: .bodyText) {
            prefix = Array(text.utf8)
        } else if let base64 = try container.decodeIfPresent(String.self, forKey: .bodyBase64) {
            prefix = Data(base64Encoded: base64).map { Array($0) }
        }
        var bodyHash = try container.decodeIfPresent(String.self, forKey: .bodyHash)
        if bodyHash == nil, let prefix, try container.decodeIfPresent(Bool.self, forKey: .bodyHashed) == true {
            bodyHash = prefix.withUnsafeBytes { SHA256.hex($0) }
        }
        var headers: String?
        if let pairs = try container.decodeIfPresent([[String]].self, forKey: .headers) {
            headers = String(decoding: try JSONEncoder().encode(pairs), as: UTF8.self)
        }
        self.init(
            sequence: try container.decodeIfPresent(Int64.self, forKey: .sequence),
            // A stored event leaves the message's ids to its row.
            messageID: try container.decodeIfPresent(String.self, forKey: .messageId) ?? "",
            correlationID: try container.decodeIfPresent(String.self, forKey: .correlationId) ?? "",
            parentID: try container.decodeIfPresent(String.self, forKey: .parentId),
            traceID: try container.decodeIfPresent(String.self, forKey: .traceId),
            routeID: try container.decode(String.self, forKey: .route),
            entry: try container.decode(Bool.self, forKey: .entry),
            // A route row is kind "route" without a step path; a `route:` step has a path.
            stepKind: try container.decodeIfPresent(String.self, forKey: .kind).flatMap {
                $0 == "route" && !container.contains(.step) ? nil : $0
            },
            stepIndex: try container.decodeIfPresent(Int.self, forKey: .stepIndex),
            stepPath: try container.decodeIfPresent(String.self, forKey: .step),
            endpoint: try container.decodeIfPresent(String.self, forKey: .endpoint),
            phase: try container.decode(String.self, forKey: .phase),
            startedAt: try container.decode(Int64.self, forKey: .startedAt),
            durationMicros: try container.decodeIfPresent(Int64.self, forKey: .durationMicros),
            error: try container.decodeIfPresent(String.self, forKey: .error),
            detail: try container.decodeIfPresent(String.self, forKey: .detail),
            headers: headers,
            bodyHash: bodyHash,
            bodyPrefix: prefix,
            bodyChanged: try container.decodeIfPresent(Bool.self, forKey: .bodyChanged) ?? false,
            bodySizeIn: try container.decodeIfPresent(Int.self, forKey: .bodySizeIn),
            bodySize: try container.decode(Int.self, forKey: .bodySize)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(sequence, forKey: .sequence)
        try container.encode(messageID, forKey: .messageId)
        try container.encode(correlationID, forKey: .correlationId)
        try container.encodeIfPresent(parentID, forKey: .parentId)
        try container.encodeIfPresent(traceID, forKey: .traceId)
        try container.encode(routeID, forKey: .route)
        try container.encode(entry, forKey: .entry)
        try container.encode(stepKind ?? "route", forKey: .kind)
        try container.encodeIfPresent(stepIndex, forKey: .stepIndex)
        try container.encodeIfPresent(stepPath, forKey: .step)
        try container.encodeIfPresent(endpoint, forKey: .endpoint)
        try container.encode(phase, forKey: .phase)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(durationMicros, forKey: .durationMicros)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(detail, forKey: .detail)
        try container.encodeIfPresent(headerPairs, forKey: .headers)
        try container.encodeIfPresent(bodyHash, forKey: .bodyHash)
        if let bodyPrefix {
            if let text = String(validating: bodyPrefix, as: UTF8.self) {
                try container.encode(text, forKey: .bodyText)
            } else {
                try container.encode(Data(bodyPrefix).base64EncodedString(), forKey: .bodyBase64)
            }
        }
        try container.encode(bodyChanged, forKey: .bodyChanged)
        try container.encodeIfPresent(bodySizeIn, forKey: .bodySizeIn)
        try container.encode(bodySize, forKey: .bodySize)
    }

    /// The header snapshot as name/value pairs.
    public var headerPairs: [[String]]? {
        guard let headers else { return nil }
        return try? JSONDecoder().decode([[String]].self, from: Data(headers.utf8))
    }
}

extension Trace {
    enum CodingKeys: String, CodingKey {
        case messageId, correlationId, parentId, traceId, route, status, startedAt, durationMicros, events, children
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            messageID: try container.decode(String.self, forKey: .messageId),
            events: try container.decode([AuditRecord].self, forKey: .events),
            children: try container.decodeIfPresent([Trace].self, forKey: .children) ?? []
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(messageID, forKey: .messageId)
        try container.encodeIfPresent(correlationID, forKey: .correlationId)
        try container.encodeIfPresent(parentID, forKey: .parentId)
        try container.encodeIfPresent(traceID, forKey: .traceId)
        try container.encodeIfPresent(routeID, forKey: .route)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(durationMicros, forKey: .durationMicros)
        try container.encode(events, forKey: .events)
        try container.encode(children, forKey: .children)
    }

    /// One trace as a single line of JSON.
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}

extension AuditRecord {
    /// `,` and the event as stored in a row of the store: the JSON of ``encode(to:)``
    /// without the message's ids (the row has them) and without the sequence (the row's).
    /// With `headers: false` the header snapshot is left out (an entry route's start: its
    /// row keeps it in a column of its own).
    func storedJSON(headers includeHeaders: Bool) -> WrittenBytes {
        var writer = StoredEventWriter(capacity: 256 + (bodyPrefix?.count ?? 0) * 9 / 8)
        writer.bytes.append(UInt8(ascii: ","))
        appendEventIdentity(
            route: routeID, entry: entry, kind: stepKind ?? "route", stepIndex: stepIndex, step: stepPath, endpoint: endpoint, to: &writer.bytes
        )
        writer.field("phase", phase)
        writer.number("startedAt", startedAt)
        if let durationMicros { writer.number("durationMicros", durationMicros) }
        writer.field("error", error)
        writer.field("detail", detail)
        if includeHeaders, let headers {
            writer.key("headers")
            var headers = headers
            headers.withUTF8 { writer.bytes.appendBytes($0) }
        }
        writer.field("bodyHash", bodyHash)
        if let bodyPrefix {
            bodyPrefix.withUnsafeBytes { writer.bodyPrefix($0) }
        }
        writer.close(bodyChanged: bodyChanged, bodySizeIn: bodySizeIn, bodySize: bodySize)
        return writer.finish()
    }

    /// The events of one stored row, with the row's ids and sequence filled in, and the
    /// row's header snapshot on the entry route's start that was stored without its own.
    static func fromStoredJSON(
        _ json: String, sequence: Int64?, messageID: String, correlationID: String, parentID: String?, traceID: String?,
        headers: String? = nil
    ) throws -> [AuditRecord] {
        var records = try JSONDecoder().decode([AuditRecord].self, from: Data(json.utf8))
        var headers = headers
        for index in records.indices {
            records[index].sequence = sequence
            records[index].messageID = messageID
            records[index].correlationID = correlationID
            records[index].parentID = parentID
            records[index].traceID = traceID
            if headers != nil, records[index].isRoute, records[index].entry, records[index].phase == "started", records[index].headers == nil {
                records[index].headers = headers
                headers = nil
            }
        }
        return records
    }
}
