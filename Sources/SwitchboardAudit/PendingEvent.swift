// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardDigest

/// A message, parent or trace id as the trail holds it until a row is written: the raw
/// value from the message (formatted once per row, on the writer), or text (records made
/// by hand, read back, or from tests).
enum AuditID: Hashable, Sendable, CustomStringConvertible {
    case message(MessageID)
    case trace(TraceContext)
    case text(String)

    var description: String {
        switch self {
        case .message(let id): id.description
        case .trace(let context): context.traceIDString
        case .text(let text): text
        }
    }

    /// Calls `body` with the id's text as UTF-8; raw ids are formatted on the stack.
    func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        switch self {
        case .message(let id): return try id.withUTF8(body)
        case .trace(let context): return try context.withTraceIDUTF8(body)
        case .text(var text): return try text.withUTF8(body)
        }
    }
}

/// One event waiting for the writer: what its row needs to be grouped, and the event
/// already in its stored JSON form.
///
/// Built on the exchange's own thread straight from the ``ExchangeEvent``, with no
/// intermediate strings (ids stay raw, the header snapshot and body hash are written as
/// bytes): this runs for every event of every exchange.
struct PendingEvent: Sendable {
    enum Role: Sendable {
        /// The start of the route a consumer delivered to.
        case entryStart
        /// The end of that route.
        case entryEnd(failed: Bool)
        /// An entry route's start and the events after it that its ``ExchangeLog`` gathered,
        /// queued before the route ended (it ran long, or the node flushes): the end comes
        /// as an `entryEnd` of its own.
        case entryOpen
        /// An entry route from start to end, gathered by its ``ExchangeLog``.
        case entryWhole(failed: Bool)
        case other

        var isEntryStart: Bool {
            if case .entryStart = self { true } else { false }
        }

        /// Whether the event holds its entry route's start, whose header snapshot is the row's.
        var opensRow: Bool {
            switch self {
            case .entryStart, .entryOpen, .entryWhole: true
            case .entryEnd, .other: false
            }
        }

        /// The entry route's end: whether it failed; nil when the event holds no end.
        var endFailed: Bool? {
            switch self {
            case .entryEnd(let failed), .entryWhole(let failed): failed
            case .entryStart, .entryOpen, .other: nil
            }
        }

        /// Whether the event holds several events of its exchange, gathered by its log: its
        /// record is not merged into another's.
        var isGathered: Bool {
            switch self {
            case .entryOpen, .entryWhole: true
            case .entryStart, .entryEnd, .other: false
            }
        }
    }

    var messageID: AuditID
    var correlationID: String
    var parentID: AuditID?
    var traceID: AuditID?
    var routeID: String
    var role: Role
    var startedAt: Int64
    /// `,` and the event's JSON object (or, gathered, several joined the same way): the
    /// writer joins a row's events by appending them, turning the first one's leading comma
    /// into the array's `[`.
    var json: WrittenBytes
    /// An entry route's start: its header snapshot, which the row keeps in a column of its
    /// own (and queries search) rather than in `json`.
    var headers: WrittenBytes?

    /// The JSON of an event whose log writes it.
    private static let noJSON = WrittenBytes.copy(of: [])

    /// Whether the trail keeps `event`: not a step's start.
    static func keeps(_ event: borrowing ExchangeEvent) -> Bool {
        event.phase != .started || event.step == nil
    }

    /// The event as the trail stores it (one it ``keeps(_:)``). Not failable: a failable
    /// initializer built the event aside and then copied it, retaining all it holds.
    init(_ event: borrowing ExchangeEvent, policy: AuditPolicy) {
        let shape = EventShape(event)
        self.init(ids: event, shape: shape, policy: policy)
        var writer = StoredEventWriter(capacity: shape.capacity(event, policy: policy))
        shape.append(event, policy: policy, to: &writer)
        json = writer.finish()
    }

    /// The event's ids, role and start, and the row's header snapshot when it is an entry
    /// route's start; no JSON yet.
    init(ids event: borrowing ExchangeEvent, shape: EventShape, policy: AuditPolicy) {
        messageID = .message(event.message.id)
        correlationID = event.message.correlationID
        parentID = event.message.parentID.map { .message($0) }
        traceID = event.message.trace.map { .trace($0) }
        routeID = event.routeID
        startedAt = shape.startedAt
        role = shape.role
        json = Self.noJSON
        if shape.rowHeaders {
            var snapshot = ByteWriter(capacity: event.message.headers.count * 64)
            policy.appendSnapshot(event.message.headers, to: &snapshot)
            headers = snapshot.written()
        }
    }

    /// A record made elsewhere (tests, `AuditStore.append(_ records:)`), held like an event.
    init(_ record: AuditRecord) {
        messageID = .text(record.messageID)
        correlationID = record.correlationID
        parentID = record.parentID.map { .text($0) }
        traceID = record.traceID.map { .text($0) }
        routeID = record.routeID
        startedAt = record.startedAt
        let entryRoute = record.isRoute && record.entry
        role = switch (entryRoute, record.phase) {
        case (true, "started"): .entryStart
        case (true, "failed"): .entryEnd(failed: true)
        case (true, _): .entryEnd(failed: false)
        default: .other
        }
        if case .entryStart = role, let headers = record.headers {
            self.headers = WrittenBytes.copy(of: Array(headers.utf8))
        }
        json = record.storedJSON(headers: headers == nil)
    }
}

/// What the trail stores of one event, worked out before its JSON is written.
struct EventShape {
    let entry: Bool
    let micros: Int64?
    let startedAt: Int64
    let role: PendingEvent.Role
    /// An entry route's start: the header snapshot goes to the row, not into the JSON.
    let rowHeaders: Bool
    /// The header snapshot goes into the event's JSON.
    let headers: Bool
    let body: Bool

    init(_ event: borrowing ExchangeEvent) {
        let isRoute = event.step == nil
        micros = event.duration.map { Int64($0.components.seconds) * 1_000_000 + $0.components.attoseconds / 1_000_000_000_000 }
        entry = isRoute && event.callDepth == 0
        startedAt = event.timestampMicros - (micros ?? 0)
        role = switch (entry, event.phase) {
        case (true, .started): .entryStart
        case (true, .completed): .entryEnd(failed: false)
        case (true, .failed): .entryEnd(failed: true)
        default: .other
        }
        // What the event snapshots: a route's start, the message as it arrived; a step's end,
        // what the step changed. A choice or filter changes nothing itself; the steps inside
        // it record their changes.
        var headers = false
        var body = false
        switch event.phase {
        case .started:
            headers = true
            body = true
        case .completed:
            if !isRoute, let input = event.input, let kind = event.step?.kind, kind != "choice", kind != "filter" {
                headers = input.headers != event.message.headers
                body = input.body != event.message.body
            }
        case .failed:
            break
        }
        rowHeaders = headers && entry
        self.headers = headers && !entry
        self.body = body
    }

    /// Room for the event's JSON, so it rarely grows.
    func capacity(_ event: borrowing ExchangeEvent, policy: AuditPolicy) -> Int {
        let bodyBytes = body ? min(event.message.body.readableBytes, policy.body.prefixBytes) : 0
        return 256 + (headers ? event.message.headers.count * 64 : 0) + bodyBytes + bodyBytes / 8
    }

    /// Appends `,` and the event's JSON object.
    func append(_ event: borrowing ExchangeEvent, policy: AuditPolicy, to writer: inout StoredEventWriter) {
        writer.bytes.append(UInt8(ascii: ","))
        if let step = event.step, step.routeID == event.routeID {
            step.jsonFields.withUnsafeBufferPointer { writer.bytes.appendBytes($0) }
        } else {
            let step = event.step
            appendEventIdentity(
                route: event.routeID, entry: entry, kind: step?.kind ?? "route", stepIndex: step?.index, step: step?.path, endpoint: step?.endpoint,
                to: &writer.bytes
            )
        }
        writer.field("phase", event.phase.rawValue)
        writer.number("startedAt", startedAt)
        if let micros { writer.number("durationMicros", micros) }
        writer.field("error", event.error)
        writer.field("detail", event.detail)
        if headers {
            writer.key("headers")
            policy.appendSnapshot(event.message.headers, to: &writer.bytes)
        }
        if body {
            event.message.body.withUnsafeReadableBytes { body in
                // A body stored whole (the usual one: up to 4 KiB) is hashed when it is read
                // back, from the stored bytes, which are the body: `bodyHashed` says to.
                let storedWhole = body.count <= policy.body.prefixBytes
                if policy.body.hash, !storedWhole {
                    writer.key("bodyHash")
                    writer.bytes.append(UInt8(ascii: "\""))
                    SHA256.appendHex(body, to: &writer.bytes)
                    writer.bytes.append(UInt8(ascii: "\""))
                }
                if policy.body.prefixBytes > 0 {
                    writer.bodyPrefix(UnsafeRawBufferPointer(rebasing: body.prefix(policy.body.prefixBytes)))
                }
                if policy.body.hash, storedWhole {
                    writer.raw(#","bodyHashed":true"#)
                }
            }
        }
        writer.close(bodyChanged: body, bodySizeIn: event.input?.body.readableBytes, bodySize: event.message.body.readableBytes)
    }
}

/// Writes one event's JSON object, field by field, as UTF-8 bytes: the trail writes one for
/// every event, and `JSONEncoder` (or `String` appends) cost several times more. The field
/// order is the one ``AuditRecord`` encodes.
struct StoredEventWriter: ~Copyable {
    var bytes: ByteWriter

    init(capacity: Int) {
        bytes = ByteWriter(capacity: capacity)
    }

    /// The JSON written, in the writer's memory.
    consuming func finish() -> WrittenBytes {
        bytes.written()
    }

    /// Appends `text` as it is.
    mutating func raw(_ text: StaticString) {
        appendStatic(text, to: &bytes)
    }

    /// `,"name":`
    mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: ","))
        bytes.append(UInt8(ascii: "\""))
        raw(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// `,"name":"value"` when there is a value.
    mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        appendJSONQuoted(value, to: &bytes)
    }

    mutating func number(_ name: StaticString, _ value: Int64) {
        key(name)
        appendDecimal(value, to: &bytes)
    }

    /// `bodyText` when the bytes are UTF-8, else `bodyBase64`.
    mutating func bodyPrefix(_ body: UnsafeRawBufferPointer) {
        let utf8 = body.assumingMemoryBound(to: UInt8.self)
        // ASCII, the usual body, is checked without making a string, and most of it needs
        // no escaping: found with one scan, then copied whole.
        let special = firstJSONSpecialByte(utf8, orNonASCII: true)
        if special == utf8.count {
            key("bodyText")
            bytes.append(UInt8(ascii: "\""))
            bytes.appendBytes(utf8)
            bytes.append(UInt8(ascii: "\""))
        } else if utf8[special...].allSatisfy({ $0 < 0x80 }) || String(validating: utf8, as: UTF8.self) != nil {
            key("bodyText")
            appendJSONQuoted(utf8: utf8, to: &bytes)
        } else {
            key("bodyBase64")
            bytes.append(UInt8(ascii: "\""))
            var base64 = Data(body).base64EncodedString()
            base64.withUTF8 { bytes.appendBytes($0) }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    mutating func close(bodyChanged: Bool, bodySizeIn: Int?, bodySize: Int) {
        raw(bodyChanged ? #","bodyChanged":true"# : #","bodyChanged":false"#)
        if let bodySizeIn { number("bodySizeIn", Int64(bodySizeIn)) }
        number("bodySize", Int64(bodySize))
        bytes.append(UInt8(ascii: "}"))
    }
}

/// The events of one write: what a store writes in one transaction, grouped by message
/// when it is written (``AuditEventRecords/append(_:to:)``).
public struct AuditBatch: Sendable {
    /// The events, as they were queued.
    let events: [PendingEvent]

    /// How many events the batch holds.
    public var eventCount: Int { events.count }

    /// The caller hands the array over (`consume`), so it is not copied.
    init(_ events: consuming [PendingEvent]) {
        self.events = events
    }

    /// Appends the batch's records (one per message) to `bytes`.
    ///
    /// - Returns: How many records.
    func appendRecords(to bytes: inout [UInt8]) throws -> Int {
        try AuditEventRecords.append(events, to: &bytes)
    }

    /// The batch's events as records, without sequence numbers (the store assigns them),
    /// read back from the form the SQLite store writes.
    public func records() throws -> [AuditRecord] {
        var bytes: [UInt8] = []
        _ = try appendRecords(to: &bytes)
        var records: [AuditRecord] = []
        records.reserveCapacity(eventCount)
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                guard case .record(let record) = AuditEventRecords.parse(UnsafeRawBufferPointer(rebasing: buffer[offset...]), remaining: buffer.count - offset) else {
                    throw AuditStoreError("an audit batch's record at byte \(offset) does not read back")
                }
                func text(_ field: AuditEventRecords.Field) -> String? {
                    record.field(field).map { String(decoding: $0, as: UTF8.self) }
                }
                records += try AuditRecord.fromStoredJSON(
                    text(.events) ?? "[]", sequence: nil, messageID: text(.messageID) ?? "", correlationID: text(.correlationID) ?? "",
                    parentID: text(.parentID), traceID: text(.traceID), headers: text(.headers)
                )
                offset += record.length
            }
        }
        return records
    }

    /// Records made elsewhere, grouped as the trail groups events.
    public init(records: [AuditRecord]) {
        self.init(records.map(PendingEvent.init))
    }
}
