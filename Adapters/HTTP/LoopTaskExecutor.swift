// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

/// A task executor that runs jobs on one NIO event loop.
///
/// The node installs NIO's event loops as Swift's global executor, and NIO runs global jobs
/// as if isolated to the loop's serial executor. Every call into a nonisolated async
/// function then asks the runtime to switch to the generic executor, which for a serial
/// executor means enqueueing the task again and waiting for the loop to run it: a full
/// round through the loop's queue at every such call and return. A task that prefers this
/// executor (`Task(executorPreference:)`) runs its nonisolated code on it directly, on the
/// loop of the connection it serves, without those rounds.
///
/// A job enqueued from the loop's own thread (a task started by a connection, a reply that
/// resumes a route) joins a list that one task drains, scheduled with a closure made once:
/// no closure is allocated per job. Jobs from other threads go through `execute`.
///
/// `@unchecked Sendable`: `local`, `running` and `drainScheduled` are touched only on the
/// loop's thread.
final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop
    /// Jobs enqueued on the loop's thread, waiting for the drain.
    private var local: [UnownedJob] = []
    /// The list being run (kept to reuse its storage).
    private var running: [UnownedJob] = []
    private var drainScheduled = false
    /// Runs the local jobs; made once (it holds the executor, which lives as long as the loop).
    private var drainTask: (@Sendable () -> Void)?

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard loop.inEventLoop, let drainTask else {
            loop.execute {
                job.runSynchronously(on: self.asUnownedTaskExecutor())
            }
            return
        }
        local.append(job)
        if !drainScheduled {
            drainScheduled = true
            loop.execute(drainTask)
        }
    }

    private func drain() {
        drainScheduled = false
        // Jobs these enqueue go to the emptied list and a drain of their own.
        swap(&local, &running)
        let executor = asUnownedTaskExecutor()
        for job in running {
            job.runSynchronously(on: executor)
        }
        running.removeAll(keepingCapacity: true)
    }

    private static let executors = Mutex<[ObjectIdentifier: LoopTaskExecutor]>([:])

    /// The executor for `loop` (one per loop, made on first use).
    static func on(_ loop: any EventLoop) -> LoopTaskExecutor {
        executors.withLock { executors in
            let key = ObjectIdentifier(loop)
            if let executor = executors[key] { return executor }
            let executor = LoopTaskExecutor(loop: loop)
            executor.drainTask = { [executor] in executor.drain() }
            executors[key] = executor
            return executor
        }
    }
}
