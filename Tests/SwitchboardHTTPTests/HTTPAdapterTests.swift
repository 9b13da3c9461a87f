// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardHTTP
import SwitchboardRouting
import SwitchboardTransform
import Synchronization
import SwitchboardTestServers
import Testing

@Suite(.serialized)
struct HTTPAdapterTests {
    @Test func routesByHeaderToARealBackend() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: orders
                from: http:/orders?method=POST
                steps:
                  - choice:
                      - when: { header: X-Region, equals: EU }
                        steps: [ { to: "{backend}/echo/eu" } ]
                      - otherwise:
                          - to: "{backend}/echo/other"
            """, backendPort: backend) { node in
                let eu = try await node.request(.POST, "/orders", body: #"{"id":1}"#, headers: [
                    ("X-Region", "EU"), ("X-Correlation-ID", "corr-1"), ("Content-Type", "application/json"),
                    ("Keep-Alive", "timeout=5"), ("Proxy-Authorization", "Basic abc"), ("X-Custom", "kept"),
                ])
                #expect(eu.status == 200)
                let echoed = try #require(eu.body.json)
                #expect(echoed["path"] == .string("/echo/eu"))
                #expect(echoed["method"] == .string("POST"))
                #expect(echoed["body"] == .string(#"{"id":1}"#))
                let sent = try #require(echoed["headers"])
                #expect(sent["x-custom"] == .string("kept"))
                #expect(sent["x-correlation-id"] == .string("corr-1"))
                #expect(sent["content-type"] == .string("application/json"))
                #expect(sent["keep-alive"] == nil, "hop-by-hop headers are not forwarded")
                #expect(sent["proxy-authorization"] == nil)
                #expect(sent["x-region"] == .string("EU"))
                if case .object(let members) = sent {
                    #expect(!members.contains { $0.key.contains(".") }, "Switchboard's own headers stay inside")
                }
                // The response identifies the exchange and carries the backend's headers.
                let id = try #require(eu.headers.first(name: "X-Message-ID").flatMap { MessageID($0) })
                #expect(id.version == 7)
                #expect(eu.headers.first(name: "X-Correlation-ID") == "corr-1")
                #expect(eu.headers.first(name: "X-Backend") == "echo")
                #expect(eu.headers.first(name: "Content-Type") == "application/json")
                #expect(eu.headers.first(name: "X-Custom") == nil, "request headers are not echoed back")

                let other = try await node.request(.POST, "/orders", body: "{}", headers: [("X-Region", "US")])
                #expect(other.body.json?["path"] == .string("/echo/other"))
                #expect(other.headers.first(name: "X-Correlation-ID") == other.headers.first(name: "X-Message-ID"))

                let routeEvents = node.observer.all.filter { $0.step == nil && $0.phase == .completed && $0.routeID == "orders" }
                #expect(routeEvents.map(\.messageID.description) == [id.description, other.headers.first(name: "X-Message-ID")])
            }
        }
    }

    @Test func aToStepSendsOnlyTheHeadersItsFilterLetsThroughAndNeverTheNodesOwn() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: out
                from: http:/out?method=POST
                steps:
                  - set-header: { name: file.path, value: /var/switchboard/inbox/secret.xml }
                  - set-header: { name: CamelFileNameProduced, value: /var/out/x }
                  - to: { uri: "{backend}/echo/excluded", headers: { exclude: ["X-Secret*", "Camel*"] } }
              - id: only
                from: http:/only?method=POST
                steps:
                  - to: { uri: "{backend}/echo/included", headers: { include: [X-Keep] } }
            """, backendPort: backend) { node in
                let headers = [("X-Keep", "yes"), ("X-Secret-Token", "hunter2"), ("X-Other", "o")]
                let excluded = try await node.request(.POST, "/out", body: "x", headers: headers)
                let sent = try #require(excluded.body.json?["headers"])
                #expect(sent["x-keep"] == .string("yes"))
                #expect(sent["x-other"] == .string("o"))
                #expect(sent["x-secret-token"] == nil, "excluded")
                #expect(sent["camelfilenameproduced"] == nil, "excluded")
                #expect(sent["file.path"] == nil, "the node's own header never goes on the wire")
                let only = try #require(try await node.request(.POST, "/only", body: "x", headers: headers).body.json?["headers"])
                #expect(only["x-keep"] == .string("yes"))
                #expect(only["x-other"] == nil && only["x-secret-token"] == nil)
            }
        }
    }

    @Test func routesByXPathOnTheXMLBody() async throws {
        let invoice = try String(contentsOfFile: Fixtures.path("xml/ubl/UBL-Invoice-2.1-Example.xml"), encoding: .utf8)
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: invoices
                from: http:/invoices?method=POST
                namespaces:
                  inv: "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
                  cbc: "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
                  cac: "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
                steps:
                  - set-header: { name: X-Invoice, value: "${xpath:/inv:Invoice/cbc:ID}" }
                  - choice:
                      - when: { xpath: "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount > 500" }
                        steps: [ { to: "{backend}/echo/large" } ]
                      - otherwise:
                          - to: "{backend}/echo/small"
            """, backendPort: backend) { node in
                let large = try await node.request(.POST, "/invoices", body: invoice, headers: [("Content-Type", "application/xml")])
                #expect(large.body.json?["path"] == .string("/echo/large"))
                #expect(large.body.json?["headers"]?["x-invoice"] == .string("TOSL108"))
                let small = try await node.request(.POST, "/invoices", body: invoice.replacingOccurrences(of: ">729<", with: ">72<"))
                #expect(small.body.json?["path"] == .string("/echo/small"))
                // A body the predicate cannot read is the caller's fault.
                let notXML = try await node.request(.POST, "/invoices", body: "{}")
                #expect(notXML.status == 400)
                #expect(notXML.body.json?["error"]?.text.contains("the message body is not well-formed XML") == true)
            }
        }
    }

    @Test func pathCapturesAndQueryParametersBecomeHeaders() async throws {
        try await SwitchboardUnderTest.run("""
        routes:
          - id: items
            from: http:/shops/{shop}/items/{id}?method=GET
            steps:
              - set-body: "${header.shop}/${header.id} q=${header.http.query.q} raw=${header.http.query} ${header.http.method} ${header.http.path}"
        """) { node in
            let reply = try await node.request(.GET, "/shops/north/items/a%20b/?q=blue+shoes&page=2")
            #expect(reply.status == 200)
            #expect(reply.body == "north/a b q=blue shoes raw=q=blue+shoes&page=2 GET /shops/north/items/a%20b/")
            #expect(reply.headers.first(name: "shop") == nil, "captures are not echoed back")
        }
    }

    @Test func unknownPathsAndMethodsGetJSONErrors() async throws {
        try await SwitchboardUnderTest.run("""
        routes:
          - id: a
            from: http:/a?method=POST
          - id: b
            from: http:/b/{x}?method=PUT
        """) { node in
            let missing = try await node.request(.GET, "/nowhere")
            #expect(missing.status == 404)
            #expect(missing.headers.first(name: "Content-Type") == "application/json")
            #expect(missing.body.json?["error"] == .string("no route listens on GET /nowhere"))
            let wrong = try await node.request(.GET, "/a")
            #expect(wrong.status == 405)
            #expect(wrong.headers.first(name: "Allow") == "POST")
            let templated = try await node.request(.DELETE, "/b/1")
            #expect(templated.status == 405)
            #expect(try await node.request(.PUT, "/b/1", body: "x").status == 200)
        }
    }

    @Test func bodiesOverTheLimitGet413() async throws {
        try await SwitchboardUnderTest.run("""
        routes:
          - id: small
            from: http:/small?method=POST&maxBodySize=1KiB
          - id: default
            from: http:/default?method=POST
        """, maxBodySize: 4096) { node in
            let small = try await node.request(.POST, "/small", body: String(repeating: "x", count: 2000))
            #expect(small.status == 413)
            #expect(small.body.json?["error"] == .string("request body is larger than the limit of 1024 bytes for /small"))
            #expect(try await node.request(.POST, "/small", body: String(repeating: "x", count: 1000)).status == 200)
            #expect(try await node.request(.POST, "/default", body: String(repeating: "x", count: 5000)).status == 413)
            #expect(try await node.request(.POST, "/default", body: String(repeating: "x", count: 4000)).status == 200)
        }
    }

    @Test func serverErrorsFailTheStepNamingRouteStepAndURL() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: pay
                from: http:/pay?method=POST
                steps:
                  - log: paying
                  - to: "{backend}/status/503"
            """, backendPort: backend) { node in
                let reply = try await node.request(.POST, "/pay", body: "x")
                #expect(reply.status == 502)
                let error = try #require(reply.body.json)
                #expect(error["error"] == .string("route 'pay' step 1 (to http://127.0.0.1:\(backend)/status/503): http://127.0.0.1:\(backend)/status/503 answered HTTP 503 Service Unavailable"))
                #expect(error["route"] == .string("pay"))
                #expect(error["step"] == .string("1"))
                #expect(error["messageId"]?.text == reply.headers.first(name: "X-Message-ID"))
            }
        }
    }

    @Test func clientErrorsFromTheBackendPassThrough() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: find
                from: http:/find?method=GET
                steps:
                  - to: "{backend}/status/404"
            """, backendPort: backend) { node in
                let reply = try await node.request(.GET, "/find")
                #expect(reply.status == 404)
                #expect(reply.body == "status 404 from backend")
                #expect(reply.headers.first(name: "Content-Type") == "text/plain")
            }
        }
    }

    /// POSTs through a route whose one step is `to: url`: the reply's status and error text.
    static func failure(through url: String) async throws -> (status: Int, error: JSONValue?) {
        let result = Mutex<(Int, JSONValue?)>((0, nil))
        try await SwitchboardUnderTest.run("""
        routes:
          - id: out
            from: http:/out?method=POST
            steps:
              - to: "\(url)"
        """) { node in
            let reply = try await node.request(.POST, "/out", body: "x")
            result.withLock { $0 = (reply.status, reply.body.json?["error"]) }
        }
        return result.withLock { $0 }
    }

    @Test func replyHeadersReplaceRequestHeadersAndRepeatedOnesAreAllKept() async throws {
        let backend = try ScriptedServer { _, _ in
            .answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\nX-Tag: from-backend\r\nset-cookie: b=2\r\n\r\nok")
        }
        defer { backend.stop() }
        try await SwitchboardUnderTest.run("""
        routes:
          - id: out
            from: http:/out?method=POST
            steps:
              - to: "http://127.0.0.1:\(backend.port)/in"
        """) { node in
            let reply = try await node.request(.POST, "/out", body: "hello", headers: [("X-Tag", "from-client")])
            #expect(reply.status == 200)
            #expect(reply.body == "ok")
            #expect(reply.headers["Set-Cookie"] == ["a=1", "b=2"])
            #expect(reply.headers["X-Tag"] == ["from-backend"])
        }
        // The request was framed by its length, with no chunked encoding.
        let request = try #require(backend.requests.first)
        #expect(request.headers["content-length"] == "5")
        #expect(request.headers["transfer-encoding"] == nil)
        #expect(request.body == "hello")
    }

    @Test func refusedConnectionsFailClearly() async throws {
        let reply = try await Self.failure(through: "http://127.0.0.1:1/orders")
        #expect(reply.status == 502)
        #expect(reply.error == .string("route 'out' step 0 (to http://127.0.0.1:1/orders): cannot connect to http://127.0.0.1:1/orders: connection refused"))
    }

    @Test func aBackendThatHangsUpMidReplyFailsTheStepSayingSo() async throws {
        let backend = try ScriptedServer { _, _ in .answerAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart") }
        defer { backend.stop() }
        let url = "http://127.0.0.1:\(backend.port)/orders"
        let reply = try await Self.failure(through: url)
        #expect(reply.status == 502)
        #expect(reply.error == .string("route 'out' step 0 (to \(url)): \(url) closed the connection before its reply was complete"))
    }

    @Test func slowBackendsTimeOut() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: slow
                from: http:/slow?method=GET
                steps:
                  - to: "{backend}/slow?timeout=200ms"
            """, backendPort: backend) { node in
                let reply = try await node.request(.GET, "/slow")
                #expect(reply.status == 504)
                let error = reply.body.json?["error"]?.text ?? ""
                #expect(error == "route 'slow' step 0 (to http://127.0.0.1:\(backend)/slow?timeout=200ms): no reply from http://127.0.0.1:\(backend)/slow?timeout=200ms within 200ms")
            }
        }
    }

    @Test func aHeaderThatWouldInjectOthersFailsTheStepNamingIt() async throws {
        try await Self.stepError(settingHeader: "X-Evil", from: #"{"v":"a\r\nX-Injected: yes"}"#) { error, backend in
            #expect(error == "route 'inject' step 1 (to http://127.0.0.1:\(backend)/echo): request to http://127.0.0.1:\(backend)/echo not sent: header 'X-Evil' cannot go on the wire (a name must be an HTTP token, a value must not hold CR, LF or NUL)")
        }
    }

    @Test func aMethodThatWouldRewriteTheRequestLineFailsTheStep() async throws {
        try await Self.stepError(settingHeader: "http.method", from: #"{"v":"GET /admin HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET"}"#) { error, backend in
            #expect(error.hasPrefix("route 'inject' step 1 (to http://127.0.0.1:\(backend)/echo): request to http://127.0.0.1:\(backend)/echo not sent: the method \"GET /admin"))
            #expect(error.hasSuffix("(from http.method) is not an HTTP token"))
        }
    }

    /// Posts `body` to a route that sets header `name` from the body's `$.v` and then calls
    /// the backend; expects a 500 and hands `check` the step's error and the backend's port.
    static func stepError(settingHeader name: String, from body: String, _ check: @escaping @Sendable (String, Int) -> Void) async throws {
        try await SwitchboardUnderTest.withBackend("""
        routes:
          - id: inject
            from: http:/inject?method=POST
            steps:
              - set-header: { name: \(name), value: "${json:$.v}" }
              - to: "{backend}/echo"
        """) { node, backend in
            let reply = try await node.request(.POST, "/inject", body: body)
            #expect(reply.status == 500)
            check(reply.body.json?["error"]?.text ?? "", backend)
        }
    }

    @Test func aPathThatCannotGoInARequestLineIsALoadError() throws {
        let adapter = HTTPAdapter(configuration: .init(port: 0))
        defer { Task { await adapter.shutdown() } }
        #expect {
            try RouteLoader(catalog: AdapterCatalog([adapter])).load(sources: [("""
            routes:
              - id: spaced
                from: http:/spaced
                steps:
                  - to: "http://127.0.0.1:9/a b"
            """, "spaced.yaml")])
        } throws: { error in
            "\(error)".contains("spaced.yaml:5:")
                && "\(error)".contains("the path and query cannot be sent in a request line (spaces or control characters): /a b")
        }
    }

    @Test func statusHeaderSetsTheResponseStatus() async throws {
        try await SwitchboardUnderTest.run("""
        routes:
          - id: create
            from: http:/things?method=POST
            steps:
              - set-header: { name: http.status, value: "201" }
              - set-header: { name: Location, value: "/things/${id}" }
              - set-body: { value: '{"created":true}', content-type: application/json }
        """) { node in
            let reply = try await node.request(.POST, "/things", body: "{}")
            #expect(reply.status == 201)
            #expect(reply.headers.first(name: "Location") == "/things/\(reply.headers.first(name: "X-Message-ID") ?? "")")
            #expect(reply.headers.first(name: "http.status") == nil)
            #expect(reply.body == #"{"created":true}"#)
        }
    }

    @Test func methodsQueriesAndCredentialsReachTheBackend() async throws {
        try await Backend.run { backend in
            try await SwitchboardUnderTest.run("""
            routes:
              - id: proxy
                from: http:/proxy
                steps:
                  - to: "{backend}/echo/proxied?fixed=1&timeout=5s"
              - id: put
                from: http:/put?method=POST
                steps:
                  - to: { uri: "http://svc:s3cret@127.0.0.1:\(backend)/echo/put", method: PUT }
            """, backendPort: backend) { node in
                let get = try await node.request(.GET, "/proxy")
                #expect(get.body.json?["method"] == .string("GET"), "the inbound method is kept")
                #expect(get.body.json?["query"] == .string("fixed=1"), "options are not sent, other parameters are")
                let delete = try await node.request(.DELETE, "/proxy")
                #expect(delete.body.json?["method"] == .string("DELETE"))
                let put = try await node.request(.POST, "/put", body: "x")
                #expect(put.body.json?["method"] == .string("PUT"))
                #expect(put.body.json?["headers"]?["authorization"] == .string("Basic " + Data("svc:s3cret".utf8).base64EncodedString()))
                let endpoints = node.observer.all.compactMap(\.step?.endpoint)
                #expect(endpoints.contains("http://svc:***@127.0.0.1:\(backend)/echo/put"))
                #expect(!endpoints.contains { $0.contains("s3cret") })

                // The URL's credentials, the correlation id and the trace replace what the
                // caller sent: each goes once.
                let inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                let replaced = try await node.request(.POST, "/put", body: "x", headers: [
                    ("Authorization", "Bearer from-the-caller"), ("X-Correlation-ID", "order-7"), ("traceparent", inbound), ("X-Kept", "yes"),
                ])
                let sent = try #require(replaced.body.json?["headers"])
                #expect(sent["authorization"] == .string("Basic " + Data("svc:s3cret".utf8).base64EncodedString()))
                #expect(sent["x-correlation-id"] == .string("order-7"))
                #expect(sent["x-kept"] == .string("yes"))
                let traceparent = try #require(sent["traceparent"]?.text)
                #expect(traceparent.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !traceparent.contains("00f067aa0ba902b7"))
                for name in ["authorization", "x-correlation-id", "traceparent", "content-length"] {
                    #expect(replaced.body.components(separatedBy: "\"\(name)\":").count == 2, "\(name) is sent once")
                }
                #expect(!replaced.body.contains("from-the-caller"))
            }
        }
    }

    @Test func duplicateMethodAndPathIsALoadError() throws {
        let adapter = HTTPAdapter(configuration: .init(port: 0))
        defer { Task { await adapter.shutdown() } }
        #expect {
            try RouteLoader(catalog: AdapterCatalog([adapter])).load(sources: [("""
            routes:
              - id: a
                from: http:/orders/{id}?method=POST
              - id: b
                from: http:/orders/{orderId}?method=POST
              - id: c
                from: http:/orders/{id}?method=GET
            """, "dup.yaml")])
        } throws: { error in
            "\(error)" == "dup.yaml:5:11: error: route 'b' listens on POST /orders/{}, which route 'a' already does (dup.yaml:3:11)"
        }
    }

    @Test func badHTTPEndpointsAreLoadErrors() throws {
        let adapter = HTTPAdapter(configuration: .init(port: 0))
        defer { Task { await adapter.shutdown() } }
        #expect {
            try RouteLoader(catalog: AdapterCatalog([adapter])).load(sources: [("""
            routes:
              - id: a
                from: http:/orders?method=FETCH
              - id: b
                from: http://0.0.0.0:9000/orders
              - id: c
                from: http:orders
                steps:
                  - to: "http:/relative"
                  - to: "http://h:1/x?timeout=soon"
            """, "bad.yaml")])
        } throws: { error in
            let lines = "\(error)".split(separator: "\n").map(String.init)
            return lines == [
                "bad.yaml:3:24: error: option 'method' expects one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, got 'FETCH'",
                "bad.yaml:5:11: error: an HTTP consumer is a path on the node's listener, as in http:/orders; the listen address is set in the node config (http.listen)",
                "bad.yaml:7:11: error: an HTTP consumer path must start with '/', as in http:/orders; got 'orders'",
                "bad.yaml:9:14: error: an HTTP producer needs a host, as in http://127.0.0.1:9000/orders",
                "bad.yaml:10:27: error: option 'timeout' expects a duration such as 500ms, 5s or 2m, got 'soon'",
            ]
        }
    }
}
