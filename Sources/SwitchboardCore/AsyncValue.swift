// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// A value that is set once and awaited by any number of tasks: the port a listener bound
/// once it is up, for example.
public final class AsyncValue<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, Never>])
        case set(Value)
    }

    private let state = Mutex<State>(.waiting([]))

    public init() {}

    /// Sets the value and wakes every waiter. Later calls are ignored.
    public func set(_ value: Value) {
        let waiters: [CheckedContinuation<Value, Never>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .set(value)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value, waiting until it is set.
    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready: Value? = state.withLock { state in
                    switch state {
                    case .set(let value):
                        return value
                    case .waiting(var waiters):
                        waiters.append(continuation)
                        state = .waiting(waiters)
                        return nil
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    /// The value if it is set, without waiting.
    public var current: Value? {
        state.withLock { state in
            if case .set(let value) = state { return value }
            return nil
        }
    }
}
