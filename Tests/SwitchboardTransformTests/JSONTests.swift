import Foundation
import SwitchboardTransform
import Testing

struct JSONTests {
    @Test func parsesAndSerializesKeepingMemberOrder() throws {
        let text = #"{"b":1,"a":[true,null,-2.5e1,"x\n\"y\""],"c":{"d":"é\u00e9"}}"#
        let value = try JSONValue(parsing: text)
        #expect(value["a"] == .array([.bool(true), .null, .number(-25), .string("x\n\"y\"")]))
        #expect(value["c"]?["d"] == .string("éé"))
        #expect(value.serialized() == #"{"b":1,"a":[true,null,-25,"x\n\"y\""],"c":{"d":"éé"}}"#)
    }

    @Test func repeatedKeysResolveToTheLastValue() throws {
        let value = try JSONValue(parsing: try String(contentsOfFile: "/work/shared/data/attacks/json/y_object_duplicated_key.json", encoding: .utf8))
        #expect(value["a"] == .string("c"))
    }

    @Test(arguments: [
        "n_number_NaN.json", "n_object_trailing_comma.json", "n_single_space.json",
        "n_string_unescaped_ctrl_char.json", "n_structure_100000_opening_arrays.json",
        "n_structure_UTF8_BOM_no_data.json", "n_structure_open_array_object.json",
    ])
    func malformedJSONIsRefused(_ name: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "/work/shared/data/attacks/json/\(name)"))
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
