/// A place in a configuration file; lines and columns count from 1.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The location `offset` characters further along the same line.
    public func advanced(by offset: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column + offset)
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem found in configuration, printed the way compilers print them.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case error
        case warning
    }

    public var location: SourceLocation
    public var severity: Severity
    public var message: String

    public init(_ severity: Severity = .error, at location: SourceLocation, _ message: String) {
        self.location = location
        self.severity = severity
        self.message = message
    }

    /// `Routes/orders.yaml:12:7: error: unknown step 'sett-header'`
    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

/// Configuration that could not be loaded, with every problem found, not just the first.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// An endpoint that cannot be used: a bad URI, an unknown option, a value of the wrong type.
public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Offset of the problem in the URI text, in characters, when known.
    public var offset: Int?

    public init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    public var description: String { message }
}

/// A step that failed while processing a message: names the route, the step and the cause.
public struct StepFailure: Error, Sendable, CustomStringConvertible {
    public var step: StepInfo
    public var messageID: MessageID
    /// The cause, as text (the underlying error may not be Sendable).
    public var reason: String
    /// The HTTP-ish status the failure suggests to a request-reply source (500 unless a
    /// step knows better, such as 504 for a timeout).
    public var status: Int

    public init(step: StepInfo, messageID: MessageID, reason: String, status: Int = 500) {
        self.step = step
        self.messageID = messageID
        self.reason = reason
        self.status = status
    }

    public var description: String {
        var text = "route '\(step.routeID)' step \(step.path) (\(step.kind)"
        if let endpoint = step.endpoint { text += " \(endpoint)" }
        text += "): \(reason)"
        return text
    }
}

/// A runtime problem with its own message, thrown by steps and adapters.
public struct ProcessingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The status a request-reply source should answer with, if the error suggests one.
    public var status: Int?

    public init(_ message: String, status: Int? = nil) {
        self.message = message
        self.status = status
    }

    public var description: String { message }
}
