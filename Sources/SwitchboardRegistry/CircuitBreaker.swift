// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import SwitchboardRouting
import Synchronization

/// Monotonic time for the registry; tests move a ``ManualClock`` by hand.
public protocol RegistryClock: Sendable {
    /// Time since some fixed start.
    var now: Duration { get }
}

/// The process's monotonic clock.
public struct SystemRegistryClock: RegistryClock {
    private let start = ContinuousClock.now

    public init() {}

    public var now: Duration { ContinuousClock.now - start }
}

/// One instance's circuit breaker (see ``ServiceDefinition/Breaker``).
///
/// closed: calls go through; failures in a row, or a failure share in the window, open it.
/// open: no calls until `open` has passed, then half-open. half-open: up to `trials`
/// calls at a time; a success closes it, a failure opens it again.
struct CircuitBreaker: Sendable {
    enum State: String, Sendable {
        case closed
        case open
        case halfOpen = "half-open"
    }

    private(set) var state = State.closed
    private var consecutiveFailures = 0
    private var openedAt = Duration.zero
    private var trialsInFlight = 0
    /// Outcomes in the window, oldest first from `head`, kept only when the policy has a
    /// failure ratio; `failed` counts the failures among them. Each call adds one and
    /// drops the expired ones from the front: constant work per call on average.
    private var outcomes: [(at: Duration, ok: Bool)] = []
    private var head = 0
    private var failed = 0

    private var windowCount: Int { outcomes.count - head }

    private mutating func remember(_ ok: Bool, at now: Duration, window: Duration) {
        outcomes.append((now, ok))
        if !ok { failed += 1 }
        while head < outcomes.count, now - outcomes[head].at > window {
            if !outcomes[head].ok { failed -= 1 }
            head += 1
        }
        if head > 1024, head * 2 > outcomes.count {
            outcomes.removeFirst(head)
            head = 0
        }
    }

    private mutating func forget() {
        outcomes.removeAll(keepingCapacity: true)
        head = 0
        failed = 0
    }

    /// Whether a call may go now; moves open to half-open once the pause is over.
    mutating func allows(at now: Duration, _ policy: ServiceDefinition.Breaker) -> Bool {
        switch state {
        case .closed:
            return true
        case .open:
            guard now - openedAt >= policy.open else { return false }
            state = .halfOpen
            trialsInFlight = 0
            return true
        case .halfOpen:
            return trialsInFlight < policy.trials
        }
    }

    /// Takes a call's place (a trial when half-open).
    mutating func begin() {
        if state == .halfOpen { trialsInFlight += 1 }
    }

    /// Records a call's outcome.
    ///
    /// - Returns: The new state when it changed.
    mutating func record(success: Bool, at now: Duration, _ policy: ServiceDefinition.Breaker) -> State? {
        let before = state
        if policy.ratio != nil { remember(success, at: now, window: policy.window) }
        switch state {
        case .halfOpen:
            trialsInFlight = max(0, trialsInFlight - 1)
            if success {
                state = .closed
                consecutiveFailures = 0
                forget()
            } else {
                trip(at: now)
            }
        case .closed:
            consecutiveFailures = success ? 0 : consecutiveFailures + 1
            if consecutiveFailures >= policy.failures {
                trip(at: now)
            } else if let ratio = policy.ratio, windowCount >= policy.minimumCalls {
                if Double(failed) / Double(windowCount) >= ratio { trip(at: now) }
            }
        case .open:
            break
        }
        return state == before ? nil : state
    }

    private mutating func trip(at now: Duration) {
        state = .open
        openedAt = now
        consecutiveFailures = 0
        forget()
    }
}

/// A clock that moves only when told to: for tests of breakers and TTLs.
public final class ManualRegistryClock: RegistryClock {
    private let time = Mutex<Duration>(.zero)

    public init() {}

    public var now: Duration { time.withLock { $0 } }

    public func advance(by duration: Duration) {
        time.withLock { $0 += duration }
    }
}
