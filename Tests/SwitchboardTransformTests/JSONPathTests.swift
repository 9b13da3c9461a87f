// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import SwitchboardTransform
import Testing

struct JSONPathTests {
    static let store = try! JSONValue(parsing: """
    {"store": {"book": [
        {"category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95},
        {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99},
        {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99},
        {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99}
      ],
      "bicycle": {"color": "red", "price": 399}
    }}
    """)

    func select(_ path: String) throws -> [JSONValue] {
        try JSONPath(path).select(JSONPathTests.store)
    }

    @Test func namesIndexesAndWildcards() throws {
        #expect(try select("$.store.bicycle.color") == [.string("red")])
        #expect(try select("$['store']['book'][0].author") == [.string("Nigel Rees")])
        #expect(try select("$.store.book[-1].title") == [.string("The Lord of the Rings")])
        #expect(try select("$.store.book[*].price").count == 4)
        #expect(try select("$.store.*").count == 2)
    }

    @Test func slicesAndDescendants() throws {
        #expect(try select("$.store.book[0:2].price") == [.number(8.95), .number(12.99)])
        #expect(try select("$.store.book[::-1].price").first == .number(22.99))
        // A segment applies to each node: after [::-1] the nodes are books, which have no [0].
        #expect(try select("$.store.book[::-1][0]").isEmpty)
        #expect(try select("$..author").count == 4)
        #expect(try select("$..price").count == 5)
    }

    @Test func filtersWithComparisonsLogicAndFunctions() throws {
        #expect(try select("$.store.book[?@.price < 10].title") == [.string("Sayings of the Century"), .string("Moby Dick")])
        #expect(try select("$.store.book[?@.isbn].title").count == 2)
        #expect(try select("$.store.book[?@.category == 'fiction' && @.price > 20].author") == [.string("J. R. R. Tolkien")])
        #expect(try select("$.store.book[?!(@.category == 'fiction')].author") == [.string("Nigel Rees")])
        #expect(try select("$.store.book[?length(@.title) >= 15].price").count == 3)
        #expect(try select("$.store.book[?match(@.author, 'H.*')].title") == [.string("Moby Dick")])
        #expect(try select("$.store.book[?search(@.title, 'of')].price").count == 3)
        #expect(try select("$.store[?count(@[*]) > 3]").count == 1)
    }

    /// RFC 9535 §2.4.6/7: a pattern that is not a valid I-Regexp (RFC 9485) makes
    /// `match` and `search` false, even where another regex dialect would accept it.
    @Test func matchAndSearchAcceptOnlyIRegexp() throws {
        let words = try JSONValue(parsing: #"["a", "ab", "a^b", "x$", "a&b", "b-", "Zürich", "12", "(a)"]"#)
        func matching(_ function: String, _ pattern: String) throws -> [String] {
            let literal = pattern.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return try JSONPath("$[?\(function)(@, '\(literal)')]").select(words).compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        // Valid I-Regexp, with characters that are special in other dialects taken literally
        // (`^` and `$` stay anchors, as the compliance suite expects).
        #expect(try matching("match", "^a.*$") == ["a", "ab", "a^b", "a&b"])
        #expect(try matching("match", "a[&]b") == ["a&b"])
        #expect(try matching("match", "[a-c-]+") == ["a", "ab", "b-"])
        #expect(try matching("match", "\\p{Lu}\\p{Ll}+") == ["Zürich"])
        #expect(try matching("match", "[0-9]{2}") == ["12"])
        #expect(try matching("match", "\\(a\\)") == ["(a)"])
        #expect(try matching("match", "(a|b)b?") == ["a", "ab"])
        // Not I-Regexp: no match at all, never an error.
        for pattern in ["(?:a)", "(?i)a", "\\d+", "a{2}?", "a+?", "(a)\\1", "\\w", "[a-]b]", "\\p{IsBasicLatin}", "a{", "[]", "a]", "(a", String(repeating: "(", count: 200) + "a" + String(repeating: ")", count: 200)] {
            #expect(try matching("match", pattern) == [], "\(pattern)")
            #expect(try matching("search", pattern) == [], "\(pattern)")
        }
        // The same holds for a pattern that comes from the document.
        let pairs = try JSONValue(parsing: #"[{"s": "a", "p": "(?:a)"}, {"s": "a", "p": "a"}]"#)
        #expect(try JSONPath("$[?match(@.s, @.p)].p").select(pairs) == [.string("a")])
    }

    @Test(arguments: ["store", "$.", "$[", "$.store[?@.price <]", "$[01]", "$[?length(@)]", "$[?@.a == @.b[*]]", "$[?foo(@)]", "$ "])
    func invalidQueriesAreRefused(_ path: String) {
        #expect(throws: JSONPathError.self) { try JSONPath(path) }
    }

    @Test func filtersCompareNumbersExactly() throws {
        let document = try JSONValue(parsing: #"[{"id":9007199254740992},{"id":9007199254740993},{"id":12.30}]"#)
        let above = try JSONPath("$[?@.id > 9007199254740992].id").select(document)
        #expect(above.map(\.text) == ["9007199254740993"])
        let equal = try JSONPath("$[?@.id == 12.3].id").select(document)
        #expect(equal.map(\.text) == ["12.30"])
    }
}
