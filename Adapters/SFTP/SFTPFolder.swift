import Foundation
import SwitchboardFile

/// A folder on an SFTP server, as a ``DropFolder``. One session is kept and reused across
/// polls; a call that finds the connection gone drops it, and the next call connects again,
/// waiting longer after each failed attempt (1 s doubling to 60 s).
public final class SFTPFolder: DropFolder, @unchecked Sendable {
    // @unchecked: the session and the backoff state are only touched under `lock`.
    public let root: String
    public let identity: String
    private let connect: () throws -> SFTPSession
    private let lock = NSLock()
    private var session: SFTPSession?
    private var failures = 0
    private var retryAt = Date.distantPast

    public init(root: String, identity: String, connect: @escaping () throws -> SFTPSession) {
        self.root = root
        self.identity = identity
        self.connect = connect
    }

    /// Runs `body` with a connected session.
    public func with<T>(_ body: (SFTPSession) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if session == nil {
            let now = Date()
            guard now >= retryAt else {
                throw SFTPError("\(identity): not connected; trying again in \(Int(retryAt.timeIntervalSince(now).rounded(.up))) s", connection: true)
            }
            do {
                session = try connect()
                failures = 0
            } catch {
                failures += 1
                retryAt = now.addingTimeInterval(min(60, pow(2, Double(failures - 1))))
                throw error
            }
        }
        guard let session else { throw SFTPError("\(identity): not connected", connection: true) }
        do {
            return try body(session)
        } catch let error as SFTPError where error.connection {
            session.close()
            self.session = nil
            throw error
        }
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        session?.close()
        session = nil
    }

    public func prepare() throws {
        try makeDirectories(root)
    }

    public func list(_ folder: String) throws -> [DropEntry] {
        try with { try $0.list(folder) }
    }

    public func exists(_ path: String) throws -> Bool {
        try with { try $0.stat(path) != nil }
    }

    public func read(_ path: String) throws -> [UInt8] {
        try with { try $0.read(path) }
    }

    public func write(_ bytes: [UInt8], to path: String) throws {
        try with { try $0.write(bytes, to: path) }
    }

    public func rename(_ from: String, to: String) throws {
        try with { try $0.rename(from, to: to) }
    }

    public func makeDirectories(_ path: String) throws {
        try with { session in
            var built = ""
            for part in path.split(separator: "/") {
                built += "/" + part
                if try session.stat(built)?.isDirectory == true { continue }
                try session.makeDirectory(built)
            }
        }
    }

    public func remove(_ path: String) throws {
        try with { try $0.remove(path) }
    }
}
