import Foundation
import NIOCore
import SwitchboardCore

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
        case other

        var isEntryStart: Bool {
            if case .entryStart = self { true } else { false }
        }
    }

    var messageID: AuditID
    var correlationID: String
    var parentID: AuditID?
    var traceID: AuditID?
    var routeID: String
    var role: Role
    var startedAt: Int64
    /// `,` and the event's JSON object: the writer joins a row's events by appending them,
    /// turning the first one's leading comma into the array's `[`.
    var json: [UInt8]
    /// An entry route's start: its header snapshot, which the row keeps in a column of its
    /// own (and queries search) rather than in `json`.
    var headers: [UInt8]?

    /// Whether the trail keeps `event`: not a step's start.
    static func keeps(_ event: borrowing ExchangeEvent) -> Bool {
        event.phase != .started || event.step == nil
    }

    /// The event as the trail stores it (one it ``keeps(_:)``). Not failable: a failable
    /// initializer built the event aside and then copied it, retaining all it holds.
    init(_ event: borrowing ExchangeEvent, policy: AuditPolicy) {
        let isRoute = event.step == nil
        let micros = event.duration.map { Int64($0.components.seconds) * 1_000_000 + $0.components.attoseconds / 1_000_000_000_000 }
        let entry = isRoute && event.callDepth == 0
        messageID = .message(event.message.id)
        correlationID = event.message.correlationID
        parentID = event.message.parentID.map { .message($0) }
        traceID = event.message.trace.map { .trace($0) }
        routeID = event.routeID
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
        var snapshotHeaders = false
        var snapshotBody = false
        switch event.phase {
        case .started:
            snapshotHeaders = true
            snapshotBody = true
        case .completed:
            if !isRoute, let input = event.input, let kind = event.step?.kind, kind != "choice", kind != "filter" {
                snapshotHeaders = input.headers != event.message.headers
                snapshotBody = input.body != event.message.body
            }
        case .failed:
            break
        }
        if snapshotHeaders, entry {
            var snapshot: [UInt8] = []
            snapshot.reserveCapacity(event.message.headers.count * 48)
            policy.appendSnapshot(event.message.headers, to: &snapshot)
            headers = snapshot
            snapshotHeaders = false
        }

        let bodyBytes = snapshotBody ? min(event.message.body.readableBytes, policy.body.prefixBytes) : 0
        var writer = StoredEventWriter(capacity: 240 + (snapshotHeaders ? event.message.headers.count * 48 : 0) + bodyBytes + bodyBytes / 8)
        writer.bytes.append(UInt8(ascii: ","))
        writer.open(route: event.routeID, entry: entry, kind: event.step?.kind ?? "route")
        if let step = event.step {
            writer.number("stepIndex", Int64(step.index))
            writer.field("step", step.path)
            writer.field("endpoint", step.endpoint)
        }
        writer.field("phase", event.phase.rawValue)
        writer.number("startedAt", startedAt)
        if let micros { writer.number("durationMicros", micros) }
        writer.field("error", event.error)
        writer.field("detail", event.detail)
        if snapshotHeaders {
            writer.key("headers")
            policy.appendSnapshot(event.message.headers, to: &writer.bytes)
        }
        if snapshotBody {
            event.message.body.withUnsafeReadableBytes { body in
                if policy.body.hash {
                    writer.key("bodyHash")
                    writer.bytes.append(UInt8(ascii: "\""))
                    SHA256.appendHex(body, to: &writer.bytes)
                    writer.bytes.append(UInt8(ascii: "\""))
                }
                if policy.body.prefixBytes > 0 {
                    writer.bodyPrefix(UnsafeRawBufferPointer(rebasing: body.prefix(policy.body.prefixBytes)))
                }
            }
        }
        writer.close(bodyChanged: snapshotBody, bodySizeIn: event.input?.body.readableBytes, bodySize: event.message.body.readableBytes)
        json = writer.bytes
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
            self.headers = Array(headers.utf8)
        }
        json = [UInt8(ascii: ",")]
        record.appendStoredJSON(to: &json, headers: headers == nil)
    }
}

/// Writes one event's JSON object, field by field, as UTF-8 bytes: the trail writes one for
/// every event, and `JSONEncoder` (or `String` appends) cost several times more. The field
/// order is the one ``AuditRecord`` encodes.
struct StoredEventWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func open(route: String, entry: Bool, kind: String) {
        bytes.append(contentsOf: #"{"route":"#.utf8)
        appendJSONQuoted(route, to: &bytes)
        bytes.append(contentsOf: (entry ? #","entry":true,"kind":"# : #","entry":false,"kind":"#).utf8)
        appendJSONQuoted(kind, to: &bytes)
    }

    /// `,"name":`
    mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: ","))
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
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
        // ASCII, the usual body, is checked without making a string.
        if !utf8.contains(where: { $0 >= 0x80 }) || String(validating: utf8, as: UTF8.self) != nil {
            key("bodyText")
            appendJSONQuoted(utf8: utf8, to: &bytes)
        } else {
            key("bodyBase64")
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: Data(body).base64EncodedString().utf8)
            bytes.append(UInt8(ascii: "\""))
        }
    }

    mutating func close(bodyChanged: Bool, bodySizeIn: Int?, bodySize: Int) {
        bytes.append(contentsOf: (bodyChanged ? #","bodyChanged":true"# : #","bodyChanged":false"#).utf8)
        if let bodySizeIn { number("bodySizeIn", Int64(bodySizeIn)) }
        number("bodySize", Int64(bodySize))
        bytes.append(UInt8(ascii: "}"))
    }
}

/// The events of one write, grouped by message: what a store writes in one transaction.
public struct AuditBatch: Sendable {
    var chunks: [AuditChunk]

    /// The messages the batch holds events of, in the order their first events came.
    public var messageIDs: [String] { chunks.map(\.messageID.description) }

    /// How many events the batch holds.
    public let eventCount: Int

    /// Groups `events` by message, keeping each message's events in order. The events'
    /// JSON is moved into the rows, not copied, where a message has one event.
    /// The caller hands the array over (`consume`): a copy still held elsewhere would make
    /// taking each event's JSON out copy the array, and then the JSON.
    init(_ events: consuming [PendingEvent]) {
        eventCount = events.count
        var slot: [AuditID: Int] = [:]
        slot.reserveCapacity(events.count)
        var chunks: [AuditChunk] = []
        chunks.reserveCapacity(events.count / 2 + 1)
        for index in events.indices {
            if let existing = slot[events[index].messageID] {
                chunks[existing].add(&events[index])
            } else {
                slot[events[index].messageID] = chunks.count
                chunks.append(AuditChunk(first: &events[index]))
            }
        }
        for index in chunks.indices {
            chunks[index].events.append(UInt8(ascii: "]"))
        }
        self.chunks = chunks
    }

    /// The batch's events as records, without sequence numbers (the store assigns them).
    public func records() throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        records.reserveCapacity(eventCount)
        for chunk in chunks {
            records += try AuditRecord.fromStoredJSON(
                String(decoding: chunk.events, as: UTF8.self), sequence: nil, messageID: chunk.messageID.description, correlationID: chunk.correlationID,
                parentID: chunk.parentID, traceID: chunk.traceID?.description, headers: chunk.headers.map { String(decoding: $0, as: UTF8.self) }
            )
        }
        return records
    }

    /// Records made elsewhere, grouped as the trail groups events.
    public init(records: [AuditRecord]) {
        self.init(records.map(PendingEvent.init))
    }
}

/// The events of one message in one write batch: what a store keeps as one row.
struct AuditChunk: Sendable {
    /// Raw until the store writes them: SQLite binds them formatted on the stack.
    var messageID: AuditID
    var correlationID: String
    var parentID: String?
    var traceID: AuditID?
    /// The entry route, when the chunk holds the end of the route a consumer delivered to.
    var entryRoute: String?
    /// `completed` or `failed`: that end's outcome.
    var status: String?
    /// The entry route's start when the chunk holds its end, else the earliest event's start.
    var startedAt: Int64
    /// The headers the message arrived with (a JSON array of pairs), when the chunk holds the
    /// entry route's start; that event's JSON then leaves them out.
    var headers: [UInt8]?
    /// The events, as a JSON array (UTF-8).
    var events: [UInt8]
    private var endStartedAt: Int64?

    @inline(__always)
    init(first event: inout PendingEvent) {
        messageID = event.messageID
        correlationID = event.correlationID
        parentID = event.parentID?.description
        traceID = event.traceID
        startedAt = event.startedAt
        events = []
        swap(&events, &event.json)
        events[0] = UInt8(ascii: "[")
        // Room for the later events of the exchange, usually smaller than its start (which
        // carries the body): one move now rather than one each time the array grows.
        if event.role.isEntryStart { events.reserveCapacity(events.count * 2 + 1024) }
        note(&event)
    }

    mutating func add(_ event: inout PendingEvent) {
        if traceID == nil {
            traceID = event.traceID
        }
        startedAt = min(startedAt, event.startedAt)
        if let headers = event.headers, self.headers != nil {
            // A second entry start in one batch: its headers go back into its own JSON.
            event.json.removeLast()
            event.json.append(contentsOf: #","headers":"#.utf8)
            event.json.append(contentsOf: headers)
            event.json.append(UInt8(ascii: "}"))
            event.headers = nil
        }
        events.append(contentsOf: event.json)
        note(&event)
    }

    private mutating func note(_ event: inout PendingEvent) {
        switch event.role {
        case .entryStart:
            if headers == nil {
                headers = event.headers
            }
        case .entryEnd(let failed):
            entryRoute = event.routeID
            status = failed ? "failed" : "completed"
            endStartedAt = event.startedAt
        case .other:
            break
        }
        if let endStartedAt { startedAt = endStartedAt }
    }
}
