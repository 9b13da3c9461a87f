// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform
import Synchronization

/// A fixed-width file read record by record on a thread of its own, its parts handed to
/// the route as they come, at most `window` ahead of the route: memory holds a window of
/// parts, whatever the file's size.
final class FixedWidthPartStream: Sendable {
    enum Item: Sendable {
        case part(ByteBuffer)
        case bad(FixedWidthError, [UInt8])
    }

    /// Thrown inside the reader when the route stopped taking parts.
    struct Stopped: Error {}

    let items: AsyncThrowingStream<Item, any Error>
    private let continuation: AsyncThrowingStream<Item, any Error>.Continuation
    private let room: DispatchSemaphore
    private let stopped = Mutex(false)

    init(window: Int = 64) {
        (items, continuation) = AsyncThrowingStream.makeStream(of: Item.self, throwing: (any Error).self)
        // Made at 0 and raised: libdispatch traps when a semaphore is freed below the
        // value it was made with, which a reader stopped mid-window would leave.
        room = DispatchSemaphore(value: 0)
        for _ in 0..<window { room.signal() }
    }

    /// Starts reading `path` with `layout`, splitting at `splitPath`.
    func start(path: String, layout: FixedWidthLayout, splitPath: [String], keepBadRecords: Bool) {
        startThread(named: "fixedwidth-read") { [self] in
            guard let handle = FileHandle(forReadingAtPath: path) else {
                continuation.finish(throwing: ProcessingError("cannot open \(path) to read it", status: 500))
                return
            }
            defer { try? handle.close() }
            var parser = FixedWidthParser(layout: layout, next: {
                guard let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty else { return nil }
                return Array(chunk)
            }, splitAt: splitPath, onPart: { part in
                var bytes: [UInt8] = []
                part.write(into: &bytes)
                try self.emit(.part(ByteBuffer(bytes: bytes)))
            }, badRecord: keepBadRecords ? { error, bytes in try self.emit(.bad(error, bytes)) } : nil)
            do {
                _ = try parser.parse()
                continuation.finish()
            } catch is Stopped {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }

    /// Hands an item over, waiting while the route is a full window behind.
    private func emit(_ item: Item) throws {
        room.wait()
        if stopped.withLock({ $0 }) { throw Stopped() }
        continuation.yield(item)
    }

    /// The route took an item: the reader may go one further.
    func took() {
        room.signal()
    }

    /// The route stops (a part failed): the reader ends at its next record.
    func stop() {
        stopped.withLock { $0 = true }
        room.signal()
    }
}

extension SplitStep {
    /// Splits a fixed-width body that a consumer left in a file (``Message/bodyFileProperty``),
    /// running each part as soon as it is read. `split.size` is not known ahead and not set.
    func processStreaming(_ exchange: Exchange, file: String, layout: FixedWidthLayout, path: [String]) async throws -> StepResult {
        let stream = FixedWidthPartStream()
        stream.start(path: file, layout: layout, splitPath: path, keepBadRecords: rejects != nil)
        defer { stream.stop() }
        var index = 0
        var rejectedCount = 0
        var results: [Exchange] = []
        do {
            for try await item in stream.items {
                stream.took()
                switch item {
                case .bad(let error, let bytes):
                    try await reject(record: bytes, error: error, of: exchange.message)
                    rejectedCount += 1
                case .part(let body):
                    var message = exchange.message.makeChild(body: body)
                    message.properties[Message.bodyFileProperty] = nil
                    message.headers["split.index"] = String(index)
                    message.contentType = "application/json"
                    index += 1
                    let result = try await runPart(Exchange(message: message, pattern: exchange.pattern))
                    if let result {
                        if aggregation != .original { results.append(result) }
                    } else {
                        rejectedCount += 1
                    }
                }
            }
        } catch let error as FixedWidthError {
            throw ProcessingError("the file does not fit the layout \(layout.name): \(error)", status: 422)
        }
        let detail = rejectedCount == 0 ? "\(index) parts, streamed" : "\(index) parts, streamed, \(rejectedCount) rejected to \(rejects?.description ?? "")"
        return .next(aggregation.combine(original: exchange, results: results), detail: detail)
    }
}
