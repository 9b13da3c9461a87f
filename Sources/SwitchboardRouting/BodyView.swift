import NIOCore
import SwitchboardCore
import SwitchboardTransform

/// The body of one message, parsed at most once as XML and once as JSON however many
/// predicates and templates of a step look at it.
struct BodyView {
    let message: Message
    private var xml: XMLDocument?
    private var json: JSONValue?

    init(_ message: Message) {
        self.message = message
    }

    /// The body parsed as XML (safely: no external entities, no network).
    mutating func xmlDocument() throws -> XMLDocument {
        if let xml { return xml }
        let document = try message.body.withUnsafeReadableBytes { try XMLDocument(bytes: $0, name: "the message body") }
        xml = document
        return document
    }

    /// The body parsed as JSON.
    mutating func jsonValue() throws -> JSONValue {
        if let json { return json }
        let value: JSONValue
        do {
            value = try message.body.withUnsafeReadableBytes { try JSONValue(bytes: $0) }
        } catch let error as JSONError {
            throw ProcessingError("the message body is not valid JSON: \(error)")
        }
        json = value
        return value
    }
}
