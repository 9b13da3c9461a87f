// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import SwitchboardTransform
import SwitchboardTestServers
import Testing

struct JSONTests {
    @Test func parsesAndSerializesKeepingMemberOrder() throws {
        let text = #"{"b":1,"a":[true,null,-2.5e1,"x\n\"y\""],"c":{"d":"é\u00e9"}}"#
        let value = try JSONValue(parsing: text)
        #expect(value["a"] == .array([.bool(true), .null, .number(-25), .string("x\n\"y\"")]))
        #expect(value["c"]?["d"] == .string("éé"))
        // Numbers go out as they came in.
        #expect(value.serialized() == #"{"b":1,"a":[true,null,-2.5e1,"x\n\"y\""],"c":{"d":"éé"}}"#)
    }

    @Test func numbersKeepTheirTextAndCompareExactly() throws {
        let text = #"[9007199254740993,12345678901234567890,12.30,1e400,-0,0.1,1E+2,-2.50e-3]"#
        let value = try JSONValue(parsing: text)
        #expect(value.serialized() == text)
        guard case .array(let items) = value else { return }
        func number(_ text: String) -> JSONNumber { JSONNumber(text: text)! }
        #expect(items[0] == .number(number("9007199254740993")))
        #expect(number("9007199254740993") > number("9007199254740992"))
        #expect(number("12345678901234567890") > number("12345678901234567889"))
        #expect(number("12.30") == number("12.3") && number("1.0") == number("1") && number("-0") == number("0"))
        #expect(number("1e400") > number("9.99e399") && number("-1e400") < number("-9.99e399"))
        #expect(number("0.1") < number("0.10000000000000001"))
        #expect(number("1E+2") == number("100") && number("-2.50e-3") == number("-0.0025"))
        #expect(number("12.30").hashValue == number("12.3").hashValue)
        #expect(number("12345678901234567890").int64 == nil && number("1e3").int64 == 1000 && number("-12").int64 == -12)
        #expect(number("12.30").isMultiple(of: number("0.01")) && !number("12.305").isMultiple(of: number("0.01")))
        #expect(number("1e400").isMultiple(of: number("0.5")) && !number("0.0075").isMultiple(of: number("0.01")))
        #expect(number("12.30").scaledDigits(places: 2)! == (false, "1230"))
        #expect(number("12.345").scaledDigits(places: 2) == nil)
        // Numbers the node makes read back as the value they hold.
        #expect(JSONNumber(Double(0.1))?.text == "0.1" && JSONNumber(Double(3))?.text == "3" && JSONNumber(Double.infinity) == nil)
        #expect(JSONNumber(loose: "+5")?.text == "5" && JSONNumber(loose: ".5")?.text == "0.5" && JSONNumber(loose: "007")?.text == "7")
        #expect(JSONNumber(loose: "x1") == nil)
        #expect(throws: JSONError.self) { try JSONValue(parsing: "1e1234567890") }
    }

    @Test func repeatedKeysResolveToTheLastValue() throws {
        let value = try JSONValue(parsing: try String(contentsOfFile: Fixtures.path("attacks/json/y_object_duplicated_key.json"), encoding: .utf8))
        #expect(value["a"] == .string("c"))
    }

    @Test(arguments: [
        "n_number_NaN.json", "n_object_trailing_comma.json", "n_single_space.json",
        "n_string_unescaped_ctrl_char.json", "n_structure_100000_opening_arrays.json",
        "n_structure_UTF8_BOM_no_data.json", "n_structure_open_array_object.json",
    ])
    func malformedJSONIsRefused(_ name: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("attacks/json/\(name)")))
        #expect(throws: JSONError.self) {
            try data.withUnsafeBytes { try JSONValue(bytes: $0) }
        }
    }

    @Test func nestingDeeperThanTheLimitIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: JSONValue.maximumDepth + 1) + String(repeating: "]", count: JSONValue.maximumDepth + 1)
        #expect {
            try JSONValue(parsing: deep)
        } throws: { error in
            "\(error)".contains("nested deeper than")
        }
        let fine = String(repeating: "[", count: JSONValue.maximumDepth) + String(repeating: "]", count: JSONValue.maximumDepth)
        #expect(throws: Never.self) { try JSONValue(parsing: fine) }
    }
}
