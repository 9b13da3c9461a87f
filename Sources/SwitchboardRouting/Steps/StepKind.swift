// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import Yams

/// A step a route may use: its YAML key and fields (`spec`) and how a checked step
/// compiles into the processor that runs it. Each lives in `Steps/` in a file named after
/// its key (`split` → `SplitStep.swift`), and is listed once in `StepKinds.all`.
protocol StepKind: Processor {
    static var spec: StepSpec { get }
    /// Builds the processor, or logs why not on `compiler.log` and returns nil.
    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)?
}

extension StepKind {
    typealias Field = StepSpec.Field
}

/// The one list of step kinds: the loader, `check`, `switchboard schema` and the README's
/// step table all read it, in this order.
enum StepKinds {
    static let all: [any StepKind.Type] = [
        LogStep.self,
        SetHeaderStep.self,
        RemoveHeaderStep.self,
        SetBodyStep.self,
        XSLTStep.self,
        XMLToJSONStep.self,
        JSONToXMLStep.self,
        MapStep.self,
        ValidateStep.self,
        ChoiceStep.self,
        FilterStep.self,
        ToStep.self,
        WireTapStep.self,
        MulticastStep.self,
        SplitStep.self,
        IdempotentStep.self,
        RouteStep.self,
        StopStep.self,
    ]

    private static let byName: [String: any StepKind.Type] = Dictionary(uniqueKeysWithValues: all.map { ($0.spec.name, $0) })

    static func named(_ name: String) -> (any StepKind.Type)? {
        byName[name]
    }
}

/// One step of a route file after the generic checks: its kind, its fields, and any
/// predicate keys or endpoint options written beside them.
struct StepNode {
    let spec: StepSpec
    let keyNode: ConfigNode
    var fields: [String: ConfigNode] = [:]
    var predicate: [(key: String, keyNode: ConfigNode, value: ConfigNode)] = []
    var options: ConfigNode?

    var location: SourceLocation { keyNode.location }
}
