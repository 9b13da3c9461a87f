// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `xslt`: replaces an XML body with the stylesheet's result. Parameters are templates
/// rendered per message and passed as strings. `xsl:message`s that do not stop the transform
/// go to the log at warning level.
struct XSLTStep: Processor {
    let stylesheet: XSLTStylesheet
    let file: String
    let parameters: [(String, Template)]
    var logger = Logger(label: "switchboard.xslt")

    /// The step with its messages going to `logger` (which names the route and step).
    func logging(to logger: Logger) -> XSLTStep {
        var step = self
        step.logger = logger
        return step
    }

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let values = try parameters.map { ($0.0, try $0.1.render(exchange.message)) }
        let output: [UInt8]
        do {
            output = try exchange.message.body.withUnsafeReadableBytes { bytes in
                try stylesheet.transform(bytes, name: "the body", parameters: values) { text in
                    logger.warning("xsl:message: \(text)", metadata: [
                        "stylesheet": "\(file)", "message-id": "\(exchange.message.id)",
                    ])
                }
            }
        } catch let error as XMLError {
            throw ProcessingError("\(error)", status: 400)
        } catch let error as XSLTError {
            throw ProcessingError("\(error)", status: 422)
        }
        exchange.message.body = ByteBuffer(bytes: output)
        exchange.message.contentType = stylesheet.mediaType
        return .next(exchange, detail: "\(file) → \(stylesheet.mediaType)")
    }
}

extension XSLTStep: StepKind {
    static let spec = StepSpec(
        "xslt",
        summary: "Transforms an XML body with an XSLT 1.0 stylesheet (libxslt + EXSLT), compiled once at load; the result's content type follows xsl:output.",
        fields: [
            Field("file", .string, required: true, "Stylesheet path relative to the mappings folder."),
            Field("params", .templateMap, "xsl:param values as { name: template }, passed as strings."),
            Field("allow", .string, "Folder under the mappings folder the stylesheet may read (default: the mappings folder)."),
        ],
        scalarField: "file",
        example: "- xslt: { file: ubl-to-canonical.xsl, params: { received: \"${date:yyyy-MM-dd}\" } }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        var stepLogger = compiler.logger
        stepLogger[metadataKey: "route"] = "\(scope.routeID)"
        stepLogger[metadataKey: "step"] = "\(info.path)"
        return compiler.buildXSLT(fields, scope: scope, at: step.location)?.logging(to: stepLogger)
    }
}

extension RouteCompiler {
    /// `xslt: FILE` or `xslt: { file, params: { name: template }, allow: FOLDER }`: the
    /// stylesheet is compiled here, once, and may read only inside the mappings folder
    /// (or the `allow` folder under it).
    func buildXSLT(_ fields: [String: ConfigNode], scope: RouteScope, at location: SourceLocation) -> XSLTStep? {
        guard let fileNode = fields["file"], let file = fileNode.scalar else { return nil }
        guard let path = mappingsPath(file, at: fileNode.contentLocation, what: "stylesheet") else { return nil }
        var root = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        if let allowNode = fields["allow"], let allow = allowNode.scalar {
            guard let widened = mappingsPath(allow, at: allowNode.contentLocation, what: "'allow' folder", mustExist: false) else { return nil }
            root = widened
        }
        var parameters: [(String, Template)] = []
        if let paramsNode = fields["params"] {
            guard let pairs = paramsNode.mapping else {
                log.error(paramsNode.location, "'params' maps parameter names to values, as in { lang: en, sent: \"${date:yyyy-MM-dd}\" }")
                return nil
            }
            for pair in pairs {
                guard let value = template(pair.value, scope: scope) else {
                    log.error(pair.value.location, "parameter '\(pair.key)' needs a single value")
                    continue
                }
                parameters.append((pair.key, value))
            }
        }
        let key = path + "\u{0}" + root
        if let compiled = stylesheets[key] {
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(fileNode.contentLocation, "stylesheet '\(file)' does not exist in the mappings folder (\(mappingsDirectory))")
            return nil
        }
        do {
            let compiled = try XSLTStylesheet(path: path, allowedRoot: root)
            stylesheets[key] = compiled
            return XSLTStep(stylesheet: compiled, file: file, parameters: parameters)
        } catch {
            log.error(fileNode.contentLocation, "\(error)")
            return nil
        }
    }
}
