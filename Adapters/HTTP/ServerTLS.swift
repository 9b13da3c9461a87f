// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOSSL
import Synchronization
import X509

/// TLS for a listener (the route listener, the admin API): a certificate chain and its key
/// from PEM files, optionally the authorities whose client certificates it accepts.
///
/// Everything is checked when it loads: files that do not read or parse, a key that is not
/// the certificate's, a certificate past its end. The files are read again by
/// ``reloadIfChanged()`` when they change, and every handshake after that presents the new
/// certificate (rotation without restart); a new pair that does not load leaves the old one
/// in use.
public final class ServerTLS: Sendable {
    public enum ClientAuth: String, Sendable, CaseIterable {
        /// No client certificate is asked for.
        case none
        /// A client certificate is asked for and verified if given.
        case optional
        /// A connection without a valid client certificate is refused in the handshake.
        case require
    }

    public struct Settings: Sendable, Equatable {
        public var certificateFile: String
        public var keyFile: String
        public var clientCAFile: String?
        public var clientAuth: ClientAuth
        public var minimumVersion: TLSVersion

        public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil, clientAuth: ClientAuth = .none, minimumVersion: TLSVersion = .tlsv12) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.clientCAFile = clientCAFile
            self.clientAuth = clientAuth
            self.minimumVersion = minimumVersion
        }
    }

    /// A problem with the files, naming the file.
    public struct LoadError: Error, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "\(file): \(reason)" }
    }

    /// A certificate chain and key that load and match.
    struct Identity: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let notValidAfter: Date
        let subject: String
        /// The files' modification times when read: a change reloads them.
        let stamp: [Date?]

        /// What a handshake is given: made once per load, not per connection.
        var override: NIOSSLContextConfigurationOverride {
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain.map { .certificate($0) }
            override.privateKey = .privateKey(key)
            return override
        }
    }

    public let settings: Settings
    /// The identity handshakes present, shared with the handshake callback.
    private final class Holder: Sendable {
        let identity: Mutex<Identity>
        /// The identity's handshake override, replaced with it.
        let override: Mutex<NIOSSLContextConfigurationOverride>

        init(_ identity: Identity) {
            self.identity = Mutex(identity)
            self.override = Mutex(identity.override)
        }

        func replace(with identity: Identity) {
            self.identity.withLock { $0 = identity }
            override.withLock { $0 = identity.override }
        }
    }

    private let holder: Holder
    /// Made once; each handshake takes the current identity through its callback.
    public let configuration: TLSConfiguration
    let context: NIOSSLContext

    /// Certificates that end within this time are named in a warning at load.
    public static let expiryWarning: Duration = .seconds(30 * 86_400)

    public init(_ settings: Settings) throws {
        self.settings = settings
        let identity = try Self.load(settings)
        holder = Holder(identity)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: identity.chain.map { .certificate($0) }, privateKey: .privateKey(identity.key)
        )
        configuration.minimumTLSVersion = settings.minimumVersion
        configuration.applicationProtocols = ["http/1.1"]
        if let clientCA = settings.clientCAFile {
            let authorities: [NIOSSLCertificate]
            do {
                authorities = try NIOSSLCertificate.fromPEMFile(clientCA)
            } catch {
                throw LoadError(file: clientCA, reason: "cannot read the client certificate authorities (PEM): \(error)")
            }
            guard !authorities.isEmpty else { throw LoadError(file: clientCA, reason: "holds no certificate") }
            configuration.trustRoots = .certificates(authorities)
            configuration.sendCANameList = true
            configuration.certificateVerification = settings.clientAuth == .require ? .noHostnameVerification : .optionalVerification
        } else if settings.clientAuth != .none {
            throw LoadError(file: settings.certificateFile, reason: "client-auth \(settings.clientAuth.rawValue) needs client-ca: the authorities whose client certificates are accepted")
        }
        // Every handshake presents the identity loaded last.
        let state = holder
        configuration.sslContextCallback = { _, promise in
            promise.succeed(state.override.withLock { $0 })
        }
        self.configuration = configuration
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(file: settings.certificateFile, reason: "cannot serve TLS with this certificate and key: \(error)")
        }
    }

    /// When the certificate in use ends.
    public var notValidAfter: Date { holder.identity.withLock { $0.notValidAfter } }

    /// The certificate in use's subject (RFC 4514).
    public var subject: String { holder.identity.withLock { $0.subject } }

    /// Reads the files again if one changed since they were read.
    ///
    /// - Returns: nil when nothing changed; else the certificate's new end, or the error that
    ///   left the old certificate in use (read again at the next change).
    public func reloadIfChanged() -> Result<Date, LoadError>? {
        let stamp = Self.stamps(settings)
        guard stamp != holder.identity.withLock({ $0.stamp }) else { return nil }
        do {
            let identity = try Self.load(settings)
            holder.replace(with: identity)
            return .success(identity.notValidAfter)
        } catch let error as LoadError {
            // Not tried again until the files change again.
            holder.identity.withLock { $0 = Identity(chain: $0.chain, key: $0.key, notValidAfter: $0.notValidAfter, subject: $0.subject, stamp: stamp) }
            return .failure(error)
        } catch {
            return .failure(LoadError(file: settings.certificateFile, reason: "\(error)"))
        }
    }

    static func stamps(_ settings: Settings) -> [Date?] {
        [settings.certificateFile, settings.keyFile].map { file in
            (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
        }
    }

    /// Reads and checks a certificate chain and its key.
    static func load(_ settings: Settings) throws -> Identity {
        let stamp = stamps(settings)
        func text(_ file: String, _ what: String) throws -> String {
            do {
                return try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw LoadError(file: file, reason: "cannot read the \(what): \((error as NSError).localizedDescription)")
            }
        }
        let certificateText = try text(settings.certificateFile, "certificate")
        let keyText = try text(settings.keyFile, "private key")
        let chain: [NIOSSLCertificate]
        let certificate: Certificate
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateText.utf8))
            certificate = try Certificate(pemEncoded: certificateText)
        } catch {
            throw LoadError(file: settings.certificateFile, reason: "is not a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw LoadError(file: settings.certificateFile, reason: "holds no certificate") }
        let key: NIOSSLPrivateKey
        let privateKey: Certificate.PrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyText.utf8), format: .pem)
            privateKey = try Certificate.PrivateKey(pemEncoded: keyText)
        } catch {
            throw LoadError(file: settings.keyFile, reason: "is not a PEM private key (unencrypted PKCS#8, RSA or EC): \(error)")
        }
        guard privateKey.publicKey == certificate.publicKey else {
            throw LoadError(file: settings.keyFile, reason: "is not the key of the certificate in \(settings.certificateFile)")
        }
        guard certificate.notValidAfter > Date() else {
            throw LoadError(file: settings.certificateFile, reason: "the certificate expired on \(Self.formatted(certificate.notValidAfter))")
        }
        return Identity(chain: chain, key: key, notValidAfter: certificate.notValidAfter, subject: "\(certificate.subject)", stamp: stamp)
    }

    /// A date as the warnings and errors write it: `2027-01-31 12:00:00 UTC`.
    public static func formatted(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: date)
    }

    /// Looks at the files every `interval` until cancelled: logs a reload (or why the old
    /// certificate stays), and keeps `switchboard_tls_certificate_expiry_seconds{listener}`
    /// at the seconds left before the certificate in use ends.
    public func watch(every interval: Duration, listener: String, metrics: (any MetricsFactory)?, logger: Logger) async {
        let gauge = Gauge(label: "switchboard_tls_certificate_expiry_seconds", dimensions: [("listener", listener)], factory: metrics ?? NOOPMetricsHandler.instance)
        while !Task.isCancelled {
            switch reloadIfChanged() {
            case .success(let end):
                logger.notice("TLS certificate reloaded", metadata: ["listener": "\(listener)", "subject": "\(subject)", "valid-until": "\(Self.formatted(end))"])
            case .failure(let error):
                logger.error("TLS certificate not reloaded; the one before stays in use", metadata: ["listener": "\(listener)", "error": "\(error)"])
            case nil:
                break
            }
            gauge.record(notValidAfter.timeIntervalSinceNow)
            try? await Task.sleep(for: interval)
        }
    }

    /// The handler a new connection starts with.
    func makeHandler() -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: context)
    }
}
