// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

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
    /// What kind of failure it was (``ErrorKind``), which decides whether it is retried.
    public var kind: String
    /// How many times the step ran before giving up (1 when it was not retried).
    public var attempts: Int
    /// Set when the message was handed to the dead letter channel: its id there.
    public var deadLetter: MessageID?

    public init(step: StepInfo, messageID: MessageID, reason: String, status: Int = 500, kind: String = ErrorKind.step, attempts: Int = 1) {
        self.step = step
        self.messageID = messageID
        self.reason = reason
        self.status = status
        self.kind = kind
        self.attempts = attempts
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
    /// What kind of failure it is (``ErrorKind``); nil: a failure of the step itself.
    public var kind: String?

    public init(_ message: String, status: Int? = nil, kind: String? = nil) {
        self.message = message
        self.status = status
        self.kind = kind
    }

    public var description: String { message }
}

/// The kinds of failure `on-error.retry.on` names. Adapters say which kind an error is;
/// anything else is a failure of the step itself (`step`), or of validation.
public enum ErrorKind {
    /// The peer could not be reached: refused, reset, unresolvable, closed early.
    public static let connection = "connection"
    /// The peer did not answer in time.
    public static let timeout = "timeout"
    /// The peer answered with a server error (HTTP 5xx).
    public static let serverError = "5xx"
    /// The message was refused: schema or format violations.
    public static let validation = "validation"
    /// Any other failure of a step.
    public static let step = "step"

    /// The kinds retried when a route's retry names none.
    public static let retriedByDefault: Set<String> = [connection, timeout, serverError]
    public static let all: [String] = [connection, timeout, serverError, validation, step]
}
