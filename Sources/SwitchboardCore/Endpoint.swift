// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// An endpoint URI split into parts, with its options checked and typed against the
/// adapter's ``EndpointSpec``. Made once at route load.
public struct Endpoint: Sendable {
    public var scheme: String
    public var user: String?
    /// A password given in the URI. It never appears in ``description``.
    public var password: String?
    public var host: String?
    public var port: Int?
    /// The path: `/orders` in `http:/orders`, `/api/v1` in `http://host/api/v1`.
    public var path: String
    /// Whether the URI had an authority part (`scheme://…`).
    public var hasAuthority: Bool
    /// Options from the query (and from the step), typed, defaults filled in.
    public var options: EndpointOptions
    /// Query parameters that are not options, kept for adapters whose spec passes them on.
    public var query: [(name: String, value: String)]
    public var role: EndpointRole
    /// The options of type `.template`, compiled by the route loader; adapters render them
    /// per message. Empty until the loader fills it in.
    public var templates: [String: any MessageTemplate] = [:]

    /// The URI with the password and secret option values replaced by `***`.
    public var description: String

    /// Parses `text` and checks it against `spec` for `role`.
    ///
    /// - Parameters:
    ///   - text: The URI as written in the route file.
    ///   - spec: The adapter's option spec.
    ///   - role: Whether the URI is a `from` or a `to`.
    ///   - extraOptions: Options written beside the URI in the step's map form.
    /// - Throws: ``EndpointError`` naming the first problem and its offset in `text`.
    public init(
        parsing text: String,
        spec: EndpointSpec,
        role: EndpointRole,
        extraOptions: [(name: String, value: String)] = []
    ) throws {
        let uri = try EndpointURI(text)
        guard spec.schemes.contains(uri.scheme) else {
            throw EndpointError("scheme '\(uri.scheme)' is not served by this adapter", offset: 0)
        }
        switch role {
        case .consumer where spec.consumerSyntax == nil:
            throw EndpointError("'\(uri.scheme):' endpoints cannot be used in 'from' (no consumer)", offset: 0)
        case .producer where spec.producerSyntax == nil:
            throw EndpointError("'\(uri.scheme):' endpoints cannot be used in 'to' (no producer)", offset: 0)
        default:
            break
        }
        let allowed = spec.options(for: role)
        var values: [String: OptionValue] = [:]
        var secrets: Set<String> = []
        var passThrough: [(name: String, value: String)] = []
        for (name, value, offset) in uri.query.map({ ($0.name, $0.value, $0.offset) }) + extraOptions.map({ ($0.name, $0.value, nil as Int?) }) {
            guard let option = allowed.first(where: { $0.name == name }) else {
                if role == .producer && spec.producerKeepsUnknownQuery && offset != nil {
                    passThrough.append((name, value))
                    continue
                }
                var message = "unknown option '\(name)' for '\(uri.scheme):' \(role == .consumer ? "consumers" : "producers")"
                if let guess = closestMatch(to: name, in: allowed.map(\.name)) {
                    message += "; did you mean '\(guess)'?"
                } else {
                    message += "; expected one of: \(allowed.map(\.name).joined(separator: ", "))"
                }
                throw EndpointError(message, offset: offset)
            }
            guard values[name] == nil else {
                throw EndpointError("option '\(name)' is given twice", offset: offset)
            }
            do {
                values[name] = try option.parse(value)
            } catch var error as EndpointError {
                error.offset = offset
                throw error
            }
            if option.secret { secrets.insert(name) }
        }
        for option in allowed where values[option.name] == nil {
            if let defaultValue = option.defaultValue {
                values[option.name] = try option.parse(defaultValue)
            }
        }
        self.scheme = uri.scheme
        self.user = uri.user
        self.password = uri.password
        self.host = uri.host
        self.port = uri.port
        self.path = uri.path
        self.hasAuthority = uri.hasAuthority
        self.options = EndpointOptions(values: values)
        self.query = passThrough
        self.role = role
        self.description = uri.redacted(secretOptions: secrets)
    }
}

/// Typed option values of an endpoint; every option with a default is present.
public struct EndpointOptions: Sendable {
    public var values: [String: OptionValue]

    public init(values: [String: OptionValue]) {
        self.values = values
    }

    public func string(_ name: String) -> String? {
        if case .string(let value) = values[name] { return value }
        return nil
    }

    public func int(_ name: String) -> Int? {
        if case .int(let value) = values[name] { return value }
        return nil
    }

    public func bool(_ name: String) -> Bool? {
        if case .bool(let value) = values[name] { return value }
        return nil
    }

    public func duration(_ name: String) -> Duration? {
        if case .duration(let value) = values[name] { return value }
        return nil
    }

    public func size(_ name: String) -> Int? {
        if case .size(let value) = values[name] { return value }
        return nil
    }
}

/// The syntactic parts of an endpoint URI: `scheme:[//[user[:password]@]host[:port]]path[?query]`.
public struct EndpointURI: Sendable {
    public var scheme: String
    public var hasAuthority: Bool
    public var user: String?
    public var password: String?
    public var host: String?
    public var port: Int?
    public var path: String
    /// Query parameters, percent-decoded, with the offset of each name in the text.
    public var query: [(name: String, value: String, offset: Int)]
    private var text: String

    /// The scheme of `text`, if it has a syntactically valid one.
    public static func scheme(of text: String) -> String? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let scheme = text[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") })
        else { return nil }
        return scheme.lowercased()
    }

    public init(_ text: String) throws {
        self.text = text
        guard let scheme = EndpointURI.scheme(of: text), let colon = text.firstIndex(of: ":") else {
            throw EndpointError("'\(text)' is not an endpoint URI: expected 'scheme:…' such as 'http://host:8080/path'", offset: 0)
        }
        self.scheme = scheme
        var rest = text[text.index(after: colon)...]
        var queryText: Substring = ""
        var queryOffset = 0
        if let question = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: question)...]
            queryOffset = text.distance(from: text.startIndex, to: question) + 1
            rest = rest[..<question]
        }
        hasAuthority = rest.hasPrefix("//")
        if hasAuthority {
            rest = rest.dropFirst(2)
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            var authority = rest[..<authorityEnd]
            let authorityOffset = text.distance(from: text.startIndex, to: authority.startIndex)
            path = String(rest[authorityEnd...])
            if let at = authority.lastIndex(of: "@") {
                let userInfo = authority[..<at]
                if let separator = userInfo.firstIndex(of: ":") {
                    user = percentDecoded(userInfo[..<separator])
                    password = percentDecoded(userInfo[userInfo.index(after: separator)...])
                } else {
                    user = percentDecoded(userInfo)
                }
                authority = authority[authority.index(after: at)...]
            }
            var hostPart = authority
            var portPart: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else {
                    throw EndpointError("unterminated IPv6 address in '\(text)'", offset: authorityOffset)
                }
                hostPart = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if after.hasPrefix(":") { portPart = after.dropFirst() }
            } else if let separator = authority.lastIndex(of: ":") {
                hostPart = authority[..<separator]
                portPart = authority[authority.index(after: separator)...]
            }
            if let portPart {
                guard let port = Int(portPart), (0...65535).contains(port) else {
                    throw EndpointError("port '\(portPart)' is not a number from 0 to 65535", offset: authorityOffset)
                }
                self.port = port
            }
            guard !hostPart.isEmpty else {
                throw EndpointError("'\(text)' has no host after '//'", offset: authorityOffset)
            }
            host = String(hostPart)
        } else {
            path = String(rest)
        }
        query = []
        var offset = queryOffset
        for pair in queryText.split(separator: "&", omittingEmptySubsequences: false) {
            defer { offset += pair.count + 1 }
            if pair.isEmpty { continue }
            let name: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                name = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                name = pair
                value = ""
            }
            guard let decodedName = percentDecoded(name), let decodedValue = percentDecoded(value) else {
                throw EndpointError("bad percent-encoding in query parameter '\(pair)'", offset: offset)
            }
            query.append((decodedName, decodedValue, offset))
        }
    }

    /// The URI text with the password and the named options' values replaced by `***`.
    func redacted(secretOptions: Set<String>) -> String {
        var result = scheme + ":"
        if hasAuthority {
            result += "//"
            if let user {
                result += user + (password == nil ? "" : ":***") + "@"
            }
            if let host { result += host.contains(":") ? "[\(host)]" : host }
            if let port { result += ":\(port)" }
        }
        result += path
        if !query.isEmpty {
            result += "?" + query.map { secretOptions.contains($0.name) ? "\($0.name)=***" : "\($0.name)=\($0.value)" }.joined(separator: "&")
        }
        return result
    }
}

/// Decodes `%XX` escapes; nil when an escape is malformed or the bytes are not UTF-8.
public func percentDecoded(_ text: some StringProtocol) -> String? {
    guard text.contains("%") else { return String(text) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        if byte == UInt8(ascii: "%") {
            guard let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        } else {
            bytes.append(byte)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

/// A compiled `${…}` value (an endpoint option of type `.template`), rendered per message.
public protocol MessageTemplate: Sendable {
    /// The value as written.
    var text: String { get }
    /// The value for one message.
    ///
    /// - Throws: When a placeholder cannot be filled (a body that does not parse for `${xpath:…}`).
    func render(_ message: Message) throws -> String
}
