// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardRouting
import Testing

/// One place per step: every step a route may use is one type, in a file under `Steps/`
/// named after its YAML key, and listed once in `StepKinds.all`.
struct StepFilesTests {
    static let stepsFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/SwitchboardRouting/Steps").path

    /// `wire-tap` → `wiretapstep.swift`, compared without case (`xml-to-json` is `XMLToJSONStep.swift`).
    static func fileName(for step: String) -> String {
        step.split(separator: "-").joined().lowercased() + "step.swift"
    }

    static func swiftFiles() -> [String: String] {
        let paths = FileManager.default.enumerator(atPath: stepsFolder)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        var texts: [String: String] = [:]
        for path in paths {
            texts[path] = try? String(contentsOfFile: stepsFolder + "/" + path, encoding: .utf8)
        }
        return texts
    }

    @Test func everyStepHasAFileNamedAfterIt() throws {
        let files = Self.swiftFiles()
        #expect(StepSpec.all.count >= 18)
        for spec in StepSpec.all {
            let matches = files.filter { ($0.key.split(separator: "/").last ?? "").lowercased() == Self.fileName(for: spec.name) }
            #expect(matches.count == 1, "step '\(spec.name)' needs its own file \(Self.fileName(for: spec.name)) under Steps/")
            guard let text = matches.first?.value else { continue }
            #expect(text.contains(": StepKind {"), "\(matches.first?.key ?? "") does not declare a StepKind")
            #expect(text.contains("static let spec = StepSpec(\n        \"\(spec.name)\","), "\(matches.first?.key ?? "") does not declare the spec of '\(spec.name)'")
        }
    }

    @Test func everyDeclaredStepIsListed() {
        let declared = Self.swiftFiles().values.map { $0.components(separatedBy: ": StepKind {").count - 1 }.reduce(0, +)
        #expect(declared == StepSpec.all.count, "a type conforms to StepKind without being in StepKinds.all, or the other way round")
        #expect(Set(StepSpec.all.map(\.name)).count == StepSpec.all.count, "two step types share a YAML key")
    }
}
