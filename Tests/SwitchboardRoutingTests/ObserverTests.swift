// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Logging
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import Testing

struct ObserverTests {
    @Test func everyStepStartAndEndIsReportedWithRouteStepAndDuration() async throws {
        let harness = try Harness("""
        routes:
          - id: orders
            from: direct:orders
            steps:
              - set-header: { name: X-A, value: "1" }
              - choice:
                  - when: { header: X-A, equals: "1" }
                    steps:
                      - to: "test:backend?password=hunter2"
        """)
        let reply = try await harness.send("orders")
        let events = harness.observer.all
        let summary = events.map { "\($0.phase.rawValue) \($0.step.map { "\($0.path) \($0.kind)" } ?? "route")" }
        #expect(summary == [
            "started route",
            "started 0 set-header",
            "completed 0 set-header",
            "started 1 choice",
            "started 1.when[0].0 to",
            "completed 1.when[0].0 to",
            "completed 1 choice",
            "completed route",
        ])
        #expect(events.allSatisfy { $0.routeID == "orders" && $0.messageID == reply.id && $0.correlationID == reply.correlationID })
        #expect(events.filter { $0.phase == .completed }.allSatisfy { $0.duration != nil })
        let to = try #require(events.first { $0.step?.kind == "to" })
        #expect(to.step?.endpoint == "test:backend?password=***")
        #expect(to.step?.index == 2)
        #expect(to.step?.location == SourceLocation(file: "routes.yaml", line: 9, column: 17))
        #expect(events.first { $0.step?.kind == "to" && $0.phase == .completed }?.detail == "visited backend")
    }

    @Test func stepStartsReachOnlyTheObserversThatWantThem() async throws {
        let yaml = """
        routes:
          - id: orders
            from: direct:orders
            steps:
              - set-header: { name: X-A, value: "1" }
              - wire-tap: "test:copy"
        """
        func summary(_ observer: RecordingObserver) -> [String] {
            observer.all.map { "\($0.phase.rawValue) \($0.step.map(\.kind) ?? "route")" }
        }
        let ends = RecordingObserver(wantsStepStarts: false)
        let every = RecordingObserver()
        let both = try RouteLoader(catalog: AdapterCatalog([TestAdapter(endpoints: TestEndpoints())]), observers: [ends, every], logger: Logger(label: "test"), environment: [:])
            .load(sources: [(yaml, "routes.yaml")])
        _ = try await both.process(routeID: "orders", Exchange(message: Message(), pattern: .inOut))
        // The wire tap's copy is reported from the background: wait for its end.
        for _ in 0..<200 where !summary(every).contains("completed wire-tap") { try await Task.sleep(for: .milliseconds(10)) }
        #expect(Set(summary(every)) == ["started route", "started set-header", "completed set-header", "started wire-tap", "completed wire-tap", "completed route"])
        #expect(summary(every).count == 6)
        for _ in 0..<200 where !summary(ends).contains("completed wire-tap") { try await Task.sleep(for: .milliseconds(10)) }
        #expect(Set(summary(ends)) == ["started route", "completed set-header", "completed wire-tap", "completed route"])
        #expect(summary(ends).count == 4)
    }

    @Test func failuresAreReportedForTheStepAndEveryEnclosingOne() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - filter:
                  header: X-Go
                  steps:
                    - to: "test:broken?fail=true"
        """)
        await #expect(throws: StepFailure.self) {
            try await harness.send("r", headers: ["X-Go": "1"])
        }
        let failed = harness.observer.all.filter { $0.phase == .failed }
        #expect(failed.map { $0.step?.path ?? "route" } == ["0.0", "0", "route"])
        #expect(failed.allSatisfy { $0.error?.contains("test endpoint 'broken' refused the message") == true })
    }
}

struct DebugLogTests {
    @Test func atDebugLevelEveryStepEventReachesTheLog() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - set-header: { name: X-A, value: "1" }
        """, logLevel: .debug)
        _ = try await harness.send("r")
        let lines = harness.logs.lines.withLock { $0 }.filter { $0.0 == .debug }.map(\.1)
        #expect(lines == ["step event", "step event", "step event", "step event"], "route start, step start, step end, route end")
    }

    @Test func atInfoLevelNoEventIsLogged() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - set-header: { name: X-A, value: "1" }
        """, logLevel: .info)
        _ = try await harness.send("r")
        #expect(harness.logs.lines.withLock { $0 }.allSatisfy { $0.0 != .debug })
    }
}
