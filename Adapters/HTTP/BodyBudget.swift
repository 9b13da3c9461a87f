// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// The bytes of request bodies the listener may hold in memory at once (`http.max-buffered-bodies`),
/// shared by every connection: each body's bytes are taken as they are read and given back
/// when its reply is written or its connection closes.
final class BodyBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes `count` bytes; false (taking nothing) when that would pass the limit.
    func take(_ count: Int) -> Bool {
        let after = used.add(count, ordering: .relaxed).newValue
        guard after > limit else { return true }
        used.subtract(count, ordering: .relaxed)
        return false
    }

    func giveBack(_ count: Int) {
        guard count > 0 else { return }
        used.subtract(count, ordering: .relaxed)
    }

    /// The bytes taken now.
    var inUse: Int { used.load(ordering: .relaxed) }
}
