// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore

/// `idempotent: { key, ttl, scope }`: the steps after it in its list run once per key.
///
/// The key is claimed in the node's state store before those steps run. A message whose
/// key another message claimed within the ttl ends the route here (traced as a
/// duplicate). When the steps fail, the claim is given up so a retry by the sender or a
/// replay goes through; the same message delivered again after a crash keeps its claim
/// and goes on.
struct IdempotentStep: Processor {
    let key: Template
    let ttl: Duration
    let scope: String
    let store: any IdempotencyStore
    /// The steps after this one in its list.
    let rest: Pipeline

    func process(_ exchange: Exchange) async throws -> StepResult {
        let key = try self.key.render(exchange.message)
        guard !key.isEmpty else {
            throw ProcessingError("idempotent: the key is empty for this message", status: 400, kind: ErrorKind.validation)
        }
        let messageID = exchange.message.id
        switch try await store.claim(scope: scope, key: key, messageID: messageID, ttl: ttl) {
        case .duplicate(let original):
            return .stop(exchange, detail: "duplicate of \(original) (key \(key)); dropped")
        case .claimed, .alreadyMine:
            do {
                let result = try await rest.run(exchange)
                return StepResult(result.exchange, action: result.action, detail: "key \(key): first")
            } catch {
                try? await store.release(scope: scope, key: key, messageID: messageID)
                throw error
            }
        }
    }
}

/// An `idempotent` step before the steps after it are known; ``RouteCompiler`` replaces it
/// with an ``IdempotentStep`` that holds them.
struct PendingIdempotentStep: Processor {
    let key: Template
    let ttl: Duration
    let scope: String
    let store: any IdempotencyStore

    func process(_ exchange: Exchange) async throws -> StepResult {
        throw ProcessingError("internal error: an idempotent step was not given the steps after it")
    }

    func wrapping(_ rest: Pipeline) -> IdempotentStep {
        IdempotentStep(key: key, ttl: ttl, scope: scope, store: store, rest: rest)
    }
}

/// Stands in for the state store when routes are only checked, never run.
struct UnavailableStateStore: IdempotencyStore {
    func claim(scope: String, key: String, messageID: MessageID, ttl: Duration) async throws -> IdempotencyClaim {
        throw ProcessingError("the node has no state store", status: 503)
    }

    func release(scope: String, key: String, messageID: MessageID) async throws {}
}

extension IdempotentStep: StepKind {
    static let spec = StepSpec(
        "idempotent",
        summary: "Idempotent consumer: the steps after it run once per key; a message whose key was seen within the ttl ends the route here, traced as a duplicate. A key is given up when the message fails, so a retry or replay goes through.",
        fields: [
            Field("key", .template, required: true, "The key; a template such as ${header.X-Order-ID} or ${json:$.id}."),
            Field("ttl", .duration, default: "24h", "How long a key is remembered."),
            Field("scope", .string, "Name the keys are kept under (default: the route id); routes sharing a scope share keys."),
        ],
        scalarField: "key",
        example: "- idempotent: { key: \"${header.X-Order-ID}\", ttl: 24h }"
    )

    static func compile(_ step: StepNode, compiler: RouteCompiler, scope: RouteCompiler.RouteScope, info: inout StepInfo) -> (any Processor)? {
        let fields = step.fields
        guard let key = compiler.template(fields["key"], scope: scope) else { return nil }
        let ttl = fields["ttl"]?.scalar.flatMap { parseDuration($0) } ?? .seconds(86_400)
        let keyScope = fields["scope"]?.scalar ?? scope.routeID
        if let store = compiler.state.idempotency {
            return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: store)
        }
        if compiler.state.checkOnly {
            return PendingIdempotentStep(key: key, ttl: ttl, scope: keyScope, store: UnavailableStateStore())
        }
        compiler.log.error(step.location, "'idempotent' keeps its keys in the node's state store, and this node has none")
        return nil
    }
}
