// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Where tests find their data: `Tests/Fixtures` in this repository, and the shared
/// acceptance data beside it (`../shared/data`) for the few files whose licence keeps them
/// out of the repository; tests that need those are skipped when it is absent.
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

    /// `../shared/data` beside the repository, when it exists.
    public static let shared: String? = {
        let folder = URL(fileURLWithPath: repository + "/../shared/data").standardizedFileURL.path
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue ? folder : nil
    }()

    /// Whether the shared data is there (for `.enabled(if:)`).
    public static var hasShared: Bool { shared != nil }

    /// A file or folder under the shared data; only call it from tests enabled by `hasShared`.
    public static func shared(_ relative: String) -> String {
        (shared ?? "/nonexistent/shared/data") + "/" + relative
    }
}
