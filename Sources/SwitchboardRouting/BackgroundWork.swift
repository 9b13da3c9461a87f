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
