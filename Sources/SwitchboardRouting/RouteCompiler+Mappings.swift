// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

// Files steps read from the mappings folder (stylesheets, schemas, layouts, maps).
import Foundation
import SwitchboardCore

// Steps that read the mappings folder: xslt, validate, split's fixed-width layouts.
extension RouteCompiler {
    /// A path inside the mappings folder, or nil (with an error) when it would leave it.
    func mappingsPath(_ relative: String, at location: SourceLocation, what: String, mustExist: Bool = true) -> String? {
        let base = URL(fileURLWithPath: mappingsDirectory).standardizedFileURL.path
        let path = URL(fileURLWithPath: relative, relativeTo: URL(fileURLWithPath: base + "/")).standardizedFileURL.path
        guard !relative.hasPrefix("/"), path == base || path.hasPrefix(base + "/") else {
            log.error(location, "\(what) '\(relative)' is outside the mappings folder; give a path relative to \(mappingsDirectory)")
            return nil
        }
        return path
    }
}
