// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Where tests find their data: `Tests/Fixtures` in this repository, and, for the few
/// files whose licence keeps them out of it, the folder `SWITCHBOARD_TEST_SHARED_DATA` names
/// (`make test` sets it when the shared acceptance data is there); tests that need those
/// are skipped without it.
public enum Fixtures {
    /// The repository's root folder.
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL.path

    /// `Tests/Fixtures`.
    public static let root = repository + "/Tests/Fixtures"

    /// A file or folder under `Tests/Fixtures`.
    public static func path(_ relative: String) -> String {
        root + "/" + relative
    }

    /// The folder `SWITCHBOARD_TEST_SHARED_DATA` names, when it is set and exists.
    public static let shared: String? = {
        guard let given = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_SHARED_DATA"], !given.isEmpty else { return nil }
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: given, isDirectory: &isFolder) && isFolder.boolValue ? given : nil
    }()

    /// Whether the shared data is there (for `.enabled(if:)`).
    public static var hasShared: Bool { shared != nil }

    /// A file or folder under the shared data; only call it from tests enabled by `hasShared`.
    public static func shared(_ relative: String) -> String {
        (shared ?? "") + "/" + relative
    }
}
