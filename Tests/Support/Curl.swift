// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The curl command line, for tests of HTTPS listeners against a client that is not ours.
public enum Curl {
    /// Runs `curl -sS --max-time 10 ARGUMENTS`: its exit status, standard output and error.
    /// Waits on a Dispatch thread: a test blocking one of the cooperative pool's few threads
    /// stalls every other test of the process.
    public static func run(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        try await offThePool { try blockingRun(arguments) }
    }

    static func blockingRun(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "10"] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, out, err)
    }
}

/// Runs `body`, which blocks (a child process, a file), on a Dispatch thread rather than on
/// the cooperative pool the tests share.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
