// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore
import SwitchboardRouting
import Testing

struct RouteFilesTests {
    @Test func everyYAMLFileUnderTheFolderIsLoaded() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sb-routes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/partners/acme", withIntermediateDirectories: true)
        let route = { (id: String) in "routes:\n  - id: \(id)\n    from: direct:\(id)\n" }
        try route("top").write(toFile: folder + "/top.yaml", atomically: true, encoding: .utf8)
        try route("nested").write(toFile: folder + "/partners/acme/orders.yml", atomically: true, encoding: .utf8)
        try route("hidden").write(toFile: folder + "/.draft.yaml", atomically: true, encoding: .utf8)
        try "not a route file".write(toFile: folder + "/notes.txt", atomically: true, encoding: .utf8)
        #expect(try RouteLoader.routeFiles(in: folder) == [folder + "/partners/acme/orders.yml", folder + "/top.yaml"])
        let engine = try RouteLoader(catalog: AdapterCatalog(), logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }).load(directory: folder)
        #expect(engine.routes.map(\.id).sorted() == ["nested", "top"])
        #expect(engine.route("nested")?.location.file == folder + "/partners/acme/orders.yml")
    }

    @Test func aMissingFolderIsAClearError() {
        #expect {
            try RouteLoader.routeFiles(in: "/nonexistent/routes")
        } throws: { error in
            "\(error)" == "/nonexistent/routes:1:1: error: the routes folder does not exist"
        }
    }
}
