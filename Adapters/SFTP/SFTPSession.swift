// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CLibSSH2
import Foundation
import SwitchboardDropFolder
import Synchronization

/// How the server's host key is checked. There is no "accept any key".
public enum SFTPHostKeyCheck: Sendable, Equatable {
    /// The key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    case fingerprint(String)
    /// A known_hosts file (OpenSSH format) that must list the host with this key.
    case knownHosts(String)
}

/// How the client proves who it is.
public enum SFTPAuthentication: Sendable {
    case privateKey(path: String, passphrase: String?)
    case password(String)
}

/// A problem talking to an SFTP server; `connection` problems mean the session is gone.
public struct SFTPError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var connection: Bool

    public init(_ message: String, connection: Bool = false) {
        self.message = message
        self.connection = connection
    }

    public var description: String { message }
}

/// One SSH session with its SFTP channel (libssh2, blocking calls). Not shared between
/// threads at once: ``RemoteFolder`` serialises its use.
public final class SFTPSession: DropClient {
    public let host: String
    public let port: Int
    public let user: String
    private var socket: Int32 = -1
    private var session: OpaquePointer?
    private var sftp: OpaquePointer?

    private static let initialized: Int32 = libssh2_init(0)

    /// Connects, checks the host key, authenticates and opens SFTP.
    ///
    /// - Throws: ``SFTPError``; an unknown or changed host key is refused with the key's fingerprint.
    public init(host: String, port: Int, user: String, authentication: SFTPAuthentication, hostKey: SFTPHostKeyCheck, timeout: Duration) throws {
        self.host = host
        self.port = port
        self.user = user
        guard SFTPSession.initialized == 0 else { throw SFTPError("libssh2 failed to initialise", connection: true) }
        do {
            try open(authentication: authentication, hostKey: hostKey, timeout: timeout)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    public func close() {
        if let sftp { libssh2_sftp_shutdown(sftp) }
        sftp = nil
        if let session {
            libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "bye", "")
            libssh2_session_free(session)
        }
        session = nil
        if socket >= 0 { Glibc.close(socket) }
        socket = -1
    }

    private func open(authentication: SFTPAuthentication, hostKey: SFTPHostKeyCheck, timeout: Duration) throws {
        let milliseconds = Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000)
        socket = try SFTPSession.connect(host: host, port: port, timeoutMilliseconds: milliseconds)
        guard let session = libssh2_session_init_ex(nil, nil, nil, nil) else { throw SFTPError("cannot create an SSH session", connection: true) }
        self.session = session
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, milliseconds)
        guard libssh2_session_handshake(session, socket) == 0 else {
            throw SFTPError("SSH handshake with \(host):\(port) failed: \(lastError())", connection: true)
        }
        try checkHostKey(hostKey)
        let status: Int32
        switch authentication {
        case .privateKey(let path, let passphrase):
            status = libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
        case .password(let password):
            status = libssh2_userauth_password_ex(session, user, UInt32(user.utf8.count), password, UInt32(password.utf8.count), nil)
        }
        guard status == 0 else {
            throw SFTPError("\(host):\(port) refused user '\(user)': \(lastError())", connection: true)
        }
        guard let sftp = libssh2_sftp_init(session) else {
            throw SFTPError("\(host):\(port) did not open SFTP: \(lastError())", connection: true)
        }
        self.sftp = sftp
    }

    /// The server key's SHA-256 fingerprint, as OpenSSH prints it.
    public var hostKeyFingerprint: String {
        guard let session, let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else { return "unknown" }
        let bytes = Data(UnsafeRawBufferPointer(start: hash, count: 32))
        return "SHA256:" + bytes.base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    private func checkHostKey(_ check: SFTPHostKeyCheck) throws {
        guard let session else { return }
        let fingerprint = hostKeyFingerprint
        switch check {
        case .fingerprint(let expected):
            guard fingerprint == expected else {
                throw SFTPError("the host key of \(host):\(port) is \(fingerprint), not the pinned \(expected); refusing to connect", connection: true)
            }
        case .knownHosts(let path):
            guard let hosts = libssh2_knownhost_init(session) else { throw SFTPError("cannot read known hosts", connection: true) }
            defer { libssh2_knownhost_free(hosts) }
            guard libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) >= 0 else {
                throw SFTPError("cannot read the known_hosts file \(path)", connection: true)
            }
            var length = 0
            var type: Int32 = 0
            guard let key = libssh2_session_hostkey(session, &length, &type) else { throw SFTPError("the server sent no host key", connection: true) }
            var found: UnsafeMutablePointer<libssh2_knownhost>?
            let result = libssh2_knownhost_checkp(hosts, host, Int32(port), key, length, LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW, &found)
            switch result {
            case LIBSSH2_KNOWNHOST_CHECK_MATCH:
                return
            case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
                throw SFTPError("the host key of \(host):\(port) (\(fingerprint)) does not match the one in \(path): it changed; refusing to connect", connection: true)
            default:
                throw SFTPError("\(host):\(port) is not in \(path) (its host key is \(fingerprint)); refusing to connect", connection: true)
            }
        }
    }

    private func lastError() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &message, &length, 0)
        let text = message.map { String(cString: $0) } ?? "error"
        return "\(text) (\(code))"
    }

    private func failure(_ what: String, _ path: String) -> SFTPError {
        guard let sftp else { return SFTPError("\(what) \(path): not connected", connection: true) }
        let code = libssh2_sftp_last_error(sftp)
        let reason: String
        switch UInt(code) {
        case LIBSSH2_FX_NO_SUCH_FILE, LIBSSH2_FX_NO_SUCH_PATH: reason = "no such file"
        case LIBSSH2_FX_PERMISSION_DENIED: reason = "permission denied"
        case LIBSSH2_FX_FILE_ALREADY_EXISTS: reason = "it already exists"
        case LIBSSH2_FX_FAILURE: reason = "the server refused"
        case LIBSSH2_FX_OK: reason = lastError()
        default: reason = "SFTP error \(code)"
        }
        // A session error (not an SFTP status) means the connection is in trouble.
        let sessionError = session.map { libssh2_session_last_errno($0) } ?? -1
        return SFTPError("\(what) \(path): \(reason)", connection: sessionError != 0 && sessionError != LIBSSH2_ERROR_SFTP_PROTOCOL)
    }

    private func sftpChannel() throws -> OpaquePointer {
        guard let sftp else { throw SFTPError("not connected", connection: true) }
        return sftp
    }

    // MARK: Files

    public func list(_ path: String) throws -> [DropEntry] {
        let sftp = try sftpChannel()
        guard let handle = libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), 0, 0, LIBSSH2_SFTP_OPENDIR) else {
            throw failure("cannot list", path)
        }
        defer { libssh2_sftp_close_handle(handle) }
        var entries: [DropEntry] = []
        var buffer = [CChar](repeating: 0, count: 1024)
        while true {
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            let count = libssh2_sftp_readdir_ex(handle, &buffer, buffer.count, nil, 0, &attributes)
            if count == 0 { break }
            if count < 0 { throw failure("cannot list", path) }
            let name = String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard name != ".", name != ".." else { continue }
            entries.append(SFTPSession.entry(name, attributes))
        }
        return entries
    }

    static func entry(_ name: String, _ attributes: LIBSSH2_SFTP_ATTRIBUTES) -> DropEntry {
        let kind = UInt(attributes.permissions) & UInt(LIBSSH2_SFTP_S_IFMT)
        return DropEntry(
            name: name,
            isDirectory: kind == UInt(LIBSSH2_SFTP_S_IFDIR),
            isFile: kind == UInt(LIBSSH2_SFTP_S_IFREG),
            size: Int64(attributes.filesize),
            // SFTP version 3 carries whole seconds.
            modifiedNanos: Int64(attributes.mtime) * 1_000_000_000
        )
    }

    public func exists(_ path: String) throws -> Bool {
        try stat(path) != nil
    }

    public func stat(_ path: String) throws -> DropEntry? {
        let sftp = try sftpChannel()
        var attributes = LIBSSH2_SFTP_ATTRIBUTES()
        guard libssh2_sftp_stat_ex(sftp, path, UInt32(path.utf8.count), LIBSSH2_SFTP_STAT, &attributes) == 0 else {
            let error = failure("cannot stat", path)
            if error.connection { throw error }
            return nil
        }
        return SFTPSession.entry((path as NSString).lastPathComponent, attributes)
    }

    public func read(_ path: String) throws -> [UInt8] {
        let sftp = try sftpChannel()
        guard let handle = libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), UInt(LIBSSH2_FXF_READ), 0, LIBSSH2_SFTP_OPENFILE) else {
            throw failure("cannot read", path)
        }
        defer { libssh2_sftp_close_handle(handle) }
        var content: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        while true {
            let count = libssh2_sftp_read(handle, &buffer, buffer.count)
            if count == 0 { break }
            if count < 0 { throw failure("cannot read", path) }
            content += buffer.prefix(count).map { UInt8(bitPattern: $0) }
        }
        return content
    }

    public func write(_ bytes: [UInt8], to path: String) throws {
        let sftp = try sftpChannel()
        let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC)
        guard let handle = libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), flags, 0o644, LIBSSH2_SFTP_OPENFILE) else {
            throw failure("cannot write", path)
        }
        defer { libssh2_sftp_close_handle(handle) }
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let written = raw.baseAddress.map { base in
                    libssh2_sftp_write(handle, base.advanced(by: offset).assumingMemoryBound(to: CChar.self), raw.count - offset)
                } ?? 0
                if written < 0 { throw failure("cannot write", path) }
                offset += written
            }
        }
    }

    /// Renames without replacing an existing file (SFTP version 3 refuses to).
    public func rename(_ from: String, to: String) throws {
        let sftp = try sftpChannel()
        let flags = Int(LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE)
        guard libssh2_sftp_rename_ex(sftp, from, UInt32(from.utf8.count), to, UInt32(to.utf8.count), flags) == 0 else {
            throw failure("cannot move \(from) to", to)
        }
    }

    public func makeDirectory(_ path: String) throws {
        let sftp = try sftpChannel()
        guard libssh2_sftp_mkdir_ex(sftp, path, UInt32(path.utf8.count), 0o755) == 0 else {
            let error = failure("cannot create the folder", path)
            if try stat(path)?.isDirectory == true { return }
            throw error
        }
    }

    public func remove(_ path: String) throws {
        let sftp = try sftpChannel()
        guard libssh2_sftp_unlink_ex(sftp, path, UInt32(path.utf8.count)) == 0 else {
            throw failure("cannot delete", path)
        }
    }

    /// A TCP connection, given up after the timeout.
    static func connect(host: String, port: Int, timeoutMilliseconds: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else {
            throw SFTPError("cannot resolve \(host)", connection: true)
        }
        defer { freeaddrinfo(results) }
        var lastReason = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let descriptor = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard descriptor >= 0 else { continue }
            let flags = fcntl(descriptor, F_GETFL)
            _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
            var status = Glibc.connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if status != 0, errno == EINPROGRESS {
                var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, Int32(timeoutMilliseconds)) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
                    status = error == 0 ? 0 : -1
                    if error != 0 { errno = error }
                } else {
                    errno = ETIMEDOUT
                }
            }
            if status == 0 {
                _ = fcntl(descriptor, F_SETFL, flags)
                return descriptor
            }
            lastReason = String(cString: strerror(errno))
            Glibc.close(descriptor)
        }
        throw SFTPError("cannot connect to \(host):\(port): \(lastReason)", connection: true)
    }
}
