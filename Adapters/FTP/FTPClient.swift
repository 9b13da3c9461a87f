// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CCurl
import Foundation
import SwitchboardDropFolder

/// A problem talking to an FTP server.
public struct FTPError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Whether the file is simply not there (so `exists` can say no).
    public var notFound: Bool
    /// Whether the server could not be reached or the connection broke.
    public var connection: Bool

    public init(_ message: String, notFound: Bool = false, connection: Bool = false) {
        self.message = message
        self.notFound = notFound
        self.connection = connection
    }

    public var description: String { message }
}

/// FTP or explicit FTPS (AUTH TLS) with libcurl, passive mode. One curl handle, so the
/// control connection is kept and reused between calls; not for use by two threads at once
/// (``RemoteFolder`` serialises it).
public final class FTPClient: DropClient {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String
        /// Explicit FTPS: TLS required on the control and data connections.
        public var tls: Bool
        /// Certificates to trust for FTPS besides the system's (a private CA or the server's own).
        public var caFile: String?
        public var timeout: Duration

        public init(host: String, port: Int, user: String, password: String, tls: Bool, caFile: String?, timeout: Duration) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.tls = tls
            self.caFile = caFile
            self.timeout = timeout
        }
    }

    public let settings: Settings
    private let curl: UnsafeMutableRawPointer

    private static let initialized: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    public init(_ settings: Settings) throws {
        _ = FTPClient.initialized
        guard let curl = curl_easy_init() else { throw FTPError("cannot create a curl handle") }
        self.settings = settings
        self.curl = curl
    }

    deinit {
        curl_easy_cleanup(curl)
    }

    /// Connections close with the client; nothing to do before.
    public func close() {}

    private var base: String {
        "ftp://\(settings.host.contains(":") ? "[\(settings.host)]" : settings.host):\(settings.port)"
    }

    private func url(_ path: String, folder: Bool = false) -> String {
        let encoded = path.split(separator: "/", omittingEmptySubsequences: true)
            .map { String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/;"))) ?? String($0) }
            .joined(separator: "/")
        return base + "/" + encoded + (folder && !encoded.isEmpty ? "/" : "")
    }

    /// Collects what a transfer brings in.
    private final class Sink {
        var bytes: [UInt8] = []
        var upload: [UInt8] = []
        var offset = 0
    }

    /// Runs one request on the shared handle, with the connection settings applied afresh.
    private func perform(_ target: String, what: String, configure: (UnsafeMutableRawPointer) -> Void = { _ in }) throws -> [UInt8] {
        curl_easy_reset(curl)
        let sink = Sink()
        let timeoutMs = Int(settings.timeout.components.seconds) * 1000 + Int(settings.timeout.components.attoseconds / 1_000_000_000_000_000)
        _ = switchboard_curl_string(curl, CURLOPT_URL, target)
        _ = switchboard_curl_string(curl, CURLOPT_USERNAME, settings.user)
        _ = switchboard_curl_string(curl, CURLOPT_PASSWORD, settings.password)
        _ = switchboard_curl_long(curl, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs)
        _ = switchboard_curl_long(curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, max(1, timeoutMs / 1000))
        // A data transfer that stalls (under 1 byte/s for the timeout) is given up, not waited on forever.
        _ = switchboard_curl_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = switchboard_curl_long(curl, CURLOPT_LOW_SPEED_TIME, max(1, timeoutMs / 1000))
        _ = switchboard_curl_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = switchboard_curl_long(curl, CURLOPT_FTP_USE_EPSV, 1)
        if settings.tls {
            _ = switchboard_curl_long(curl, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
            if let caFile = settings.caFile { _ = switchboard_curl_string(curl, CURLOPT_CAINFO, caFile) }
        }
        _ = switchboard_curl_pointer(curl, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
        _ = switchboard_curl_callback(curl, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        _ = switchboard_curl_pointer(curl, CURLOPT_READDATA, Unmanaged.passUnretained(sink).toOpaque())
        _ = switchboard_curl_callback(curl, CURLOPT_READFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            let length = min(size * count, sink.upload.count - sink.offset)
            sink.upload.withUnsafeBytes { source in
                if let base = source.baseAddress { memcpy(data, base + sink.offset, length) }
            }
            sink.offset += length
            return length
        }
        configure(curl)
        let code = withExtendedLifetime(sink) { curl_easy_perform(curl) }
        guard code == CURLE_OK else {
            var response = 0
            _ = switchboard_curl_info_long(curl, CURLINFO_RESPONSE_CODE, &response)
            let reason = String(cString: curl_easy_strerror(code))
            let notFound = code == CURLE_REMOTE_FILE_NOT_FOUND || code == CURLE_REMOTE_ACCESS_DENIED || response == 550
            let connection = [CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING].contains(code)
            throw FTPError("\(what): \(reason)\(response > 0 ? " (FTP \(response))" : "")", notFound: notFound, connection: connection)
        }
        return sink.bytes
    }

    private func quote(_ commands: [String], what: String) throws {
        var list: UnsafeMutablePointer<curl_slist>?
        for command in commands { list = curl_slist_append(list, command) }
        defer { curl_slist_free_all(list) }
        _ = try perform(url("/", folder: true), what: what) { curl in
            _ = switchboard_curl_long(curl, CURLOPT_NOBODY, 1)
            _ = switchboard_curl_pointer(curl, CURLOPT_QUOTE, UnsafeMutableRawPointer(list))
        }
    }

    // MARK: Files

    /// The folder's entries from MLSD: type, size and modification time (whole seconds, UTC).
    public func list(_ path: String) throws -> [DropEntry] {
        let bytes = try perform(url(path, folder: true), what: "cannot list \(path)") { curl in
            _ = switchboard_curl_string(curl, CURLOPT_CUSTOMREQUEST, "MLSD")
        }
        return String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).compactMap(FTPClient.entry)
    }

    /// One MLSD line: `type=file;size=3;modify=20261121162831; name`.
    static func entry(_ line: Substring) -> DropEntry? {
        guard let space = line.firstIndex(of: " ") else { return nil }
        let name = String(line[line.index(after: space)...])
        var facts: [String: String] = [:]
        for fact in line[..<space].split(separator: ";") {
            let parts = fact.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { facts[parts[0].lowercased()] = String(parts[1]) }
        }
        let type = facts["type"]?.lowercased() ?? ""
        guard type != "cdir", type != "pdir", name != ".", name != ".." else { return nil }
        var modified: Int64 = 0
        if let stamp = facts["modify"], stamp.count >= 14 {
            var parts = tm()
            let digits = Array(stamp.utf8)
            func number(_ from: Int, _ length: Int) -> Int32 {
                Int32(String(decoding: digits[from..<(from + length)], as: UTF8.self)) ?? 0
            }
            parts.tm_year = number(0, 4) - 1900
            parts.tm_mon = number(4, 2) - 1
            parts.tm_mday = number(6, 2)
            parts.tm_hour = number(8, 2)
            parts.tm_min = number(10, 2)
            parts.tm_sec = number(12, 2)
            modified = Int64(timegm(&parts)) * 1_000_000_000
        }
        return DropEntry(name: name, isDirectory: type == "dir", isFile: type == "file", size: Int64(facts["size"] ?? "") ?? 0, modifiedNanos: modified)
    }

    public func exists(_ path: String) throws -> Bool {
        let parent = (path as NSString).deletingLastPathComponent
        do {
            return try list(parent.isEmpty ? "/" : parent).contains { $0.name == (path as NSString).lastPathComponent }
        } catch let error as FTPError where error.notFound {
            return false
        }
    }

    public func read(_ path: String) throws -> [UInt8] {
        try perform(url(path), what: "cannot read \(path)")
    }

    public func write(_ bytes: [UInt8], to path: String) throws {
        let sink = Sink()
        sink.upload = bytes
        _ = try withExtendedLifetime(sink) {
            try perform(url(path), what: "cannot write \(path)") { curl in
            _ = switchboard_curl_pointer(curl, CURLOPT_READDATA, Unmanaged.passUnretained(sink).toOpaque())
            _ = switchboard_curl_long(curl, CURLOPT_UPLOAD, 1)
            _ = switchboard_curl_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(bytes.count))
            }
        }
    }

    public func rename(_ from: String, to: String) throws {
        try quote(["RNFR \(from)", "RNTO \(to)"], what: "cannot move \(from) to \(to)")
    }

    public func makeDirectory(_ path: String) throws {
        try quote(["MKD \(path)"], what: "cannot create the folder \(path)")
    }

    public func remove(_ path: String) throws {
        try quote(["DELE \(path)"], what: "cannot delete \(path)")
    }
}
