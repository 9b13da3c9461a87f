// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Writes one compact line per log event to standard error:
/// `2026-11-21T10:22:01.123Z info  exchange completed route=orders message-id=… duration=1.2ms`.
public struct NodeLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, level: Logger.Level) {
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = NodeLogHandler.timestamp()
        line += " "
        line += event.level.rawValue
        line += String(repeating: " ", count: max(1, 9 - event.level.rawValue.count))
        line += "\(event.message)"
        var merged = self.metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted(by: NodeLogHandler.keyOrder) {
            guard let value = merged[key] else { continue }
            let text = "\(value)"
            line += " \(key)="
            line += text.contains(" ") || text.isEmpty ? "\"\(text)\"" : text
        }
        line += "\n"
        // One write(2) per line, so lines from different threads never interleave.
        line.withUTF8 { bytes in
            _ = Glibc.write(2, bytes.baseAddress, bytes.count)
        }
    }

    /// Route and ids first, then the rest alphabetically.
    private static func keyOrder(_ a: String, _ b: String) -> Bool {
        let first = ["route", "message-id", "correlation-id", "step"]
        let ia = first.firstIndex(of: a) ?? first.count
        let ib = first.firstIndex(of: b) ?? first.count
        return ia != ib ? ia < ib : a < b
    }

    private static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}
