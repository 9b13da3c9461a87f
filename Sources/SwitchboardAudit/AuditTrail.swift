import Logging
import ServiceLifecycle
import SwitchboardCore
import Synchronization

/// The audit trail: an exchange observer that stores every event through a bounded buffer
/// and one writer that commits whatever has queued up in one transaction (group commit).
///
/// Routes never wait for the disk on each event, only in two places: when the buffer is
/// full (back-pressure: the route waits for room, nothing is dropped), and at the end of an
/// exchange, when the engine calls ``settle(_:)`` so the source is acknowledged only once
/// the exchange's events are committed.
public final class AuditTrail: ExchangeObserver, Service {
    public struct Retention: Sendable, Equatable {
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

    public let store: any AuditStore
    public let policy: AuditPolicy
    private let matcher: MaskMatcher
    public let capacity: Int
    let retention: Retention
    let logger: Logger
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var queue: [AuditRecord] = []
        /// Records ever queued and ever committed; a settle waits for committed ≥ its mark.
        var enqueued: Int64 = 0
        var committed: Int64 = 0
        var writer: CheckedContinuation<Void, Never>?
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
        var commitWaiters: [(mark: Int64, continuation: CheckedContinuation<Void, Never>)] = []
        var stopping = false
        /// The writer has stopped; nothing more is committed.
        var finished = false
    }

    /// - Parameters:
    ///   - capacity: Records the buffer holds before routes wait.
    public init(store: any AuditStore, policy: AuditPolicy = AuditPolicy(), capacity: Int = 10_000, retention: Retention = Retention(), logger: Logger) {
        self.store = store
        self.policy = policy
        self.matcher = MaskMatcher(policy.mask)
        self.capacity = max(1, capacity)
        self.retention = retention
        self.logger = logger
        self.state = Mutex(State())
    }

    /// Records waiting to be committed.
    public var bufferDepth: Int {
        state.withLock { $0.queue.count }
    }

    public func record(_ event: ExchangeEvent) async {
        guard let record = AuditRecord(event, policy: policy, matcher: matcher) else { return }
        await enqueue(record)
    }

    /// Queues `record`, waiting for room when the buffer is full.
    public func enqueue(_ record: AuditRecord) async {
        while true {
            let writer: CheckedContinuation<Void, Never>?? = state.withLock { state in
                guard state.queue.count < capacity || state.stopping else { return .none }
                state.queue.append(record)
                state.enqueued += 1
                defer { state.writer = nil }
                return .some(state.writer)
            }
            if case .some(let waiting) = writer {
                waiting?.resume()
                return
            }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.queue.count < capacity || state.stopping { return true }
                    state.roomWaiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    public func settle(_ messageID: MessageID) async {
        await flush()
    }

    /// Returns once everything queued so far is committed.
    public func flush() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.committed >= state.enqueued || state.finished { return true }
                state.commitWaiters.append((state.enqueued, continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Commits queued records until graceful shutdown, then commits what is left and returns.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pruneLoop() }
            // Graceful shutdown and cancellation (another service failed) both let the
            // writer commit what is queued and return.
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await self.writeLoop()
                } onGracefulShutdown: {
                    self.stop()
                }
            } onCancel: {
                self.stop()
            }
            group.cancelAll()
        }
    }

    /// Lets the writer drain the buffer and return.
    public func stop() {
        let (writer, waiters) = state.withLock { state in
            state.stopping = true
            defer {
                state.writer = nil
                state.roomWaiters = []
            }
            return (state.writer, state.roomWaiters)
        }
        writer?.resume()
        for waiter in waiters { waiter.resume() }
    }

    private func writeLoop() async {
        var failures = 0
        while true {
            var batch: [AuditRecord] = []
            while true {
                let ready: [AuditRecord]? = state.withLock { state in
                    !state.queue.isEmpty || state.stopping ? state.queue : nil
                }
                if let ready {
                    batch = ready
                    break
                }
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state in
                        if !state.queue.isEmpty || state.stopping { return true }
                        state.writer = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            if batch.isEmpty {
                let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
                    guard state.stopping, state.queue.isEmpty else { return nil }
                    state.finished = true
                    defer { state.commitWaiters = [] }
                    return state.commitWaiters.map(\.continuation)
                }
                guard let waiters else { continue }
                for waiter in waiters { waiter.resume() }
                return
            }
            do {
                try await store.append(batch)
                failures = 0
            } catch {
                // Nothing is dropped: the records stay queued (routes wait once it is full)
                // and the write is tried again.
                failures += 1
                logger.error("audit store write failed; retrying", metadata: ["error": "\(error)", "records": "\(batch.count)"])
                try? await Task.sleep(for: .milliseconds(min(5_000, 50 << min(failures, 7))))
                continue
            }
            let (room, settled) = state.withLock { state in
                state.queue.removeFirst(batch.count)
                state.committed += Int64(batch.count)
                let committed = state.committed
                let room = state.roomWaiters
                state.roomWaiters = []
                var settled: [CheckedContinuation<Void, Never>] = []
                state.commitWaiters.removeAll { waiter in
                    guard waiter.mark <= committed else { return false }
                    settled.append(waiter.continuation)
                    return true
                }
                return (room, settled)
            }
            for waiter in room { waiter.resume() }
            for waiter in settled { waiter.resume() }
        }
    }

    private func pruneLoop() async {
        guard retention.age != nil || retention.maxBytes != nil else { return }
        while !Task.isCancelled {
            do {
                let before = retention.age.map { wallClockMicroseconds() - Int64($0.components.seconds) * 1_000_000 }
                let deleted = try await store.prune(before: before, maxBytes: retention.maxBytes)
                if deleted > 0 {
                    logger.info("audit retention pruned records", metadata: ["deleted": "\(deleted)"])
                }
            } catch {
                logger.warning("audit retention failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: retention.every)
        }
    }
}
