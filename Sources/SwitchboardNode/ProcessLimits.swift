// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

#if canImport(Glibc)
import Glibc
#endif

/// Process-wide limits the node sets for itself at start.
enum ProcessLimits {
    /// Raises the soft limit on open descriptors to the hard one, so that clients, backends,
    /// stores and files share all the process may have; returns the limits now in force.
    @discardableResult
    static func raiseOpenFileLimit() -> (soft: UInt, hard: UInt) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return (0, 0) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return (UInt(limit.rlim_cur), UInt(limit.rlim_max))
    }
}
