// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform

extension FixedWidthParser {
    /// A parser reading `handle` a chunk at a time (1 MiB), so memory holds one chunk and the
    /// values not split off, whatever the file's size. `progress` is told how many bytes
    /// were read so far.
    public init(
        layout: FixedWidthLayout,
        reading handle: FileHandle,
        progress: ((Int) -> Void)? = nil,
        splitAt path: [String]? = nil,
        onPart: ((FixedWidthValue) throws -> Void)? = nil
    ) {
        var total = 0
        self.init(layout: layout, next: {
            guard let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty else { return nil }
            total += chunk.count
            progress?(total)
            return Array(chunk)
        }, splitAt: path, onPart: onPart)
    }
}

extension FixedWidthLayout {
    /// The group or record paths of the structure, dot-joined (`batches`, `batches.entries`,
    /// `batches.entries.addenda`), for choosing what to split on.
    public var structurePaths: [String] {
        func walk(_ items: [StructureItem], _ prefix: String) -> [String] {
            items.flatMap { item -> [String] in
                let path = prefix.isEmpty ? item.key : prefix + "." + item.key
                if case .group(_, let inner, _, _) = item { return [path] + walk(inner, path) }
                return [path]
            }
        }
        return walk(structure, "")
    }
}
