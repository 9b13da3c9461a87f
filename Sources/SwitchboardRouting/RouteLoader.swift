// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import SwitchboardCore

/// Loads route files into a ``RouteEngine``.
public struct RouteLoader: Sendable {
    public var catalog: AdapterCatalog
    public var observers: [any ExchangeObserver]
    public var logger: Logger
    /// What `${env.NAME}` reads.
    public var environment: [String: String]
    /// Where `xslt:` (and later `validate:`, `map:`) find their files.
    public var mappingsDirectory: String
    /// The node's dead letter, idempotency and intake stores.
    public var state: NodeState
    /// The node's `on-error`, for routes that have none.
    public var defaultErrorPolicy: ErrorPolicy?

    public init(
        catalog: AdapterCatalog,
        observers: [any ExchangeObserver] = [],
        logger: Logger = Logger(label: "switchboard"),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        mappingsDirectory: String = "Mappings",
        state: NodeState = NodeState(),
        defaultErrorPolicy: ErrorPolicy? = nil
    ) {
        self.state = state
        self.defaultErrorPolicy = defaultErrorPolicy
        self.catalog = catalog
        self.observers = observers
        self.logger = logger
        self.environment = environment
        self.mappingsDirectory = mappingsDirectory
    }

    /// Every `*.yaml` and `*.yml` file under `directory`, at any depth, sorted by path.
    ///
    /// - Throws: ``ConfigurationError`` when the folder does not exist.
    public static func routeFiles(in directory: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigurationError([Diagnostic(at: SourceLocation(file: directory, line: 1, column: 1), "the routes folder does not exist")])
        }
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            guard !name.hasPrefix("."), relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") else { continue }
            files.append((directory as NSString).appendingPathComponent(relative))
        }
        return files.sorted()
    }

    /// Loads every route file under `directory`.
    ///
    /// - Throws: ``ConfigurationError`` with every problem in every file.
    public func load(directory: String) throws -> RouteEngine {
        try load(files: RouteLoader.routeFiles(in: directory))
    }

    /// Loads the given route files. Messages name files as given.
    public func load(files: [String]) throws -> RouteEngine {
        var sources: [(text: String?, file: String, readError: Diagnostic?)] = []
        for file in files {
            do {
                sources.append((try ConfigNode.text(path: file, displayName: file), file, nil))
            } catch let error as ConfigurationError {
                sources.append((nil, file, error.diagnostics.first))
            }
        }
        return try compile(sources)
    }

    /// Loads routes from text, each with the file name messages should use.
    public func load(sources: [(text: String, file: String)]) throws -> RouteEngine {
        try compile(sources.map { ($0.text, $0.file, nil) })
    }

    private func compile(_ sources: [(text: String?, file: String, readError: Diagnostic?)]) throws -> RouteEngine {
        var observers = self.observers
        if logger.logLevel <= .debug {
            observers.append(LoggingObserver(logger: logger))
        }
        let compiler = RouteCompiler(catalog: catalog, observers: ObserverSet(observers), logger: logger, environment: environment, mappingsDirectory: mappingsDirectory,
            state: state, defaultErrorPolicy: defaultErrorPolicy
        )
        var diagnostics: [Diagnostic] = []
        for source in sources {
            if let readError = source.readError {
                diagnostics.append(readError)
                continue
            }
            do {
                let root = try ConfigNode.parse(source.text ?? "", file: source.file)
                compiler.compileFile(root, file: source.file)
            } catch let error as ConfigurationError {
                diagnostics.append(contentsOf: error.diagnostics)
            }
        }
        let engine: RouteEngine
        do {
            engine = try compiler.finish()
        } catch let error as ConfigurationError {
            throw ConfigurationError(DiagnosticLog.sorted(diagnostics + error.diagnostics))
        }
        if !diagnostics.isEmpty {
            throw ConfigurationError(DiagnosticLog.sorted(diagnostics + engine.warnings))
        }
        return engine
    }
}
