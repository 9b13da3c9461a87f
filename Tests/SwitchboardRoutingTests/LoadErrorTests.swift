// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardRouting
import Testing

/// One test per kind of route-file error: each says file:line:column and what was expected.
struct LoadErrorTests {
    @Test func unknownStep() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - sett-header: { name: A, value: b }
        """)
        #expect(errors == ["routes.yaml:5:9: error: unknown step 'sett-header'; did you mean 'set-header'?"])
    }

    /// Nine lines of aliases of aliases, each nine times the last: millions of steps.
    static func aliasBomb(levels: Int) -> String {
        var lines = ["x-0: &l0 { set-header: { name: X, value: aaaaaaaaaa } }"]
        for level in 1..<levels {
            lines.append("x-\(level): &l\(level) { choice: [ { otherwise: [\(Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", "))] } ] }")
        }
        return lines.joined(separator: "\n") + "\nroutes:\n  - id: bomb\n    from: direct:bomb\n    steps: [ *l\(levels - 1) ]\n"
    }

    @Test func aliasesThatExpandPastTheBudgetAreRefusedWhereTheyAreUsed() {
        let errors = loadErrors(Self.aliasBomb(levels: 8))
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("routes.yaml:5:") == true)
        #expect(errors.first?.contains("YAML aliases expand to more than 10000 nodes here (the alias names the anchor at line 4") == true)
        // Aliases within the budget are YAML like any other: three levels, 729 steps.
        let fine = loadErrors(Self.aliasBomb(levels: 3))
        #expect(fine.allSatisfy { $0.contains("unknown top-level key 'x-") }, "\(fine)")
    }

    @Test func unknownStepOption() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - set-header: { name: A, vaule: b }
        """)
        #expect(errors.contains("routes.yaml:5:32: error: unknown option 'vaule' for step 'set-header'; did you mean 'value'?"))
        #expect(errors.contains("routes.yaml:5:9: error: step 'set-header' needs 'value': The value; a template."))
    }

    @Test func mistypedStepOption() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - multicast:
                  parallel: maybe
                  timeout: soon
                  aggregate: average
                  steps: [ { to: test:a } ]
        """)
        #expect(errors == [
            "routes.yaml:6:21: error: 'parallel' expects true or false, found a value ('maybe')",
            "routes.yaml:7:20: error: 'timeout' expects a duration such as 500ms, 5s or 2m, found a value ('soon')",
            "routes.yaml:8:22: error: 'aggregate' expects one of original, last, json-array, xml, concat, found a value ('average')",
        ])
    }

    @Test func unknownAndMistypedEndpointOptions() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - to: "test:a?dealy=5s"
              - to: "test:b?delay=later"
              - to: { uri: "test:c", fial: true }
        """)
        #expect(errors == [
            "routes.yaml:5:21: error: unknown option 'dealy' for 'test:' producers; did you mean 'delay'?",
            "routes.yaml:6:21: error: option 'delay' expects a duration such as 500ms, 5s or 2m, got 'later'",
            "routes.yaml:7:30: error: unknown option 'fial' for 'test:' producers; did you mean 'fail'?",
        ])
    }

    @Test func missingFrom() {
        let errors = loadErrors("""
        routes:
          - id: orders
            steps:
              - log: hi
        """)
        #expect(errors == ["routes.yaml:2:5: error: route 'orders' has no 'from'; expected a source endpoint such as 'from: http:/orders?method=POST'"])
    }

    @Test func unknownSchemeAndBadURI() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - to: "tset:a"
              - to: "just words"
              - to: "direct:"
        """)
        #expect(errors.count == 3)
        #expect(errors[0] == "routes.yaml:5:14: error: unknown scheme 'tset'; did you mean 'test'?")
        #expect(errors[1].hasPrefix("routes.yaml:6:14: error: 'just words' is not an endpoint URI: expected 'scheme:…'"))
        #expect(errors[2] == "routes.yaml:7:14: error: 'direct:' needs a name, as in direct:audit")
    }

    @Test func placeholdersInEndpointURIsAreRefused() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - to: "test:orders/${header.id}"
        """)
        #expect(errors == ["routes.yaml:5:26: error: endpoint URIs are fixed when routes load, so '${…}' placeholders cannot be used in 'to'; route with 'choice' to fixed endpoints instead"])
    }

    @Test func badRegex() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - choice:
                  - when: { header: X-A, matches: "ORD-[0-9" }
                    steps: [ { log: x } ]
        """)
        #expect(errors.count == 1)
        #expect(errors[0].hasPrefix("routes.yaml:6:44: error: invalid regular expression 'ORD-[0-9'"))
    }

    @Test func badXPath() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - filter:
                  xpath: "/order[total >"
                  steps: [ { log: x } ]
              - set-header: { name: X-A, value: "${xpath:/x:order}" }
        """)
        #expect(errors.count == 2)
        #expect(errors[0].hasPrefix("routes.yaml:6:19: error: invalid XPath '/order[total >'"))
        #expect(errors[1] == "routes.yaml:8:42: error: XPath '/x:order' uses the namespace prefix 'x', which is not declared; declare it under the route's 'namespaces:'")
    }

    @Test func badJSONPath() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - split:
                  jsonpath: "$.orders[?@.qty >]"
                  steps: [ { log: x } ]
        """)
        #expect(errors.count == 1)
        #expect(errors[0].hasPrefix("routes.yaml:6:39: error: invalid JSONPath '$.orders[?@.qty >]'"))
    }

    @Test func unknownTemplateVariable() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - log: "region ${heder.X-Region} id ${id}"
              - set-body: "${env.NOT_SET_ANYWHERE}"
        """)
        #expect(errors.count == 2)
        #expect(errors[0].hasPrefix("routes.yaml:5:22: error: unknown template variable '${heder.X-Region}'; did you mean 'header'?"))
        #expect(errors[1] == "routes.yaml:6:20: error: environment variable 'NOT_SET_ANYWHERE' used in '${env.NOT_SET_ANYWHERE}' is not set")
    }

    @Test func duplicateRouteID() {
        let errors = loadErrors("""
        routes:
          - id: orders
            from: direct:a
          - id: orders
            from: direct:b
        """)
        #expect(errors == ["routes.yaml:4:9: error: duplicate route id 'orders'; it is already used at routes.yaml:2:9"])
    }

    @Test func duplicateConsumerBinding() {
        let errors = loadErrors("""
        routes:
          - id: a
            from: test:inbox
          - id: b
            from: test:inbox
        """)
        #expect(errors == ["routes.yaml:5:11: error: route 'b' listens on test:inbox, which route 'a' already does (routes.yaml:3:11)"])
    }

    @Test func unknownRouteInARouteStep() {
        let errors = loadErrors("""
        routes:
          - id: main
            from: direct:main
            steps:
              - route: enrihc
          - id: enrich
            from: direct:enrich
        """)
        #expect(errors == ["routes.yaml:5:16: error: route 'enrihc' does not exist; did you mean 'enrich'?"])
    }

    @Test func predicateMistakes() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - choice:
                  - when: { header: X-A, equal: b }
                    steps: [ { log: x } ]
                  - when: { equals: b }
                    steps: [ { log: x } ]
                  - when: { header: X-A, xpath: /a }
                    steps: [ { log: x } ]
                  - when: { header: X-A, gt: lots }
                    steps: [ { log: x } ]
        """)
        #expect(errors == [
            "routes.yaml:6:34: error: unknown predicate key 'equal'; did you mean 'equals'?",
            "routes.yaml:8:21: error: 'equals' needs something to test: one of 'header', 'xpath' or 'jsonpath' (or 'all', 'any', 'not')",
            "routes.yaml:10:34: error: a predicate tests one subject; combine several with 'all: [ … ]' or 'any: [ … ]'",
            "routes.yaml:12:38: error: 'gt' expects a number, found a value ('lots')",
        ])
    }

    @Test func stepShapeMistakes() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            steps:
              - to: test:a
                log: x
              - just a string
              - choice:
                  - otherwise: [ { log: x } ]
                  - when: { header: A }
                    steps: [ { log: y } ]
        """)
        #expect(errors == [
            "routes.yaml:5:9: error: a step is a mapping with one key, the step kind; found 'to', 'log' (is a '-' missing, or is the indentation off?)",
            "routes.yaml:7:9: error: expected a step such as '- to: http://…', found a value ('just a string')",
            "routes.yaml:9:13: error: 'otherwise' must be the last branch of a choice",
        ])
    }

    @Test func yamlSyntaxErrorsSayWhere() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: [direct:r
        """)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.hasPrefix("routes.yaml:4:1: error: invalid YAML") == true, "\(errors)")
    }

    @Test func everyErrorIsReportedAtOnceInFileOrder() {
        let errors = loadErrors("""
        routes:
          - id: a
            steps: [ { log: x } ]
          - id: b
            from: direct:b
            steps:
              - sett-body: x
          - id: c
            from: "htp://x"
        """)
        #expect(errors.count == 3)
        #expect(errors.map { $0.split(separator: ":").prefix(2).joined(separator: ":") } == ["routes.yaml:2", "routes.yaml:7", "routes.yaml:9"])
    }

    @Test func unknownRouteKeysAndTopLevelKeys() {
        let errors = loadErrors("""
        route:
          - id: a
        """)
        #expect(errors == [
            "routes.yaml:1:1: error: unknown top-level key 'route'; a route file has 'routes:' (and 'services:') (did you mean 'routes'?)",
            "routes.yaml:1:1: error: no 'routes:' list in the file",
        ])
        let routeKeyErrors = loadErrors("""
        routes:
          - id: a
            from: direct:a
            stpes: []
        """)
        #expect(routeKeyErrors == ["routes.yaml:4:5: error: unknown route key 'stpes'; did you mean 'steps'?"])
    }
}

@Suite struct SLALoadErrorTests {
    @Test func badSLAValuesAreLocated() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            sla: { p95: fast, errors: 150%, throughput: lots, max-age: old, window: 1s, alert: "route:nowhere", p101: 1s, latency: 1s }
        """)
        #expect(errors.contains("routes.yaml:4:17: error: 'sla.p95' expects a latency such as 150ms, found 'fast'"), "\(errors)")
        #expect(errors.contains("routes.yaml:4:31: error: 'sla.errors' expects a share of failed exchanges such as 1% or 0.01, found '150%'"), "\(errors)")
        #expect(errors.contains { $0.contains("'sla.throughput' expects a minimum rate such as 10/s, 600/m or 1000/h, found 'lots'") }, "\(errors)")
        #expect(errors.contains { $0.contains("'sla.max-age' expects a duration such as 15m, found 'old'") }, "\(errors)")
        #expect(errors.contains { $0.contains("'sla.window' expects a duration of at least 10s such as 5m, found '1s'") }, "\(errors)")
        #expect(errors.contains { $0.contains("route 'nowhere' does not exist") }, "\(errors)")
        #expect(errors.contains { $0.contains("unknown sla key 'p101'") }, "\(errors)")
        #expect(errors.contains { $0.contains("unknown sla key 'latency'") }, "\(errors)")
        #expect(!errors.contains { $0.contains("sets no objective") }, "only the mistakes are reported: \(errors)")
    }

    @Test func anSLAWithoutObjectivesIsAnError() {
        let errors = loadErrors("""
        routes:
          - id: r
            from: direct:r
            sla: { window: 5m }
        """)
        #expect(errors == ["routes.yaml:4:10: error: 'sla' sets no objective; give at least one of pNN (p95: 150ms), errors, throughput or max-age"])
    }
}
