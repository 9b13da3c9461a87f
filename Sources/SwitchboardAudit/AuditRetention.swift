// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import SwitchboardCore

/// How long the audit trail keeps records, and how large it may grow: every `every`, the
/// store deletes records older than `age` and then the oldest until it is under `maxBytes`.
/// Callers never wait for it; it runs beside the writer in the trail's service.
public struct AuditRetention: Sendable, Equatable {
    /// Records older than this are deleted; nil keeps them.
    public var age: Duration?
    /// The store is kept under this size, oldest records deleted first; nil: no limit.
    public var maxBytes: Int64?
    /// How often retention runs.
    public var every: Duration

    public init(age: Duration? = .seconds(7 * 86_400), maxBytes: Int64? = 1 << 30, every: Duration = .seconds(60)) {
        self.age = age
        self.maxBytes = maxBytes
        self.every = every
    }
}

extension AuditRetention {
    /// Prunes the store every `every` until the task is cancelled.
    func run(store: any AuditStore, logger: Logger) async {
        guard age != nil || maxBytes != nil else { return }
        while !Task.isCancelled {
            do {
                let before = age.map { wallClockMicroseconds() - Int64($0.components.seconds) * 1_000_000 }
                let deleted = try await store.prune(before: before, maxBytes: maxBytes)
                if deleted > 0 {
                    logger.info("audit retention pruned records", metadata: ["deleted": "\(deleted)"])
                }
            } catch {
                logger.warning("audit retention failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: every)
        }
    }
}
