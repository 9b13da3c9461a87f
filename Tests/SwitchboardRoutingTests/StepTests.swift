// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import SwitchboardTestServers
import Testing

struct StepTests {
    @Test func setHeaderAndSetBodyUseTemplates() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - set-header: { name: X-Greeting, value: "hello ${header.X-Name}" }
              - set-body: { value: '{"greeting":"${header.X-Greeting}","was":"${body}"}', content-type: application/json }
        """)
        let reply = try await harness.send("r", "old", headers: ["X-Name": "Ada"])
        #expect(reply.headers["X-Greeting"] == "hello Ada")
        #expect(reply.bodyString == #"{"greeting":"hello Ada","was":"old"}"#)
        #expect(reply.contentType == "application/json")
    }

    @Test func setBodyToBodyKeepsTheBytes() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - set-body: { value: "${body}", content-type: application/octet-stream }
        """)
        let reply = try await harness.send("r", "unchanged")
        #expect(reply.bodyString == "unchanged")
        #expect(reply.contentType == "application/octet-stream")
    }

    @Test func removeHeaderTakesANameOrAPrefix() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - remove-header: x-secret
              - remove-header: X-Internal-*
        """)
        let reply = try await harness.send("r", headers: ["X-Secret": "1", "X-Internal-A": "2", "x-internal-b": "3", "X-Keep": "4"])
        #expect(reply.headers.fields.map(\.name) == ["X-Keep"])
    }

    @Test func logWritesTheRenderedMessageAtItsLevel() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - log: "order ${header.X-Order} arrived"
              - log: { message: "details: ${body}", level: warning }
              - log: { message: "hidden", level: debug }
        """)
        _ = try await harness.send("r", "b1", headers: ["X-Order": "42"])
        let lines = harness.logs.lines.withLock { $0 }.filter { !$0.1.hasPrefix("exchange") }
        #expect(lines.map(\.1) == ["order 42 arrived", "details: b1"])
        #expect(lines.map(\.0) == [.info, .warning])
    }

    @Test func choiceTakesTheFirstMatchingWhenElseOtherwise() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - choice:
                  - when: { header: X-Region, equals: EU }
                    steps: [ { to: test:eu } ]
                  - when: { header: X-Region, in: [US, CA] }
                    steps: [ { to: test:na } ]
                  - otherwise:
                      - to: test:rest
              - set-header: { name: X-After, value: "yes" }
        """)
        let eu = try await harness.send("r", headers: ["X-Region": "EU"])
        let ca = try await harness.send("r", headers: ["X-Region": "CA"])
        let other = try await harness.send("r", headers: ["X-Region": "JP"])
        #expect(eu.headers["X-Visited"] == "eu")
        #expect(ca.headers["X-Visited"] == "na")
        #expect(other.headers["X-Visited"] == "rest")
        #expect([eu, ca, other].allSatisfy { $0.headers["X-After"] == "yes" })
        let details = harness.observer.all.filter { $0.step?.kind == "choice" && $0.phase == .completed }.compactMap(\.detail)
        #expect(details == ["when[0] matched: header X-Region equals 'EU'", "when[1] matched: header X-Region in [US, CA]", "otherwise (no when matched)"])
    }

    @Test func choiceWithoutOtherwiseLetsUnmatchedMessagesThrough() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - choice:
                  - when: { header: X-Flag, exists: true }
                    steps: [ { to: test:flagged } ]
              - to: test:after
        """)
        let reply = try await harness.send("r")
        #expect(reply.headers.values("X-Visited") == ["after"])
        #expect(harness.endpoints.exchanges("flagged").isEmpty)
    }

    @Test func filterRunsItsStepsOnlyForMatchingMessages() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - filter:
                  header: X-Priority
                  equals: high
                  steps:
                    - to: test:alerts
              - to: test:all
        """)
        _ = try await harness.send("r", headers: ["X-Priority": "high"])
        _ = try await harness.send("r", headers: ["X-Priority": "low"])
        #expect(harness.endpoints.exchanges("alerts").count == 1)
        #expect(harness.endpoints.exchanges("all").count == 2)
        let details = harness.observer.all.filter { $0.step?.kind == "filter" && $0.phase == .completed }.compactMap(\.detail)
        #expect(details == ["matched: header X-Priority equals 'high'", "not matched: header X-Priority equals 'high'"])
    }

    @Test func toContinuesWithTheReply() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - to: "test:backend?reply=pong"
              - set-header: { name: X-Got, value: "${body}" }
        """)
        let reply = try await harness.send("r", "ping")
        #expect(reply.headers["X-Got"] == "pong")
        #expect(harness.endpoints.exchanges("backend").first?.message.bodyString == "ping")
    }

    @Test func wireTapSendsACopyWithoutWaiting() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - wire-tap: "test:audit?gate=true"
              - set-body: done
        """)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await harness.engine.run() }
            // The tap's endpoint is held shut, so the route returning proves it did not wait.
            let original = MessageID()
            let message = Message(id: original, body: ByteBuffer(string: "payload"))
            let reply = try await harness.engine.process(routeID: "r", Exchange(message: message, pattern: .inOut))
            #expect(reply.message.bodyString == "done")
            #expect(harness.endpoints.exchanges("audit").isEmpty)
            harness.endpoints.gate.set(())
            // Wait for the copy's completion event; give up (and fail) rather than hang.
            var waited = 0
            while harness.observer.all.first(where: { $0.step?.kind == "wire-tap" && $0.messageID != original && $0.phase == .completed }) == nil, waited < 2000 {
                try await Task.sleep(for: .milliseconds(5))
                waited += 1
            }
            let copy = try #require(harness.endpoints.exchanges("audit").first)
            #expect(copy.message.bodyString == "payload")
            #expect(copy.message.parentID == original)
            #expect(copy.message.id != original)
            #expect(copy.pattern == .inOnly)
            group.cancelAll()
        }
    }

    @Test func multicastSendsToEveryBranchAndCollectsTheReplies() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - multicast:
                  steps:
                    - to: 'test:a?reply={"quote":1}'
                    - to: "test:b?reply=plain text"
                    - route: c
          - id: c
            from: direct:c
            steps:
              - set-body: '{"quote":3}'
        """)
        let original = MessageID()
        let message = Message(id: original, body: ByteBuffer(string: "request"))
        let reply = try await harness.engine.process(routeID: "r", Exchange(message: message, pattern: .inOut)).message
        #expect(reply.bodyString == #"[{"quote":1},"plain text",{"quote":3}]"#)
        #expect(reply.contentType == "application/json")
        #expect(reply.id == original)
        let copies = harness.endpoints.exchanges("a") + harness.endpoints.exchanges("b")
        #expect(copies.count == 2)
        #expect(copies.allSatisfy { $0.message.parentID == original && $0.message.bodyString == "request" })
        #expect(Set(copies.map(\.message.id)).count == 2)
    }

    @Test(arguments: [
        ("xml", "<results><result><a>1</a></result><result>x &amp; y</result></results>"),
        ("concat", "<a>1</a>\nx & y"),
        ("last", "x & y"),
    ])
    func multicastAggregations(_ aggregate: String, _ expected: String) async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - multicast:
                  aggregate: \(aggregate)
                  parallel: false
                  steps:
                    - to: "test:a?reply=<a>1</a>"
                    - to: "test:b?reply=x %26 y"
        """)
        #expect(try await harness.send("r").bodyString == expected)
    }

    @Test func multicastFailsWhenABranchFails() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - multicast:
                  steps:
                    - to: test:ok
                    - to: "test:broken?fail=true"
        """)
        await #expect {
            try await harness.send("r")
        } throws: { error in
            let failure = error as? StepFailure
            return failure?.step.path == "0.1" && failure?.reason == "test endpoint 'broken' refused the message"
        }
    }

    @Test func multicastTimeoutFailsTheStep() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - multicast:
                  timeout: 50ms
                  steps:
                    - to: "test:slow?delay=30s"
        """)
        await #expect {
            try await harness.send("r")
        } throws: { error in
            (error as? StepFailure)?.reason == "timed out after 50ms"
        }
    }

    @Test func splitByXPathRunsEachPartAsAChildOfTheMessage() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            namespaces:
              inv: "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
              cac: "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
              cbc: "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
            steps:
              - split:
                  xpath: /inv:Invoice/cac:InvoiceLine
                  steps:
                    - set-header: { name: X-Line, value: "${xpath:/cac:InvoiceLine/cbc:ID}" }
                    - to: test:lines
        """)
        let invoice = try String(contentsOfFile: Fixtures.path("xml/ubl/UBL-Invoice-2.1-Example.xml"), encoding: .utf8)
        let original = MessageID()
        let message = Message(id: original, body: ByteBuffer(string: invoice))
        let reply = try await harness.engine.process(routeID: "r", Exchange(message: message, pattern: .inOnly)).message
        #expect(reply.bodyString == invoice, "the original message continues by default")
        let lines = harness.endpoints.exchanges("lines")
        #expect(lines.map { $0.message.headers["X-Line"] } == ["1", "2", "3", "4", "5"])
        #expect(lines.map { $0.message.headers["split.index"] } == ["0", "1", "2", "3", "4"])
        #expect(lines.allSatisfy { $0.message.headers["split.size"] == "5" && $0.message.parentID == original && $0.message.contentType == "application/xml" })
        let childEvents = harness.observer.all.filter { $0.parentID == original && $0.step?.kind == "to" && $0.phase == .completed }
        #expect(childEvents.count == 5)
    }

    @Test func splitByJSONPathAndCombineResults() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - split:
                  jsonpath: "$.orders[?@.qty > 1]"
                  aggregate: json-array
                  steps:
                    - set-body: '{"sku":"${json:$.sku}","line":${header.split.index}}'
        """)
        let reply = try await harness.send("r", #"{"orders":[{"sku":"a","qty":2},{"sku":"b","qty":1},{"sku":"c","qty":5}]}"#)
        #expect(reply.bodyString == #"[{"sku":"a","line":0},{"sku":"c","line":1}]"#)
    }

    @Test func splitByLinesHandlesCRLFAndAMissingFinalNewline() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - split:
                  lines: true
                  parallel: true
                  aggregate: concat
                  steps:
                    - set-body: "${header.split.index}:${body}"
        """)
        let reply = try await harness.send("r", "alpha\r\nbeta\ngamma")
        #expect(reply.bodyString == "0:alpha\n1:beta\n2:gamma")
    }

    @Test func routeStepRunsAnotherRouteAndContinues() async throws {
        let harness = try Harness("""
        routes:
          - id: main
            from: direct:main
            steps:
              - route: enrich
              - to: direct:stamp
          - id: enrich
            from: direct:enrich
            steps:
              - set-header: { name: X-Customer, value: gold }
          - id: stamp
            from: direct:stamp
            steps:
              - set-header: { name: X-Stamped, value: "${header.X-Customer}" }
        """)
        let reply = try await harness.send("main")
        #expect(reply.headers["X-Customer"] == "gold")
        #expect(reply.headers["X-Stamped"] == "gold")
        let routeEvents = harness.observer.all.filter { $0.step == nil && $0.phase == .completed }.map(\.routeID)
        #expect(routeEvents == ["enrich", "stamp", "main"])
    }

    @Test func routesCallingThemselvesStopAtTheDepthLimit() async throws {
        let harness = try Harness("""
        routes:
          - id: loop
            from: direct:loop
            steps:
              - route: loop
        """)
        await #expect {
            try await harness.send("loop")
        } throws: { error in
            "\(error)".contains("route calls nested deeper than 32 levels")
        }
    }

    @Test func stopEndsTheRoute() async throws {
        let harness = try Harness("""
        routes:
          - id: r
            from: direct:r
            steps:
              - choice:
                  - when: { header: X-Drop, exists: true }
                    steps: [ { set-body: dropped }, { stop: {} } ]
              - set-body: kept
        """)
        #expect(try await harness.send("r", headers: ["X-Drop": "1"]).bodyString == "dropped")
        #expect(try await harness.send("r").bodyString == "kept")
    }

    @Test func aFailedStepNamesTheRouteTheStepAndTheCause() async throws {
        let harness = try Harness("""
        routes:
          - id: orders
            from: direct:orders
            steps:
              - set-header: { name: X-A, value: "1" }
              - to: "test:backend?fail=true&password=hunter2"
        """)
        await #expect {
            try await harness.send("orders")
        } throws: { error in
            let failure = error as? StepFailure
            return failure?.description == "route 'orders' step 1 (to test:backend?fail=true&password=***): test endpoint 'backend' refused the message"
        }
    }
}
