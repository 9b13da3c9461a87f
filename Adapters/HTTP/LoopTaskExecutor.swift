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
final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    private static let executors = Mutex<[ObjectIdentifier: LoopTaskExecutor]>([:])

    /// The executor for `loop` (one per loop, made on first use).
    static func on(_ loop: any EventLoop) -> LoopTaskExecutor {
        executors.withLock { executors in
            let key = ObjectIdentifier(loop)
            if let executor = executors[key] { return executor }
            let executor = LoopTaskExecutor(loop: loop)
            executors[key] = executor
            return executor
        }
    }
}
