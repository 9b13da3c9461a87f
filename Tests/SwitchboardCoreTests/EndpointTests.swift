// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardCore
import Testing

struct EndpointTests {
    static let spec = EndpointSpec(
        schemes: ["demo"],
        summary: "test adapter",
        consumerSyntax: "demo:/path",
        producerSyntax: "demo://host/path",
        options: [
            OptionSpec("method", .choice(["GET", "POST"]), doc: "method"),
            OptionSpec("timeout", .duration, default: "30s", roles: [.producer], doc: "timeout"),
            OptionSpec("maxBodySize", .size, roles: [.consumer], doc: "size"),
            OptionSpec("retries", .int, default: "2", doc: "retries"),
            OptionSpec("verbose", .bool, default: "false", doc: "verbose"),
            OptionSpec("apiKey", .string, secret: true, doc: "key"),
        ]
    )

    @Test func consumerURIWithOptionsParses() throws {
        let endpoint = try Endpoint(parsing: "demo:/orders/{id}?method=POST&maxBodySize=1MiB", spec: Self.spec, role: .consumer)
        #expect(endpoint.scheme == "demo")
        #expect(endpoint.path == "/orders/{id}")
        #expect(!endpoint.hasAuthority)
        #expect(endpoint.options.string("method") == "POST")
        #expect(endpoint.options.size("maxBodySize") == 1024 * 1024)
        #expect(endpoint.options.int("retries") == 2)
        #expect(endpoint.options.bool("verbose") == false)
        #expect(endpoint.options.duration("timeout") == nil, "producer-only options are not filled for consumers")
    }

    @Test func producerURIWithAuthorityParses() throws {
        let endpoint = try Endpoint(parsing: "demo://alice:s3cret@backend.local:9443/api/v1?timeout=1500ms&retries=5", spec: Self.spec, role: .producer)
        #expect(endpoint.user == "alice")
        #expect(endpoint.password == "s3cret")
        #expect(endpoint.host == "backend.local")
        #expect(endpoint.port == 9443)
        #expect(endpoint.path == "/api/v1")
        #expect(endpoint.options.duration("timeout") == .milliseconds(1500))
        #expect(endpoint.options.int("retries") == 5)
    }

    @Test func descriptionsNeverShowPasswordsOrSecrets() throws {
        let endpoint = try Endpoint(parsing: "demo://alice:s3cret@host/p?apiKey=TOPSECRET&retries=1", spec: Self.spec, role: .producer)
        #expect(!endpoint.description.contains("s3cret"))
        #expect(!endpoint.description.contains("TOPSECRET"))
        #expect(endpoint.description == "demo://alice:***@host/p?apiKey=***&retries=1")
    }

    @Test func unknownOptionSuggestsTheCloseOneAndSaysWhere() {
        let text = "demo://host/p?retires=3"
        #expect {
            try Endpoint(parsing: text, spec: Self.spec, role: .producer)
        } throws: { error in
            let error = error as? EndpointError
            return error?.message == "unknown option 'retires' for 'demo:' producers; did you mean 'retries'?"
                && error?.offset == 14
        }
    }

    @Test func mistypedOptionValuesAreRefused() {
        for (text, expected) in [
            ("demo://h/p?retries=many", "option 'retries' expects an integer, got 'many'"),
            ("demo://h/p?timeout=soon", "option 'timeout' expects a duration such as 500ms, 5s or 2m, got 'soon'"),
            ("demo://h/p?verbose=perhaps", "option 'verbose' expects true or false, got 'perhaps'"),
            ("demo://h/p?method=PUT", "option 'method' expects one of GET, POST, got 'PUT'"),
        ] {
            do {
                _ = try Endpoint(parsing: text, spec: Self.spec, role: .producer)
                Issue.record("'\(text)' was accepted")
            } catch let error as EndpointError {
                #expect(error.message == expected)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func badURIsAreRefusedWithAReason() {
        let cases: [(String, String)] = [
            ("no scheme here", "is not an endpoint URI"),
            ("demo://host:99999/p", "port '99999' is not a number from 0 to 65535"),
            ("demo://:80/p", "has no host after '//'"),
            ("demo://h/p?retries=%zz", "bad percent-encoding"),
        ]
        for (text, fragment) in cases {
            do {
                _ = try Endpoint(parsing: text, spec: Self.spec, role: .producer)
                Issue.record("'\(text)' was accepted")
            } catch let error as EndpointError {
                #expect(error.message.contains(fragment), "\(error.message)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func producersCanKeepUnknownQueryParametersWhenTheSpecSaysSo() throws {
        var spec = Self.spec
        spec.producerKeepsUnknownQuery = true
        let endpoint = try Endpoint(parsing: "demo://h/search?q=swift&retries=1&page=2", spec: spec, role: .producer)
        #expect(endpoint.query.map(\.name) == ["q", "page"])
        #expect(endpoint.options.int("retries") == 1)
        #expect(throws: EndpointError.self) {
            try Endpoint(parsing: "demo:/p?q=swift", spec: spec, role: .consumer)
        }
    }

    @Test func catalogNamesUnknownSchemes() {
        struct Demo: Adapter {
            static let spec = EndpointTests.spec
        }
        let catalog = AdapterCatalog([Demo()])
        do {
            _ = try catalog.resolve("deme://h/p", role: .producer)
            Issue.record("unknown scheme accepted")
        } catch let error as EndpointError {
            #expect(error.message == "unknown scheme 'deme'; did you mean 'demo'?")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func durationsAndSizesParseTheWaysRouteFilesWriteThem() {
        #expect(parseDuration("250ms") == .milliseconds(250))
        #expect(parseDuration("5s") == .seconds(5))
        #expect(parseDuration("1m30s") == .seconds(90))
        #expect(parseDuration("2h") == .seconds(7200))
        #expect(parseDuration("1500") == .milliseconds(1500))
        #expect(parseDuration("1.5s") == .milliseconds(1500))
        #expect(parseDuration("soon") == nil)
        #expect(parseDuration("5 parsecs") == nil)
        // Past 100 years: refused rather than overflowing when turned into nanoseconds.
        #expect(parseDuration("36500d") == .seconds(36_500 * 86_400))
        #expect(parseDuration("10000000000h") == nil)
        #expect(parseDuration("99999999999999999") == nil)
        #expect(parseDuration("36000d36000d") == nil)
        #expect(parseSize("512") == 512)
        #expect(parseSize("64KiB") == 65536)
        #expect(parseSize("10MiB") == 10 * 1024 * 1024)
        #expect(parseSize("1MB") == 1_000_000)
        #expect(parseSize("ten") == nil)
        #expect(parseSize("99999999999999GiB") == nil)
    }
}
