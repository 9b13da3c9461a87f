// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import Testing

/// Runs the official JSON-Schema-Test-Suite, draft 2020-12, vendored in
/// `Tests/Fixtures/json-schema-test-suite` (see PROVENANCE.md). Every required case must
/// agree with the validator; the optional ones are compared with a recorded list of the
/// cases known to disagree, so that a change either way is seen.
struct JSONSchemaSuiteTests {
    struct Group: CustomTestStringConvertible, Sendable {
        let file: String
        let description: String
        let schema: JSONValue
        let tests: [(description: String, data: JSONValue, valid: Bool)]

        var testDescription: String { "\(file): \(description)" }
    }

    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/json-schema-test-suite").standardizedFileURL.path
    static let tests = suite + "/tests/draft2020-12"
    /// The suite's remote schemas are served at http://localhost:1234/; here from the folder.
    static let resources = ["http://localhost:1234/": suite + "/remotes"]

    static func groups(in folder: String, prefix: String = "") throws -> [Group] {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        var groups: [Group] = []
        for file in files {
            let root = try JSONValue(parsing: try String(contentsOfFile: "\(folder)/\(file)", encoding: .utf8))
            guard case .array(let items) = root else { continue }
            for item in items {
                guard case .string(let description)? = item["description"], let schema = item["schema"],
                      case .array(let tests)? = item["tests"] else { continue }
                let cases = tests.compactMap { test -> (String, JSONValue, Bool)? in
                    guard case .string(let name)? = test["description"], let data = test["data"],
                          case .bool(let valid)? = test["valid"] else { return nil }
                    return (name, data, valid)
                }
                groups.append(Group(file: prefix + file, description: description, schema: schema, tests: cases))
            }
        }
        return groups
    }

    static func required() throws -> [Group] { try groups(in: tests) }

    static func optional() throws -> [Group] {
        try groups(in: tests + "/optional", prefix: "optional/") + groups(in: tests + "/optional/format", prefix: "optional/format/")
    }

    /// The cases of `groups` the validator disagrees with, as `file: group: case`.
    static func disagreements(_ groups: [Group]) -> [String] {
        var found: [String] = []
        for group in groups {
            let schema: JSONSchema
            do {
                schema = try JSONSchema(group.schema, resources: resources)
            } catch {
                found += group.tests.map { "\(group.file): \(group.description): \($0.description) (schema refused)" }
                continue
            }
            for test in group.tests where schema.isValid(test.data) != test.valid || schema.validate(test.data).isEmpty != test.valid {
                found.append("\(group.file): \(group.description): \(test.description)")
            }
        }
        return found
    }

    @Test func suiteIsPresentAndComplete() throws {
        let required = try JSONSchemaSuiteTests.required()
        #expect(Set(required.map(\.file)).count == 46)
        #expect(required.reduce(0) { $0 + $1.tests.count } >= 1200)
        #expect(try JSONSchemaSuiteTests.optional().reduce(0) { $0 + $1.tests.count } >= 900)
    }

    @Test(arguments: try JSONSchemaSuiteTests.required())
    func suite(_ group: Group) throws {
        let schema = try JSONSchema(group.schema, resources: JSONSchemaSuiteTests.resources)
        for test in group.tests {
            let violations = schema.validate(test.data)
            #expect(violations.isEmpty == test.valid, "\(test.description): \(test.data.serialized()) → \(violations)")
            #expect(schema.isValid(test.data) == test.valid, "\(test.description) (fast path)")
            if !test.valid {
                #expect(violations.allSatisfy { !$0.keyword.isEmpty && $0.schemaPath.contains("#") }, "\(violations)")
            }
        }
    }

    /// The optional cases that disagree are exactly those recorded in
    /// `Tests/Fixtures/json-schema-optional-baseline.txt` (the README reports the figures).
    @Test func optionalCasesMatchTheRecordedBaseline() throws {
        let groups = try JSONSchemaSuiteTests.optional()
        let found = JSONSchemaSuiteTests.disagreements(groups)
        let baselineFile = URL(fileURLWithPath: JSONSchemaSuiteTests.suite).deletingLastPathComponent().appendingPathComponent("json-schema-optional-baseline.txt").path
        let baseline = try String(contentsOfFile: baselineFile, encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.isEmpty }
        let total = groups.reduce(0) { $0 + $1.tests.count }
        #expect(Set(found).subtracting(baseline).sorted() == [], "newly disagreeing (of \(total) optional cases)")
        #expect(Set(baseline).subtracting(found).sorted() == [], "now agreeing: remove from the baseline")
    }
}
