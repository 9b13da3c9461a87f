// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

/// The module layering of docs/architecture.md, checked on the import lines of every source
/// file: a module may import only the project modules its layer allows.
struct ModuleBorderTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    enum Layer: String {
        case foundation, library, format, kit, adapter, service, engine, node
    }

    /// Every Swift target's layer; a new target must be placed here.
    static let layers: [String: Layer] = [
        "SwitchboardCore": .foundation, "SwitchboardYAML": .foundation,
        "SwitchboardTransform": .library, "SwitchboardStorage": .library, "SwitchboardDigest": .library,
        "SwitchboardFixedWidth": .format,
        "SwitchboardDropFolder": .kit,
        "SwitchboardHTTP": .adapter, "SwitchboardFile": .adapter, "SwitchboardSFTP": .adapter,
        "SwitchboardFTP": .adapter, "SwitchboardDatabase": .adapter,
        "SwitchboardAudit": .service, "SwitchboardSLA": .service, "SwitchboardRegistry": .service,
        "SwitchboardState": .service,
        "SwitchboardRouting": .engine,
        "SwitchboardNode": .node, "switchboard": .node,
    ]

    /// What each layer may import of the project.
    static func allowed(_ layer: Layer) -> Set<Layer> {
        switch layer {
        case .foundation: []
        case .library: [.foundation]
        case .format: [.foundation, .library]
        case .kit: [.foundation, .library, .format]
        case .adapter: [.foundation, .library, .format, .kit]
        case .service: [.foundation, .library, .engine]
        case .engine: [.foundation, .library, .format]
        case .node: [.foundation, .library, .format, .kit, .adapter, .service, .engine, .node]
        }
    }

    /// Crossings still to be removed; the test fails when one is added and when one of
    /// these goes, so that this list only shrinks. None are left.
    static let knownCrossings: Set<String> = []

    /// Swift targets by module name and folder, read from Package.swift.
    static func targets() throws -> [(name: String, path: String)] {
        let manifest = try String(contentsOfFile: repository + "/Package.swift", encoding: .utf8)
        var found: [(String, String)] = []
        for block in manifest.components(separatedBy: ".target(").dropFirst() + manifest.components(separatedBy: ".executableTarget(").dropFirst() {
            let head = String(block.prefix(2_000))
            guard let name = head.firstMatch(of: /name: "([^"]+)"/)?.1 else { continue }
            // A target's block ends where the next one begins; without `path:` it is Sources/NAME.
            let own = head.components(separatedBy: "\n        ),").first ?? head
            let path = own.firstMatch(of: /path: "([^"]+)"/).map { String($0.1) } ?? "Sources/\(name)"
            found.append((String(name), path))
        }
        return found
    }

    /// The project modules the Swift files under `folder` import.
    static func imports(under folder: String) -> Set<String> {
        var modules: Set<String> = []
        let files = FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        for file in files {
            guard let text = try? String(contentsOfFile: folder + "/" + file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let trimmed = line.drop { $0 == " " }
                guard trimmed.hasPrefix("import ") || trimmed.hasPrefix("@") else { continue }
                if let match = line.firstMatch(of: /^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|typealias)\s+)?([A-Za-z_]+)/) {
                    let module = String(match.1)
                    if layers[module] != nil { modules.insert(module) }
                }
            }
        }
        return modules
    }

    @Test func everyTargetHasALayer() throws {
        let targets = try Self.targets()
        #expect(targets.count >= 15, "\(targets)")
        for target in targets where target.path.hasPrefix("Sources/Switchboard") || target.path.hasPrefix("Adapters/") || target.name == "switchboard" {
            #expect(Self.layers[target.name] != nil, "\(target.name) (\(target.path)) has no layer in ModuleBorderTests")
        }
        // Adapters live under Adapters/, and nothing else does.
        for target in targets where target.path.hasPrefix("Adapters/") {
            #expect(Self.layers[target.name] == .adapter, "\(target.path) holds \(target.name), which is not an adapter")
        }
    }

    @Test func importsStayInsideTheirLayers() throws {
        var crossings: Set<String> = []
        for target in try Self.targets() {
            guard let layer = Self.layers[target.name] else { continue }
            for module in Self.imports(under: Self.repository + "/" + target.path) where module != target.name {
                guard let other = Self.layers[module] else { continue }
                if !Self.allowed(layer).contains(other) {
                    crossings.insert("\(target.name) imports \(module)")
                }
            }
        }
        #expect(crossings.subtracting(Self.knownCrossings).sorted() == [], "imports that cross a border (docs/architecture.md, Module map)")
        #expect(Self.knownCrossings.subtracting(crossings).sorted() == [], "gone: remove them from knownCrossings")
    }

    @Test func theImportReaderSeesEveryForm() {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-imports-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try? """
        import Foundation
        @testable import SwitchboardHTTP
        @preconcurrency import SwitchboardFile
        import struct SwitchboardRouting.RouteEngine
        // import SwitchboardNode
        """.write(toFile: folder + "/a.swift", atomically: true, encoding: .utf8)
        #expect(Self.imports(under: folder) == ["SwitchboardHTTP", "SwitchboardFile", "SwitchboardRouting"])
    }
}
