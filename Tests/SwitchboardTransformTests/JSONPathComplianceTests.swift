// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

/// Runs the JSONPath Compliance Test Suite (RFC 9535) from the shared test data.
struct JSONPathComplianceTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let selector: String
        let document: JSONValue?
        let invalid: Bool
        /// One result, or several when object member order makes the result non-deterministic.
        let expected: [[JSONValue]]

        var testDescription: String { name }
    }

    static let suitePath = Fixtures.path("jsonpath-cts/cts.json")

    static func cases() throws -> [Case] {
        let root = try JSONValue(parsing: try String(contentsOfFile: suitePath, encoding: .utf8))
        guard case .array(let tests)? = root["tests"] else { return [] }
        return tests.compactMap { test in
            guard case .string(let name)? = test["name"], case .string(let selector)? = test["selector"] else { return nil }
            var expected: [[JSONValue]] = []
            if case .array(let result)? = test["result"] { expected = [result] }
            if case .array(let results)? = test["results"] {
                expected = results.compactMap { if case .array(let items) = $0 { items } else { nil } }
            }
            return Case(
                name: name,
                selector: selector,
                document: test["document"],
                invalid: test["invalid_selector"] == .bool(true),
                expected: expected
            )
        }
    }

    @Test func suiteIsPresentAndLarge() throws {
        #expect(try JSONPathComplianceTests.cases().count > 600)
    }

    @Test(arguments: try JSONPathComplianceTests.cases())
    func compliance(_ test: Case) throws {
        if test.invalid {
            #expect(throws: JSONPathError.self, "\(test.selector) should be refused") { try JSONPath(test.selector) }
            return
        }
        let path = try JSONPath(test.selector)
        let document = try #require(test.document)
        let result = path.select(document)
        #expect(test.expected.contains(result), "\(test.selector) gave \(JSONValue.array(result).serialized())")
    }
}
