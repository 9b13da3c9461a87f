// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A listener that could not start: says which one, on which address, and why.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    public var description: String

    /// - Parameters:
    ///   - listener: What failed to listen, as users know it: "the HTTP listener (http.listen)".
    ///   - address: `host:port` it tried.
    ///   - error: What the network layer reported.
    public init(listener: String, address: String, error: any Error) {
        let reason: String
        if let io = error as? IOError {
            reason = String(cString: strerror(io.errnoCode)).lowercased()
        } else {
            reason = String(describing: error)
        }
        description = "\(listener) cannot listen on \(address): \(reason)"
    }
}
