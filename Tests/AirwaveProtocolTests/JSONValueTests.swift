import AirwaveProtocol
import Testing

@Suite("JSONValue encoding")
struct JSONValueEncodingTests {
    @Test func typeFirstThenSortedKeys() {
        let value: JSONValue = ["zeta": 1, "alpha": 2, "type": "x", "Beta": 3, "m": ["b": 1, "a": 2, "type": "inner"]]
        #expect(value.jsonText == #"{"type":"x","Beta":3,"alpha":2,"m":{"type":"inner","a":2,"b":1},"zeta":1}"#)
    }

    @Test func objectsWithoutType() {
        #expect(JSONValue.object([:]).jsonText == "{}")
        #expect((["b": 1, "a": nil] as JSONValue).jsonText == #"{"a":null,"b":1}"#)
    }

    @Test("numbers", arguments: [
        (JSONValue.number(0), "0"), (.number(-0.0), "0"), (.number(42), "42"), (.number(-7), "-7"), (.number(1000), "1000"),
        (.number(1e15), "1000000000000000"), (.number(4_294_967_295), "4294967295"), (.number(2.5), "2.5"),
        (.number(-0.125), "-0.125"), (.number(.infinity), "null"), (.number(.nan), "null"), (.int(UInt32(7)), "7"),
    ])
    func numbers(_ value: JSONValue, _ text: String) {
        #expect(value.jsonText == text)
    }

    @Test func largeAndFractionalNumbersRoundTrip() throws {
        for n in [1e20, 0.1, 123.456, -9.9e-7, 9.5e15] {
            let text = JSONValue.number(n).jsonText
            #expect(!text.hasSuffix(".0"))
            #expect(try JSONParser.parse(text) == .number(n), "\(text)")
        }
    }

    @Test func integersHaveNoFraction() {
        let value: JSONValue = ["type": "participant_count", "count": .int(3)]
        #expect(value.jsonText == #"{"type":"participant_count","count":3}"#)
    }

    @Test func literalsAndArrays() {
        #expect(JSONValue.null.jsonText == "null")
        #expect(JSONValue.bool(true).jsonText == "true")
        #expect(JSONValue.bool(false).jsonText == "false")
        #expect(([] as JSONValue).jsonText == "[]")
        #expect(([1, "a", nil, [true]] as JSONValue).jsonText == #"[1,"a",null,[true]]"#)
    }

    @Test func stringEscaping() {
        #expect(JSONValue.string(#"say "hi" \ bye"#).jsonText == #""say \"hi\" \\ bye""#)
        #expect(JSONValue.string("a\nb\rc\td").jsonText == #""a\nb\rc\td""#)
        #expect(JSONValue.string("\u{0}\u{1}\u{8}\u{C}\u{1F}").jsonText == #""\u0000\u0001\u0008\u000c\u001f""#)
        // Non-ASCII, DEL and the slash are written as they are.
        #expect(JSONValue.string("é☺😀/\u{7F}").jsonText == "\"é☺😀/\u{7F}\"")
        #expect(JSONValue.string("").jsonText == #""""#)
    }

    @Test func keysAreEscapedToo() {
        #expect((["a\"b": 1] as JSONValue).jsonText == #"{"a\"b":1}"#)
    }

    @Test func roundTripThroughTheParser() throws {
        let value: JSONValue = [
            "type": "message_broadcast", "message": "line1\nline2 \"quoted\" \\ é😀 \u{1}", "n": [0, -1, 2.5, 1e300],
            "nested": ["deep": [["x": nil]]], "flag": false,
        ]
        #expect(try JSONParser.parse(value.jsonText) == value)
    }

    @Test func equalValuesEncodeToEqualBytes() {
        let a: JSONValue = .object(["b": 1, "a": 2, "c": 3, "type": "t"])
        var members: [String: JSONValue] = [:]
        for key in ["c", "type", "a", "b"] { members[key] = a[key] }
        #expect(JSONValue.object(members).jsonText == a.jsonText)
    }

    @Test func accessors() {
        let value: JSONValue = ["s": "x", "n": 2.5, "i": 7, "big": .number(1e16)]
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.numberValue == 2.5)
        #expect(value["n"]?.intValue == nil)
        #expect(value["i"]?.intValue == 7)
        #expect(value["big"]?.intValue == nil)
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["s"] == nil)
        #expect(JSONValue.string(nil as String?) == .null)
    }
}
