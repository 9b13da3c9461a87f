// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

/// The admin API's OpenAPI document, served at `/admin/openapi.yaml`. The node tests check
/// that every path in it is served and every path served is in it.
enum AdminOpenAPI {
    static let document = """
    openapi: 3.1.0
    info:
      title: Switchboard admin API
      version: 0.1.0
      description: >-
        Health, metrics, routes, message traces and SLA state of a running Switchboard node.
        With a token configured (admin.token or SWITCHBOARD_ADMIN_TOKEN) every endpoint but
        /health needs 'Authorization: Bearer TOKEN'; without one the API listens on loopback only.
    security:
      - bearer: []
    components:
      securitySchemes:
        bearer:
          type: http
          scheme: bearer
      responses:
        Unauthorized:
          description: Missing or wrong bearer token.
          content:
            application/json: { schema: { $ref: '#/components/schemas/Error' } }
      schemas:
        Service:
          type: object
          required: [name, balance, failover, instances]
          properties:
            name: { type: string }
            balance: { type: string, enum: [round-robin, least-outstanding, weighted] }
            failover: { type: integer }
            instances:
              type: array
              items:
                type: object
                required: [id, url, weight, registered, healthy, breaker, inFlight, calls, failures]
                properties:
                  id: { type: string }
                  url: { type: string }
                  version: { type: string }
                  zone: { type: string }
                  weight: { type: integer }
                  registered: { type: boolean }
                  expiresIn: { type: number, description: seconds until a registration lapses }
                  healthy: { type: boolean }
                  breaker: { type: string, enum: [closed, open, half-open] }
                  inFlight: { type: integer }
                  calls: { type: integer }
                  failures: { type: integer }
                  latencyMillis: { type: number }
        DeadLetter:
          type: object
          required: [id, route, step, error, attempts, replays, firstFailedAt, lastFailedAt, correlationId, bodySize, headers]
          properties:
            id: { type: string, description: the id of the message that failed }
            route: { type: string }
            step: { type: string, description: "the failed step: path, kind and endpoint" }
            error: { type: string }
            attempts: { type: integer }
            replays: { type: integer }
            firstFailedAt: { type: string, format: date-time }
            lastFailedAt: { type: string, format: date-time }
            correlationId: { type: string }
            bodySize: { type: integer }
            headers: { type: array, items: { type: array, items: { type: string } } }
            body: { type: string }
            bodyEncoding: { type: string, enum: [utf-8, base64] }
        Replays:
          type: object
          required: [replays]
          properties:
            replays:
              type: array
              items:
                type: object
                required: [deadLetter, replay, route, succeeded]
                properties:
                  deadLetter: { type: string }
                  replay: { type: string, description: the id of the replayed message }
                  route: { type: string }
                  succeeded: { type: boolean }
                  error: { type: string }
        Error:
          type: object
          required: [error, status]
          properties:
            error: { type: string }
            status: { type: integer }
        Event:
          type: object
          description: One audit event; a route row has kind 'route'.
          required: [messageId, correlationId, route, entry, kind, phase, startedAt, bodyChanged, bodySize]
          properties:
            sequence: { type: integer }
            messageId: { type: string }
            correlationId: { type: string }
            parentId: { type: string }
            traceId: { type: string, description: W3C trace id }
            route: { type: string }
            entry: { type: boolean, description: true for the route a consumer delivered the message to }
            kind: { type: string, description: "'route' or the step kind (to, choice, ...)" }
            stepIndex: { type: integer }
            step: { type: string, description: "step path such as 1.when[0].0" }
            endpoint: { type: string, description: endpoint, credentials removed }
            phase: { type: string, enum: [started, completed, failed] }
            startedAt: { type: integer, description: microseconds since the Unix epoch }
            durationMicros: { type: integer }
            error: { type: string }
            detail: { type: string, description: the branch a choice took, a reply status }
            headers: { type: array, items: { type: array, items: { type: string } }, description: "[name, value] pairs; masked values are ***" }
            bodyHash: { type: string, description: SHA-256, hex }
            bodyText: { type: string }
            bodyBase64: { type: string }
            bodyChanged: { type: boolean }
            bodySizeIn: { type: integer }
            bodySize: { type: integer }
        Trace:
          type: object
          required: [messageId, status, events, children]
          properties:
            messageId: { type: string }
            correlationId: { type: string }
            parentId: { type: string }
            traceId: { type: string }
            route: { type: string }
            status: { type: string, enum: [ok, failed, in-flight] }
            startedAt: { type: integer }
            durationMicros: { type: integer }
            events: { type: array, items: { $ref: '#/components/schemas/Event' } }
            children: { type: array, items: { $ref: '#/components/schemas/Trace' } }
        Route:
          type: object
          required: [id, source, location, messages, failures, inFlight, sla]
          properties:
            id: { type: string }
            source: { type: string }
            location: { type: string }
            messages: { type: integer }
            failures: { type: integer }
            inFlight: { type: integer }
            p95Micros: { type: [integer, "null"] }
            sla: { type: string, description: "'-' without an SLA, 'ok', or 'breached: objectives'" }
        Objective:
          type: object
          required: [route, objective, target, window, state, samples]
          properties:
            route: { type: string }
            objective: { type: string, description: "p95, errors, throughput, max-age" }
            target: { type: string }
            value: { type: string }
            window: { type: string }
            state: { type: string, enum: [ok, breached, no data] }
            breachedSince: { type: integer }
            samples: { type: integer }
        SLAEvent:
          type: object
          required: [routeID, objective, state, value, target, at]
          properties:
            routeID: { type: string }
            objective: { type: string }
            state: { type: string, enum: [breached, recovered] }
            value: { type: string }
            target: { type: string }
            at: { type: integer }
    paths:
      /health:
        get:
          summary: Liveness; needs no token.
          security: []
          responses:
            '200':
              description: The node runs.
              content:
                application/json:
                  schema:
                    type: object
                    required: [status, routes, uptimeSeconds]
                    properties:
                      status: { type: string }
                      routes: { type: integer }
                      uptimeSeconds: { type: integer }
      /metrics:
        get:
          summary: Prometheus metrics (route and step counts, latency histograms, in-flight exchanges, audit buffer depth, SLA state).
          responses:
            '200':
              description: Prometheus text exposition format.
              content:
                text/plain: { schema: { type: string } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/routes:
        get:
          summary: Every route with its source, counters and recent p95.
          responses:
            '200':
              description: The routes.
              content:
                application/json:
                  schema:
                    type: object
                    required: [routes]
                    properties:
                      routes: { type: array, items: { $ref: '#/components/schemas/Route' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/routes/{id}/messages:
        post:
          summary: Send a message into a route (what 'switchboard send' uses); answers with the route's reply.
          parameters:
            - { name: id, in: path, required: true, schema: { type: string } }
          requestBody:
            description: The message body; request headers become message headers.
            content:
              '*/*': { schema: { type: string } }
          responses:
            '200':
              description: The route's reply body, with X-Message-ID and X-Correlation-ID.
              content:
                '*/*': { schema: { type: string } }
            '404':
              description: No such route.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '502':
              description: A step failed; the body names route, step and message id.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/services:
        get:
          summary: Services and their instances ('switchboard services'), with health, breaker state, in flight, calls, failures and latency.
          responses:
            '200':
              description: The services.
              content:
                application/json:
                  schema:
                    type: object
                    required: [services]
                    properties:
                      services: { type: array, items: { $ref: '#/components/schemas/Service' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/services/{name}/instances/{id}:
        put:
          summary: Register an instance, or renew its TTL (heartbeat).
          parameters:
            - { name: name, in: path, required: true, schema: { type: string } }
            - { name: id, in: path, required: true, schema: { type: string } }
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [url]
                  properties:
                    url: { type: string, description: "base URL, http:// or https://" }
                    version: { type: string }
                    zone: { type: string }
                    weight: { type: integer, minimum: 1 }
                    ttl: { type: string, description: "a duration such as 30s; absent: never lapses" }
          responses:
            '200': { description: Registered. }
            '400':
              description: The body is wrong.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
        delete:
          summary: Deregister an instance.
          parameters:
            - { name: name, in: path, required: true, schema: { type: string } }
            - { name: id, in: path, required: true, schema: { type: string } }
          responses:
            '200': { description: Deregistered. }
            '404':
              description: No such instance.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/dead-letters:
        get:
          summary: Failed messages kept for replay, oldest first ('switchboard dead-letters'). Secret headers show as ***.
          parameters:
            - { name: route, in: query, schema: { type: string } }
            - { name: limit, in: query, schema: { type: integer, minimum: 1, default: 1000 } }
          responses:
            '200':
              description: The dead letters.
              content:
                application/json:
                  schema:
                    type: object
                    required: [deadLetters]
                    properties:
                      deadLetters: { type: array, items: { $ref: '#/components/schemas/DeadLetter' } }
            '404':
              description: The node has no dead letter store.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/dead-letters/{id}:
        get:
          summary: One dead letter with its body (text, or base64 when not UTF-8).
          parameters:
            - { name: id, in: path, required: true, schema: { type: string } }
          responses:
            '200':
              description: The dead letter.
              content:
                application/json: { schema: { $ref: '#/components/schemas/DeadLetter' } }
            '404':
              description: No such dead letter.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
        delete:
          summary: Discard a dead letter without replaying it.
          parameters:
            - { name: id, in: path, required: true, schema: { type: string } }
          responses:
            '200': { description: Discarded. }
            '404':
              description: No such dead letter.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/dead-letters/{id}/replay:
        post:
          summary: Send a dead letter through its route again ('switchboard replay ID'); removed when the replay succeeds.
          parameters:
            - { name: id, in: path, required: true, schema: { type: string } }
          responses:
            '200':
              description: What the replay came to.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Replays' } }
            '404':
              description: No such dead letter, or its route is not loaded.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/dead-letters/replay:
        post:
          summary: Replay every dead letter of a route, or all ('switchboard replay --dead-letter').
          parameters:
            - { name: route, in: query, schema: { type: string } }
          responses:
            '200':
              description: What each replay came to.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Replays' } }
            '404':
              description: No such route.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/traces:
        get:
          summary: Messages matching a query, newest first (oldest first with 'after'), each with its events.
          parameters:
            - { name: id, in: query, schema: { type: string } }
            - { name: correlation, in: query, schema: { type: string } }
            - { name: route, in: query, schema: { type: string } }
            - { name: status, in: query, schema: { type: string, enum: [ok, failed] } }
            - { name: since, in: query, description: "a duration back from now (10m) or an RFC 3339 time", schema: { type: string } }
            - { name: until, in: query, schema: { type: string } }
            - { name: header, in: query, description: "NAME=VALUE the message arrived with", schema: { type: string } }
            - { name: limit, in: query, schema: { type: integer, minimum: 1, default: 20 } }
            - { name: after, in: query, description: "only messages finished after this sequence number", schema: { type: integer } }
          responses:
            '200':
              description: The traces.
              content:
                application/json:
                  schema:
                    type: object
                    required: [traces]
                    properties:
                      traces: { type: array, items: { $ref: '#/components/schemas/Trace' } }
            '400':
              description: A parameter is wrong.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/traces/{id}:
        get:
          summary: One message's trace.
          parameters:
            - { name: id, in: path, required: true, schema: { type: string } }
          responses:
            '200':
              description: The trace.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Trace' } }
            '404':
              description: No trace for that id.
              content:
                application/json: { schema: { $ref: '#/components/schemas/Error' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/sla:
        get:
          summary: Every SLA objective's current state, and the latest breach and recovery events.
          responses:
            '200':
              description: The SLA state.
              content:
                application/json:
                  schema:
                    type: object
                    required: [objectives, events]
                    properties:
                      objectives: { type: array, items: { $ref: '#/components/schemas/Objective' } }
                      events: { type: array, items: { $ref: '#/components/schemas/SLAEvent' } }
            '401': { $ref: '#/components/responses/Unauthorized' }
      /admin/openapi.yaml:
        get:
          summary: This document.
          responses:
            '200':
              description: OpenAPI 3.1 in YAML.
              content:
                application/yaml: { schema: { type: string } }
            '401': { $ref: '#/components/responses/Unauthorized' }
    """
}
