import ArgumentParser
import Foundation
import SwitchboardTransform

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate an XML file against an XML Schema, as a route's validate step would.",
        discussion: """
        Exit 0 when the input is valid; 1 with every problem (line and message) when it is
        not, or when it is not well-formed XML; 2 when the schema itself cannot be used.
        The schema's includes and imports are read from its own folder tree (--allow
        widens that); nothing is fetched from the network.

        Examples:
          switchboard validate --xsd Mappings/ubl/maindoc/UBL-Invoice-2.1.xsd invoice.xml
          switchboard validate --xsd schemas/maindoc/UBL-Invoice-2.1.xsd --allow schemas invoice.xml
          cat invoice.xml | switchboard validate --xsd invoice.xsd -
        """
    )

    @Option(help: ArgumentHelp("The XML Schema.", valueName: "file"))
    var xsd: String

    @Option(help: ArgumentHelp("Folder tree the schema's includes and imports may come from, instead of its own folder.", valueName: "dir"))
    var allow: String?

    @Argument(help: ArgumentHelp("The XML file; '-' reads standard input.", valueName: "input"))
    var input: String

    func run() async throws {
        let schema: XSDSchema
        do {
            schema = try XSDSchema(path: xsd, allowedRoot: allow)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let data = try readInput(input)
        let violations: [XSDSchema.Violation]
        do {
            violations = try data.withUnsafeBytes { try schema.validate($0, name: input) }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        guard violations.isEmpty else {
            for violation in violations {
                printError("\(input):\(violation.line.map(String.init) ?? "?"): error: \(violation.message)")
            }
            printError("\(violations.count) problem\(violations.count == 1 ? "" : "s")")
            throw ExitCode.failure
        }
        print("\(input): valid against \(xsd)")
    }
}
