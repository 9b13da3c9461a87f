/// The form a message's row takes in the events files: the row's columns ahead of its
/// events, so the file alone holds everything, and SQLite is an index built from it.
///
/// The writer answers an exchange once its record is in the file; the rows go into SQLite
/// later, many per transaction (``SQLiteAuditStore``'s index). A node killed before that
/// leaves records past the index position, and whoever opens the store next indexes them.
///
/// A record, little-endian:
///
/// | bytes | what |
/// |-------|------|
/// | 4 | magic `SBA1` |
/// | 4 | the record's length, all of it |
/// | 8 | started at (µs since the epoch) |
/// | 8 × 4 | lengths of events, message id, correlation id, parent id, trace id, entry route, status, headers (`0xFFFFFFFF`: absent) |
/// | … | those fields' bytes, in that order (the events, a JSON array, first: they are written as the message's events are read, the other fields once all are) |
/// | 4 | the length again, XOR `0x5EA1ED5E` |
///
/// The trailer is written last: a record whose trailer is there and agrees with its head is
/// whole. A record cut short (the node died mid-write, or the write is still going on) is
/// where indexing of that file stops; once a later file exists the writer has moved on
/// (it starts a new file whenever it opens the store), and indexing goes on there.
enum AuditEventRecords {
    static let magic: UInt32 = 0x3141_4253 // "SBA1"
    static let trailerMask: UInt32 = 0x5EA1_ED5E
    static let fieldCount = 8
    static let headBytes = 16 + fieldCount * 4
    static let trailerBytes = 4
    static let absent = UInt32.max

    /// The fields, in the order of their lengths in the head and of their bytes.
    enum Field: Int, CaseIterable {
        case events, messageID, correlationID, parentID, traceID, entryRoute, status, headers
    }

    /// Appends one record per message of `events`, in the order of each message's first
    /// event, with its events in order.
    ///
    /// - Returns: How many records.
    /// - Throws: ``AuditStoreError`` when a record would be 4 GiB or more.
    static func append(_ events: [PendingEvent], to bytes: inout [UInt8]) throws -> Int {
        guard !events.isEmpty else { return 0 }
        // Each message's events, linked: `next[i]` is the next event of event i's message.
        // A message's events usually follow each other (an exchange's are queued together
        // when it ends), so the table is looked in only when the message changes.
        var next = [Int](repeating: -1, count: events.count)
        var heads: [Int] = []
        var tails: [Int] = []
        var groups: [AuditID: Int] = [:]
        var group = -1
        for index in events.indices {
            let sameAsLast = group >= 0 && events[index].messageID == events[tails[group]].messageID
            if !sameAsLast {
                guard let known = groups[events[index].messageID] else {
                    group = heads.count
                    groups[events[index].messageID] = group
                    heads.append(index)
                    tails.append(index)
                    continue
                }
                group = known
            }
            next[tails[group]] = index
            tails[group] = index
        }
        for head in heads {
            try appendRecord(events, from: head, next: next, to: &bytes)
        }
        return heads.count
    }

    /// Appends the record of the message whose first event is `events[head]`.
    private static func appendRecord(_ events: [PendingEvent], from head: Int, next: [Int], to bytes: inout [UInt8]) throws {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: headBytes))
        // The events: the first one's leading comma becomes the array's `[`.
        var headersEvent: Int?
        var endEvent: Int?
        var traceEvent: Int?
        var earliest = Int64.max
        var index = head
        while index >= 0 {
            let first = index == head
            let json = events[index].json
            bytes.append(first ? UInt8(ascii: "[") : UInt8(ascii: ","))
            if events[index].role.isEntryStart, let headers = events[index].headers, headersEvent != nil {
                // A second entry start (a replay in the same batch): its headers go back
                // into its own JSON; the record's headers are the first's.
                bytes.append(contentsOf: json[1..<json.count - 1])
                bytes.append(contentsOf: #","headers":"#.utf8)
                bytes.append(contentsOf: headers)
                bytes.append(UInt8(ascii: "}"))
            } else {
                bytes.append(contentsOf: json[1...])
                if events[index].role.isEntryStart, events[index].headers != nil { headersEvent = index }
            }
            if case .entryEnd = events[index].role { endEvent = index }
            if traceEvent == nil, events[index].traceID != nil { traceEvent = index }
            earliest = min(earliest, events[index].startedAt)
            index = next[index]
        }
        bytes.append(UInt8(ascii: "]"))
        var lengths = [UInt32](repeating: absent, count: fieldCount)
        lengths[Field.events.rawValue] = UInt32(truncatingIfNeeded: bytes.count - start - headBytes)
        func field(_ which: Field, _ body: (inout [UInt8]) -> Void) {
            let before = bytes.count
            body(&bytes)
            lengths[which.rawValue] = UInt32(truncatingIfNeeded: bytes.count - before)
        }
        field(.messageID) { bytes in events[head].messageID.withUTF8 { bytes.append(contentsOf: $0) } }
        field(.correlationID) { $0.append(contentsOf: events[head].correlationID.utf8) }
        if let parent = events[head].parentID { field(.parentID) { bytes in parent.withUTF8 { bytes.append(contentsOf: $0) } } }
        if let traceEvent, let trace = events[traceEvent].traceID { field(.traceID) { bytes in trace.withUTF8 { bytes.append(contentsOf: $0) } } }
        if let endEvent, case .entryEnd(let failed) = events[endEvent].role {
            field(.entryRoute) { $0.append(contentsOf: events[endEvent].routeID.utf8) }
            field(.status) { $0.append(contentsOf: (failed ? "failed" : "completed").utf8) }
        }
        if let headersEvent, let headers = events[headersEvent].headers { field(.headers) { $0.append(contentsOf: headers) } }
        let total = bytes.count + trailerBytes - start
        guard total < Int(absent) else {
            bytes.removeLast(bytes.count - start)
            throw AuditStoreError("a message's audit events come to \(total) bytes in one batch, more than an events file record holds (4 GiB)")
        }
        let length = UInt32(total)
        // An exchange that ended in the batch is dated by its entry route's start, else by
        // its earliest event.
        let startedAt = endEvent.map { events[$0].startedAt } ?? earliest
        withUnsafeBytes(of: (length ^ trailerMask).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.withUnsafeMutableBytes { buffer in
            buffer.storeBytes(of: magic.littleEndian, toByteOffset: start, as: UInt32.self)
            buffer.storeBytes(of: length.littleEndian, toByteOffset: start + 4, as: UInt32.self)
            buffer.storeBytes(of: startedAt.littleEndian, toByteOffset: start + 8, as: Int64.self)
            for index in lengths.indices {
                buffer.storeBytes(of: lengths[index].littleEndian, toByteOffset: start + 16 + 4 * index, as: UInt32.self)
            }
        }
    }

    /// One record read back: its fields point into the buffer it was read from.
    struct Record {
        var startedAt: Int64
        /// Each field's bytes, nil when absent.
        var fields: [UnsafeRawBufferPointer?]
        /// Where the events start, from the record's start.
        var eventsOffset: Int
        var length: Int

        func field(_ which: Field) -> UnsafeRawBufferPointer? { fields[which.rawValue] }
    }

    /// What lies at the start of `buffer`.
    enum Parsed {
        /// A whole record.
        case record(Record)
        /// The start of a record longer than the buffer: read `length` bytes to have it.
        case needs(length: Int)
        /// Not a whole record: a write cut short or still going on, or damage.
        case broken
    }

    /// Reads the record at the start of `buffer`; `remaining` is how many bytes the file has
    /// from there (the buffer may hold fewer).
    static func parse(_ buffer: UnsafeRawBufferPointer, remaining: Int) -> Parsed {
        guard buffer.count >= headBytes else {
            return remaining > buffer.count && remaining >= headBytes ? .needs(length: headBytes) : .broken
        }
        func word(_ offset: Int) -> UInt32 { UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        guard word(0) == magic else { return .broken }
        let length = Int(word(4))
        guard length >= headBytes + trailerBytes, length <= remaining else { return .broken }
        guard length <= buffer.count else { return .needs(length: length) }
        guard word(length - trailerBytes) == UInt32(length) ^ trailerMask else { return .broken }
        var fields: [UnsafeRawBufferPointer?] = []
        fields.reserveCapacity(fieldCount)
        var offset = headBytes
        var eventsOffset = 0
        for index in 0..<fieldCount {
            let fieldLength = word(16 + 4 * index)
            guard fieldLength != absent else {
                fields.append(nil)
                continue
            }
            guard Int(fieldLength) <= length - trailerBytes - offset else { return .broken }
            if index == Field.events.rawValue { eventsOffset = offset }
            fields.append(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + Int(fieldLength)]))
            offset += Int(fieldLength)
        }
        guard offset == length - trailerBytes,
              fields[Field.messageID.rawValue] != nil, fields[Field.correlationID.rawValue] != nil, fields[Field.events.rawValue] != nil else {
            return .broken
        }
        let startedAt = Int64(littleEndian: buffer.loadUnaligned(fromByteOffset: 8, as: Int64.self))
        return .record(Record(startedAt: startedAt, fields: fields, eventsOffset: eventsOffset, length: length))
    }
}
