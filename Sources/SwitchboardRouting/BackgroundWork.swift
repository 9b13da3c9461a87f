// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// Permits for work that must not grow without bound: ``acquire()`` waits, first come
/// first served, while every permit is out.
final class AsyncLimiter: Sendable {
    private let state: Mutex<(available: Int, waiters: [CheckedContinuation<Void, Never>])>

    init(_ permits: Int) {
        state = Mutex((max(1, permits), []))
    }

    func acquire() async {
        // A free permit is taken without suspending.
        let taken = state.withLock { state in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.available > 0, state.waiters.isEmpty {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Gives a permit back, to the longest waiter if there is one.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Work that a step starts and does not wait for (a wire tap's copy). Jobs run as child
/// tasks of the engine's `run()`, so shutdown waits for them rather than dropping them.
final class BackgroundWork: Sendable {
    typealias Job = @Sendable () async -> Void

    private let stream: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    func submit(_ job: @escaping Job) {
        continuation.yield(job)
    }

    /// Stops taking new jobs; `run()` returns once the queued ones are done.
    func finish() {
        continuation.finish()
    }

    /// Runs submitted jobs concurrently until ``finish()`` and the queue is drained.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await job in stream {
                group.addTask { await job() }
            }
        }
    }
}
