// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import SwitchboardTransform

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Try a JSONPath or XPath expression on a file and print the result as JSON.",
        discussion: """
        JSONPath (RFC 9535) prints the nodelist as a JSON array. XPath 1.0 prints a \
        node-set as an array of serialized nodes, or the number, string or boolean. A bad \
        expression exits 2 with the error and its column; input that is not JSON or XML \
        exits 1.

        Examples:
          switchboard eval --jsonpath '$.items[?@.price > 10].name' order.json
          switchboard eval --xpath '/o:order/o:total' --ns o=urn:example:orders \\
              order.xml
          echo '{"a":[1,2,3]}' | switchboard eval --jsonpath '$.a[-1]' -
        """
    )

    @Option(help: ArgumentHelp("A JSONPath query.", valueName: "query"))
    var jsonpath: String?

    @Option(help: ArgumentHelp("An XPath 1.0 expression.", valueName: "expression"))
    var xpath: String?

    @Option(name: .customLong("ns"), help: ArgumentHelp("A namespace prefix for XPath, PREFIX=URI (repeatable).", valueName: "prefix=uri"))
    var namespaces: [String] = []

    @Argument(help: ArgumentHelp("The input file; '-' reads standard input.", valueName: "input"))
    var input: String

    func validate() throws {
        if (jsonpath == nil) == (xpath == nil) { throw ValidationError("give exactly one of --jsonpath and --xpath") }
        for binding in namespaces where !binding.contains("=") || binding.hasPrefix("=") {
            throw ValidationError("--ns must be PREFIX=URI, found '\(binding)'")
        }
    }

    func run() async throws {
        let data = try readInput(input)
        if let jsonpath {
            let path: JSONPath
            do {
                path = try JSONPath(jsonpath)
            } catch let error as JSONPathError {
                printError("error: invalid JSONPath at column \(error.offset + 1): \(error.message)")
                printError("  \(jsonpath)\n  \(String(repeating: " ", count: error.offset))^")
                throw ExitCode(2)
            }
            let document: JSONValue
            do {
                document = try data.withUnsafeBytes { try JSONValue(bytes: $0) }
            } catch {
                printError("error: \(input) is not JSON: \(error)")
                throw ExitCode.failure
            }
            print(JSONValue.array(path.select(document)).prettySerialized())
            return
        }
        let bindings = namespaces.compactMap(splitPair).map { (prefix: $0.0, uri: $0.1) }
        let expression: XPathExpression
        do {
            expression = try XPathExpression(xpath!, namespaces: XPathNamespaces(bindings))
        } catch let error as XMLError {
            printError("error: \(error.message)\(error.column.map { " (column \($0))" } ?? "")")
            throw ExitCode(2)
        }
        do {
            let document = try data.withUnsafeBytes { try XMLDocument(bytes: $0, name: input) }
            print(try expression.evaluateJSON(in: document).prettySerialized())
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}
