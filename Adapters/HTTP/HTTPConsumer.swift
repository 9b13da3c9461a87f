// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `from: http:/path?method=POST`: a method and path on the node's HTTP listener.
///
/// The binding is registered when the route loads (so requests never race the start-up);
/// `run` installs the route and keeps it installed until shutdown.
struct HTTPConsumer: Consumer {
    let binding: HTTPListener.Binding

    var storesBeforeRouting: Bool { binding.async }

    func run(_ deliver: @escaping Delivery) async throws {
        binding.install(deliver)
        defer { binding.install(nil) }
        // Stay installed until the engine cancels consumers at shutdown. The listener itself
        // drains requests in flight, which hold their own reference to `deliver`.
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
        }
    }
}
