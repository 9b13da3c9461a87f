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
