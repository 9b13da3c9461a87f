// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// The headers file consumers and producers set (folders, SFTP, FTP): dotted, so they are the
/// node's own and never sent on the wire (an HTTP call does not carry a local path).
public enum FileHeader {
    /// The file's path relative to the consumer's folder (Camel's `CamelFileName`).
    public static let name = "file.name"
    /// The file's name without its folders.
    public static let onlyName = "file.onlyname"
    /// The file's absolute path where it was taken.
    public static let path = "file.path"
    /// Its size in bytes.
    public static let length = "file.length"
    /// When it was last modified, milliseconds since the epoch.
    public static let lastModified = "file.modified"
    /// The path a producer wrote.
    public static let produced = "file.produced"
    /// What a producer also takes as the name to write, for routes written for Camel.
    public static let camelName = "CamelFileName"
}
