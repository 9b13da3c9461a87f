// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import Synchronization
import SwitchboardFixedWidth
import SwitchboardTransform

/// `multicast`: sends a copy of the message down every branch (each step of its `steps` is
/// one branch), in parallel by default, and combines the replies. Each copy is a child
/// message: new id, this message as parent.
struct MulticastStep: Processor {
    let branches: [Pipeline]
    let parallel: Bool
    let aggregation: Aggregation
    let timeout: Duration?

    func process(_ exchange: Exchange) async throws -> StepResult {
        let results: [Exchange]
        if let timeout {
            results = try await withDeadline(timeout) { try await self.runBranches(exchange) }
        } else {
            results = try await runBranches(exchange)
        }
        return .next(aggregation.combine(original: exchange, results: results), detail: "\(results.count) replies")
    }

    private func runBranches(_ exchange: Exchange) async throws -> [Exchange] {
        let copies = branches.map { _ in
            Exchange(message: exchange.message.makeChild(body: exchange.message.body), pattern: exchange.pattern)
        }
        guard parallel else {
            var results: [Exchange] = []
            for (branch, copy) in zip(branches, copies) {
                results.append(try await branch.run(copy).exchange)
            }
            return results
        }
        return try await withThrowingTaskGroup(of: (Int, Exchange).self) { group in
            for (index, (branch, copy)) in zip(branches, copies).enumerated() {
                group.addTask { (index, try await branch.run(copy).exchange) }
            }
            var results = [Exchange?](repeating: nil, count: branches.count)
            for try await (index, result) in group {
                results[index] = result
            }
            return results.compactMap { $0 }
        }
    }
}

/// `split`: the splitter. Cuts the body into parts (XPath nodes, JSONPath values or lines),
/// runs the split's steps on each part as a child message (new id, this message as parent,
/// headers `split.index` and `split.size`), then continues with the original message or
/// with the results combined.
struct SplitStep: Processor {
    enum Source: Sendable {
        case xpath(XPathExpression)
        case jsonpath(JSONPath)
        case lines
        /// The values at a structure path of a fixed-width file, as JSON.
        case fixedWidth(FixedWidthLayout, path: [String])
    }

    let source: Source
    let pipeline: Pipeline
    let aggregation: Aggregation
    let parallel: Bool
    /// Where parts whose steps fail go (`rejects:`); nil: a failed part fails the split.
    var rejects: (producer: any Producer, description: String)?
    /// The split step itself, for the headers of rejected records.
    var info: StepInfo?

    /// Children in flight at once when `parallel` is on.
    static let parallelLimit = 16

    final class RejectCount: Sendable {
        let count = Mutex(0)
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        if case .fixedWidth(let layout, let path) = source, exchange.message.body.readableBytes == 0,
           let file = exchange.message.properties[Message.bodyFileProperty] {
            return try await processStreaming(exchange, file: file, layout: layout, path: path)
        }
        let (parts, contentType, badRecords) = try split(exchange.message)
        let size = parts.count
        func child(_ index: Int) -> Exchange {
            var message = exchange.message.makeChild(body: parts[index])
            message.headers["split.index"] = String(index)
            message.headers["split.size"] = String(size)
            if let contentType { message.contentType = contentType }
            return Exchange(message: message, pattern: exchange.pattern)
        }
        let rejected = RejectCount()
        // Records of a fixed-width body that did not parse: rejected before the parts run.
        for (error, bytes) in badRecords {
            try await reject(record: bytes, error: error, of: exchange.message)
            rejected.count.withLock { $0 += 1 }
        }
        @Sendable func run(_ part: Exchange) async throws -> Exchange? {
            let result = try await runPart(part)
            if result == nil { rejected.count.withLock { $0 += 1 } }
            return result
        }
        var results: [Exchange] = []
        if parallel {
            results = try await withThrowingTaskGroup(of: (Int, Exchange?).self) { group in
                var collected = [Exchange?](repeating: nil, count: size)
                var next = 0
                while next < min(size, SplitStep.parallelLimit) {
                    let index = next
                    let part = child(index)
                    group.addTask { (index, try await run(part)) }
                    next += 1
                }
                for try await (index, result) in group {
                    collected[index] = result
                    if next < size {
                        let index = next
                        let part = child(index)
                        group.addTask { (index, try await run(part)) }
                        next += 1
                    }
                }
                return collected.compactMap { $0 }
            }
        } else {
            results.reserveCapacity(aggregation == .original ? 0 : size)
            for index in 0..<size {
                let result = try await run(child(index))
                if aggregation != .original, let result { results.append(result) }
            }
        }
        let count = rejected.count.withLock { $0 }
        let detail = count == 0 ? "\(size) parts" : "\(size) parts, \(count) rejected to \(rejects?.description ?? "")"
        return .next(aggregation.combine(original: exchange, results: results), detail: detail)
    }

    /// Runs one part; a failed part goes to `rejects` when there is one (nil result).
    func runPart(_ part: Exchange) async throws -> Exchange? {
        do {
            return try await pipeline.run(part).exchange
        } catch let failure as StepFailure {
            guard let rejects else { throw failure }
            let copy = part.message.deadLetterCopy(route: failure.step.routeID, step: failure.step.summary, error: failure.reason, attempts: failure.attempts)
            _ = try await rejects.producer.send(Exchange(message: copy, pattern: .inOnly))
            return nil
        }
    }

    /// Sends a fixed-width record that did not parse to `rejects`.
    func reject(record bytes: [UInt8], error: FixedWidthError, of message: Message) async throws {
        guard let rejects else { throw error }
        var record = message.makeChild(body: ByteBuffer(bytes: bytes))
        record.properties[Message.bodyFileProperty] = nil
        record.contentType = "text/plain"
        var copy = record.deadLetterCopy(route: info?.routeID ?? "", step: info?.summary ?? "split", error: error.description, attempts: 1)
        copy.headers["X-Dead-Letter-Line"] = String(error.line)
        _ = try await rejects.producer.send(Exchange(message: copy, pattern: .inOnly))
    }

    private func split(_ message: Message) throws -> ([ByteBuffer], String?, [(FixedWidthError, [UInt8])]) {
        switch source {
        case .xpath(let expression):
            var view = BodyView(message)
            let nodes = try expression.evaluateNodes(in: view.xmlDocument())
            return (nodes.map { ByteBuffer(string: $0) }, "application/xml", [])
        case .jsonpath(let path):
            var view = BodyView(message)
            let values = path.select(try view.jsonValue())
            return (values.map { ByteBuffer(string: $0.serialized()) }, "application/json", [])
        case .lines:
            var parts: [ByteBuffer] = []
            let body = message.body
            body.withUnsafeReadableBytes { bytes in
                var start = 0
                for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
                    var end = index
                    if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    parts.append(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
                    start = index + 1
                }
                if start < bytes.count {
                    var end = bytes.count
                    if bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    parts.append(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
                }
            }
            return (parts, nil, [])
        case .fixedWidth(let layout, let path):
            var parts: [ByteBuffer] = []
            var bad: [(FixedWidthError, [UInt8])] = []
            let bytes = Array(message.body.readableBytesView)
            var parser = FixedWidthParser(layout: layout, bytes: bytes, splitAt: path, onPart: { part in
                var bytes: [UInt8] = []
                part.write(into: &bytes)
                parts.append(ByteBuffer(bytes: bytes))
            }, badRecord: rejects == nil ? nil : { error, bytes in bad.append((error, bytes)) })
            do {
                _ = try parser.parse()
            } catch let error as FixedWidthError {
                throw ProcessingError("the body does not fit the layout \(layout.name): \(error)", status: 422)
            }
            return (parts, "application/json", bad)
        }
    }
}

/// Runs `body`, failing with a timeout error if it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let value = try await firstWithin(limit, body) else {
        throw ProcessingError("timed out after \(formatDuration(limit))", status: 504, kind: ErrorKind.timeout)
    }
    return value
}
