import Foundation
import SwitchboardTransform
import Testing

/// Runs the official JSON-Schema-Test-Suite files (draft 2020-12) from the shared test data:
/// every test's `valid` flag must agree with the validator.
struct JSONSchemaSuiteTests {
    struct Group: CustomTestStringConvertible, Sendable {
        let file: String
        let description: String
        let schema: JSONValue
        let tests: [(description: String, data: JSONValue, valid: Bool)]

        var testDescription: String { "\(file): \(description)" }
    }

    static let suite = "/work/shared/data/json-schema-test-suite"

    static func groups() throws -> [Group] {
        let files = try FileManager.default.contentsOfDirectory(atPath: suite).filter { $0.hasSuffix(".json") }.sorted()
        var groups: [Group] = []
        for file in files {
            let root = try JSONValue(parsing: try String(contentsOfFile: "\(suite)/\(file)", encoding: .utf8))
            guard case .array(let items) = root else { continue }
            for item in items {
                guard case .string(let description)? = item["description"], let schema = item["schema"],
                      case .array(let tests)? = item["tests"] else { continue }
                let cases = tests.compactMap { test -> (String, JSONValue, Bool)? in
                    guard case .string(let name)? = test["description"], let data = test["data"],
                          case .bool(let valid)? = test["valid"] else { return nil }
                    return (name, data, valid)
                }
                groups.append(Group(file: file, description: description, schema: schema, tests: cases))
            }
        }
        return groups
    }

    @Test func suiteIsPresentAndComplete() throws {
        let groups = try JSONSchemaSuiteTests.groups()
        // defs.json's only group needs the meta-schema and was left out of the copy.
        #expect(Set(groups.map(\.file)).count == 34)
        #expect(groups.reduce(0) { $0 + $1.tests.count } >= 760)
    }

    @Test(arguments: try JSONSchemaSuiteTests.groups())
    func suite(_ group: Group) throws {
        let schema = try JSONSchema(group.schema)
        for test in group.tests {
            let violations = schema.validate(test.data)
            #expect(violations.isEmpty == test.valid, "\(test.description): \(test.data.serialized()) → \(violations)")
            #expect(schema.isValid(test.data) == test.valid, "\(test.description) (fast path)")
            if !test.valid {
                #expect(violations.allSatisfy { !$0.keyword.isEmpty && $0.schemaPath.hasPrefix("#") }, "\(violations)")
            }
        }
    }
}
