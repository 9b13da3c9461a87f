// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// The form a message's row takes in the events files: its events and the row's columns
/// together, so the file alone holds everything, and SQLite is an index built from it.
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
    enum Field: Int {
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
        // when it ends); an event is joined to one of the last few messages or starts a
        // record of its own. A message whose events are further apart than that gets two
        // records, and two rows, which a trace reads as one.
        var next = [Int](repeating: -1, count: events.count)
        var heads: [Int] = []
        var tails: [Int] = []
        heads.reserveCapacity(events.count)
        tails.reserveCapacity(events.count)
        for index in events.indices {
            let recent = max(0, tails.count - recentMessages)
            // Events a log gathered start a record: their start cannot take a record's
            // headers back into its JSON (a second entry start of a message in one batch).
            if !events[index].role.isGathered, let group = tails[recent...].lastIndex(where: { events[$0].messageID == events[index].messageID }) {
                next[tails[group]] = index
                tails[group] = index
            } else {
                heads.append(index)
                tails.append(index)
            }
        }
        for head in heads {
            try appendRecord(events, from: head, next: next, to: &bytes)
        }
        return heads.count
    }

    /// How many of the last messages an event's message is looked for among.
    static let recentMessages = 16

    /// Appends the record of the message whose first event is `events[head]`.
    private static func appendRecord(_ events: [PendingEvent], from head: Int, next: [Int], to bytes: inout [UInt8]) throws {
        let start = bytes.count
        // The head: magic, length and start are written last; the lengths as fields are.
        bytes.append(contentsOf: repeatElement(0, count: 16))
        bytes.append(contentsOf: repeatElement(0xFF, count: fieldCount * 4))
        func noteLength(_ which: Field, from before: Int) {
            let length = UInt32(truncatingIfNeeded: bytes.count - before)
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: length.littleEndian, toByteOffset: start + 16 + 4 * which.rawValue, as: UInt32.self) }
        }
        func field(_ which: Field, _ body: (inout [UInt8]) -> Void) {
            let before = bytes.count
            body(&bytes)
            noteLength(which, from: before)
        }
        // The events: the first one's leading comma becomes the array's `[`.
        var headersEvent: Int?
        var endEvent: Int?
        var traceEvent: Int?
        var earliest = Int64.max
        var index = head
        while index >= 0 {
            bytes.append(index == head ? UInt8(ascii: "[") : UInt8(ascii: ","))
            let inline = events[index].role.isEntryStart && events[index].headers != nil && headersEvent != nil
            events[index].json.withUnsafeBufferPointer { json in
                // Without the leading comma; a second entry start (a replay in the same
                // batch) without its closing brace too: its headers go back into its own
                // JSON, the record's being the first's.
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: json[1..<(inline ? json.count - 1 : json.count)]))
            }
            if inline, let headers = events[index].headers {
                bytes.append(contentsOf: #","headers":"#.utf8)
                headers.withUnsafeBufferPointer { bytes.append(contentsOf: $0) }
                bytes.append(UInt8(ascii: "}"))
            } else if events[index].role.opensRow, events[index].headers != nil {
                headersEvent = index
            }
            if events[index].role.endFailed != nil { endEvent = index }
            if traceEvent == nil, events[index].traceID != nil { traceEvent = index }
            earliest = min(earliest, events[index].startedAt)
            index = next[index]
        }
        bytes.append(UInt8(ascii: "]"))
        noteLength(.events, from: start + headBytes)
        field(.messageID) { bytes in events[head].messageID.withUTF8 { bytes.append(contentsOf: $0) } }
        field(.correlationID) { $0.append(contentsOf: events[head].correlationID.utf8) }
        if let parent = events[head].parentID { field(.parentID) { bytes in parent.withUTF8 { bytes.append(contentsOf: $0) } } }
        if let traceEvent, let trace = events[traceEvent].traceID { field(.traceID) { bytes in trace.withUTF8 { bytes.append(contentsOf: $0) } } }
        if let endEvent, let failed = events[endEvent].role.endFailed {
            field(.entryRoute) { $0.append(contentsOf: events[endEvent].routeID.utf8) }
            field(.status) { $0.append(contentsOf: (failed ? "failed" : "completed").utf8) }
        }
        if let headersEvent, let headers = events[headersEvent].headers {
            field(.headers) { bytes in headers.withUnsafeBufferPointer { bytes.append(contentsOf: $0) } }
        }
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
        }
    }

    /// One record read back: its fields point into the buffer it was read from.
    struct Record {
        /// The record's bytes (a whole record: ``parse(_:remaining:)`` checked them).
        let bytes: UnsafeRawBufferPointer

        var length: Int { bytes.count }
        var startedAt: Int64 { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self)) }
        /// Where the events start, from the record's start: they come first.
        var eventsOffset: Int { headBytes }

        /// A field's bytes, nil when absent.
        func field(_ which: Field) -> UnsafeRawBufferPointer? {
            var offset = headBytes
            for index in 0..<which.rawValue {
                let length = fieldLength(index)
                if length != absent { offset += Int(length) }
            }
            let length = fieldLength(which.rawValue)
            guard length != absent else { return nil }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
        }

        private func fieldLength(_ index: Int) -> UInt32 {
            UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16 + 4 * index, as: UInt32.self))
        }
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
        // The fields must fill the record exactly, the ids and events present.
        var offset = headBytes
        for index in 0..<fieldCount {
            let fieldLength = word(16 + 4 * index)
            guard fieldLength != absent else {
                if index == Field.events.rawValue || index == Field.messageID.rawValue || index == Field.correlationID.rawValue { return .broken }
                continue
            }
            guard Int(fieldLength) <= length - trailerBytes - offset else { return .broken }
            offset += Int(fieldLength)
        }
        guard offset == length - trailerBytes else { return .broken }
        return .record(Record(bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<length])))
    }
}
