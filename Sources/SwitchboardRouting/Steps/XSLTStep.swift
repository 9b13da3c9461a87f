import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// `xslt`: replaces an XML body with the stylesheet's result. Parameters are templates
/// rendered per message and passed as strings.
struct XSLTStep: Processor {
    let stylesheet: XSLTStylesheet
    let file: String
    let parameters: [(String, Template)]

    func process(_ exchange: Exchange) async throws -> StepResult {
        var exchange = exchange
        let values = try parameters.map { ($0.0, try $0.1.render(exchange.message)) }
        let output: [UInt8]
        do {
            output = try exchange.message.body.withUnsafeReadableBytes { bytes in
                try stylesheet.transform(bytes, name: "the body", parameters: values)
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

/// `validate: { xsd: FILE }`: lets a body through only if it validates; otherwise the step
/// fails with status 400 and the first violations with their lines.
struct XSDValidateStep: Processor {
    let schema: XSDSchema
    let file: String

    func process(_ exchange: Exchange) async throws -> StepResult {
        let violations: [XSDSchema.Violation]
        do {
            violations = try exchange.message.body.withUnsafeReadableBytes { try schema.validate($0, name: "the body") }
        } catch let error as XMLError {
            throw ProcessingError("\(error)", status: 400)
        }
        guard violations.isEmpty else {
            let count = violations.count
            throw ProcessingError(
                "the body is not valid against \(file) (\(count) problem\(count == 1 ? "" : "s")): \(XSDSchema.summary(violations))",
                status: 400
            )
        }
        return .next(exchange, detail: "valid against \(file)")
    }
}
