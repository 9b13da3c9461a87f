// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore
import SwitchboardFixedWidth
import SwitchboardTransform
import Synchronization

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

extension SplitStep: StepKind {
    static let spec = StepSpec(
        "split",
        summary: "Splitter: cuts the body into parts (XPath nodes, JSONPath values, lines, or the values at a fixed-width structure path as JSON), runs its steps on each part as a child message with headers split.index and split.size, then goes on with the original message or the parts' results combined.",
        fields: [
            Field("xpath", .xpath, "Split an XML body into the nodes this selects."),
            Field("jsonpath", .jsonpath, "Split a JSON body into the values this selects."),
            Field("lines", .boolean, "Split the body into lines."),
            Field("fixed-width", .string, "Split a fixed-width file, read with this layout from the mappings folder, into the JSON values at 'path'."),
            Field("path", .string, "With 'fixed-width': the structure path whose values become the parts, such as batches.entries."),
            Field("steps", .steps, required: true, "Steps run on each part."),
            Field("aggregate", .choice(Aggregation.allCases.map(\.rawValue)), default: "original", "What the route continues with: the original message, or the parts' results combined."),
            Field("parallel", .boolean, default: "false", "Process up to 16 parts at the same time."),
            Field("rejects", .uri, "Send each part whose steps fail (after retries) here, with X-Dead-Letter-* headers, and go on with the others; default: the first failure fails the split."),
        ],
        oneOf: ["xpath", "jsonpath", "lines", "fixed-width"],
        example: """
        - split:
            xpath: "/orders/order"
            steps: [ { to: "http://127.0.0.1:9001/order" } ]
        """
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        var source: SplitStep.Source?
        if let node = fields["xpath"] {
            source = compiler.xpath(node, scope: scope).map { .xpath($0) }
        } else if let node = fields["jsonpath"] {
            source = compiler.jsonpath(node).map { .jsonpath($0) }
        } else if let node = fields["lines"] {
            if parseBool(node.scalar) == true {
                source = .lines
            } else {
                compiler.log.error(node.contentLocation, "'lines' must be true to split by lines")
            }
        } else if let node = fields["fixed-width"] {
            source = compiler.fixedWidthSource(node, path: fields["path"], at: step.location)
        }
        let pipeline = fields["steps"].flatMap { compiler.compileSteps($0, scope: scope, pathPrefix: info.path + ".") }
        var rejects: (any Producer, String)?
        if let node = fields["rejects"] {
            guard let (endpoint, adapter) = compiler.resolveEndpoint(node, role: .producer, what: "rejects") else { return nil }
            do {
                rejects = (try adapter.makeProducer(endpoint), endpoint.description)
                if endpoint.scheme == DirectAdapter.scheme { compiler.directCalls.append((endpoint.path, node.contentLocation)) }
            } catch {
                compiler.log.error(node.contentLocation, "\(error)")
                return nil
            }
        }
        guard let source, let pipeline else { return nil }
        return SplitStep(
            source: source,
            pipeline: pipeline,
            aggregation: fields["aggregate"]?.scalar.flatMap(Aggregation.init(rawValue:)) ?? .original,
            parallel: parseBool(fields["parallel"]?.scalar) ?? false,
            rejects: rejects,
            info: info
        )
    }
}

extension RouteCompiler {
    /// `split: { fixed-width: LAYOUT, path: batches.entries }`: the layout compiled once.
    func fixedWidthSource(_ node: ConfigNode, path pathNode: ConfigNode?, at location: SourceLocation) -> SplitStep.Source? {
        guard let file = node.scalar, let path = mappingsPath(file, at: node.contentLocation, what: "layout") else { return nil }
        let layout: FixedWidthLayout
        if let compiled = layouts[path] {
            layout = compiled
        } else {
            do {
                layout = try FixedWidthLayout(path: path)
                layouts[path] = layout
            } catch let error as ConfigurationError {
                for diagnostic in error.diagnostics { log.error(diagnostic.location, diagnostic.message) }
                return nil
            } catch {
                log.error(node.contentLocation, "\(error)")
                return nil
            }
        }
        guard let pathNode, let split = pathNode.scalar else {
            log.error(location, "'split' with 'fixed-width' needs 'path': one of \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        guard layout.structurePaths.contains(split) else {
            log.error(pathNode.contentLocation, "'\(split)' is not a path of the layout's structure; paths: \(layout.structurePaths.joined(separator: ", "))")
            return nil
        }
        return .fixedWidth(layout, path: split.split(separator: ".").map(String.init))
    }
}
