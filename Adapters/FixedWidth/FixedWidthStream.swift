import Foundation
import SwitchboardTransform

extension FixedWidthParser {
    /// A parser reading `handle` a chunk at a time (1 MiB), so memory holds one chunk and the
    /// values `split` has not taken, whatever the file's size. `progress` is told how many
    /// bytes were read so far.
    public init(
        layout: FixedWidthLayout,
        reading handle: FileHandle,
        progress: ((Int) -> Void)? = nil,
        split: ((_ path: [String], _ value: JSONValue, _ line: Int) throws -> Bool)? = nil
    ) {
        var total = 0
        self.init(layout: layout, next: {
            guard let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty else { return nil }
            total += chunk.count
            progress?(total)
            return Array(chunk)
        }, split: split)
    }
}

extension FixedWidthLayout {
    /// The group or record paths of the structure, dot-joined (`batches`, `batches.entries`,
    /// `batches.entries.addenda`), for choosing what to split on.
    public var structurePaths: [String] {
        func walk(_ items: [StructureItem], _ prefix: String) -> [String] {
            items.flatMap { item -> [String] in
                let path = prefix.isEmpty ? item.key : prefix + "." + item.key
                if case .group(_, let inner, _, _) = item { return [path] + walk(inner, path) }
                return [path]
            }
        }
        return walk(structure, "")
    }
}

/// JSON text written straight into bytes (the hot path of splitting large files).
public enum JSONBytes {
    public static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null: output += [0x6E, 0x75, 0x6C, 0x6C]
        case .bool(let flag): output += flag ? Array("true".utf8) : Array("false".utf8)
        case .number(let number): output += JSONValue.format(number).utf8
        case .string(let text): string(text, into: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(item, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                string(member.key, into: &output)
                output.append(UInt8(ascii: ":"))
                write(member.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func string(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                output.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): output += [0x5C, 0x22]
                case UInt8(ascii: "\\"): output += [0x5C, 0x5C]
                case 0x0A: output += [0x5C, 0x6E]
                case 0x0D: output += [0x5C, 0x72]
                case 0x09: output += [0x5C, 0x74]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    output += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: output.append(byte)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
