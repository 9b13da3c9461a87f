// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SwitchboardCore

/// What the audit trail keeps of message bodies and which header values it hides.
public struct AuditPolicy: Sendable {
    /// How much of a body each snapshot keeps.
    public struct BodySnapshot: Sendable, Equatable, CustomStringConvertible {
        /// Keep a SHA-256 of the body.
        public var hash: Bool
        /// Keep the first this many bytes (0: none).
        public var prefixBytes: Int

        public init(hash: Bool, prefixBytes: Int) {
            self.hash = hash
            self.prefixBytes = prefixBytes
        }

        /// Size only.
        public static let none = BodySnapshot(hash: false, prefixBytes: 0)
        /// SHA-256 and size.
        public static let hashOnly = BodySnapshot(hash: true, prefixBytes: 0)
        /// The default: SHA-256, size and the first 4 KiB.
        public static let `default` = BodySnapshot(hash: true, prefixBytes: 4096)

        /// Parses `none`, `hash`, a size (`8KiB`: the first 8 KiB) or `hash+SIZE`.
        public init?(parsing text: String) {
            switch text {
            case "none": self = .none
            case "hash": self = .hashOnly
            case "default": self = .default
            default:
                if text.hasPrefix("hash+"), let size = parseSize(String(text.dropFirst(5))) {
                    self.init(hash: true, prefixBytes: size)
                } else if let size = parseSize(text) {
                    self.init(hash: false, prefixBytes: size)
                } else {
                    return nil
                }
            }
        }

        public var description: String {
            switch (hash, prefixBytes) {
            case (false, 0): "none"
            case (true, 0): "hash"
            case (false, let size): "\(size) bytes"
            case (true, let size): "hash+\(size) bytes"
            }
        }
    }

    /// Header names whose values are always masked.
    public static let defaultMask = ["Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"]

    public var body: BodySnapshot
    /// Header names stored as `***`, compared without regard to case. A header named like a
    /// secret endpoint option (`password`) or ending in `.NAME` of one (`http.query.password`)
    /// is masked as well.
    public var mask: [String] {
        didSet { matcher = MaskMatcher(mask) }
    }
    /// The mask names lower-cased once, compared byte by byte (this runs for every header
    /// of every exchange).
    private(set) var matcher: MaskMatcher

    public init(body: BodySnapshot = .default, mask: [String] = AuditPolicy.defaultMask) {
        self.body = body
        self.mask = mask
        self.matcher = MaskMatcher(mask)
    }

    /// Whether the value of header `name` is hidden.
    public func masks(_ name: String) -> Bool {
        matcher.matches(name)
    }

    /// Appends the header snapshot as a JSON array of `[name, value]` pairs, masked values
    /// as `***`.
    func appendSnapshot<Sink: ByteSink & ~Copyable>(_ headers: Headers, to json: inout Sink) {
        json.append(UInt8(ascii: "["))
        // By index: a `for field in` loop copies each field.
        let fields = headers.fields
        for index in fields.indices {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "["))
            appendJSONQuoted(fields[index].name, to: &json)
            json.append(UInt8(ascii: ","))
            if matcher.matches(fields[index].name) {
                appendStatic(#""***""#, to: &json)
            } else {
                appendJSONQuoted(fields[index].value, to: &json)
            }
            json.append(UInt8(ascii: "]"))
        }
        json.append(UInt8(ascii: "]"))
    }
}

/// Header names to mask: `token` matches `Token` and `http.query.token`.
struct MaskMatcher: Sendable {
    private let names: HeaderNameTable

    init(_ mask: [String]) {
        names = HeaderNameTable(mask)
    }

    func matches(_ name: String) -> Bool {
        names.containsLastSegment(of: name)
    }
}

/// One stored audit event: a route or step that an exchange went through.
///
/// The trail stores a route's start (with the message as it arrived) and every route's and
/// step's end (completed or failed, with start time and duration). Step starts are not
/// stored: a step's end row carries its start time. Header and body snapshots are stored
/// on the route start and on each step end that changed them, so a trace shows what each
/// step changed.
public struct AuditRecord: Sendable, Equatable, Codable {
    /// Position in the store, assigned on insert; increases with time.
    public var sequence: Int64?
    public var messageID: String
    public var correlationID: String
    public var parentID: String?
    /// W3C trace id (32 hex digits).
    public var traceID: String?
    public var routeID: String
    /// Whether the row belongs to the route a consumer delivered to (not a route called
    /// from it with `route:`).
    public var entry: Bool
    /// Step kind (`to`, `choice`); nil for a route row.
    public var stepKind: String?
    public var stepIndex: Int?
    public var stepPath: String?
    /// The endpoint, credentials removed.
    public var endpoint: String?
    /// `started`, `completed` or `failed`.
    public var phase: String
    /// Start of the step or route, microseconds since the Unix epoch.
    public var startedAt: Int64
    public var durationMicros: Int64?
    public var error: String?
    public var detail: String?
    /// JSON array of `[name, value]` pairs; nil when the step left the headers as they were.
    public var headers: String?
    /// SHA-256 of the body (hex); nil when the step left the body as it was or the policy
    /// keeps no hash.
    public var bodyHash: String?
    /// The first bytes of the body, as the policy allows; nil when unchanged or not kept.
    public var bodyPrefix: [UInt8]?
    /// Whether the body changed (or, on a route start, is the body that arrived).
    public var bodyChanged: Bool
    public var bodySizeIn: Int?
    public var bodySize: Int

    public init(
        sequence: Int64? = nil, messageID: String, correlationID: String, parentID: String? = nil, traceID: String? = nil,
        routeID: String, entry: Bool, stepKind: String? = nil, stepIndex: Int? = nil, stepPath: String? = nil,
        endpoint: String? = nil, phase: String, startedAt: Int64, durationMicros: Int64? = nil, error: String? = nil,
        detail: String? = nil, headers: String? = nil, bodyHash: String? = nil, bodyPrefix: [UInt8]? = nil,
        bodyChanged: Bool = false, bodySizeIn: Int? = nil, bodySize: Int
    ) {
        self.sequence = sequence
        self.messageID = messageID
        self.correlationID = correlationID
        self.parentID = parentID
        self.traceID = traceID
        self.routeID = routeID
        self.entry = entry
        self.stepKind = stepKind
        self.stepIndex = stepIndex
        self.stepPath = stepPath
        self.endpoint = endpoint
        self.phase = phase
        self.startedAt = startedAt
        self.durationMicros = durationMicros
        self.error = error
        self.detail = detail
        self.headers = headers
        self.bodyHash = bodyHash
        self.bodyPrefix = bodyPrefix
        self.bodyChanged = bodyChanged
        self.bodySizeIn = bodySizeIn
        self.bodySize = bodySize
    }

    /// Whether this is a route row rather than a step row.
    public var isRoute: Bool { stepKind == nil }
}
