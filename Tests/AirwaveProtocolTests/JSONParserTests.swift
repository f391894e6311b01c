import AirwaveProtocol
import Testing

@Suite("JSONParser")
struct JSONParserTests {
    static func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONParser.parse(text) }

    static func parseError(_ bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    static func parseError(_ text: String) -> JSONParseError? { parseError(Array(text.utf8)) }

    @Test("scalars", arguments: [
        ("null", JSONValue.null), ("true", .bool(true)), ("false", .bool(false)),
        ("0", .number(0)), ("-0", .number(0)), ("42", .number(42)), ("-17", .number(-17)),
        ("3.25", .number(3.25)), ("1e3", .number(1000)), ("1E+2", .number(100)), ("-2.5e-3", .number(-0.0025)),
        ("12345678901234567890", .number(1.2345678901234567e19)),
        ("\"\"", .string("")), ("\"abc\"", .string("abc")),
    ])
    func scalars(_ text: String, _ expected: JSONValue) throws {
        #expect(try Self.parse(text) == expected)
    }

    @Test func whitespaceAroundAndInside() throws {
        let value = try Self.parse(" \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\":{ } , \"c\" : [ ] }\n ")
        #expect(value == ["a": [1, 2], "b": [:], "c": []])
    }

    @Test func nestedDocument() throws {
        let text = #"{"type":"stream_state","host":{"user_id":"h1","username":"Hana"},"screen":null,"n":[1,2.5,[true,false,null]]}"#
        #expect(try Self.parse(text) == [
            "type": "stream_state", "host": ["user_id": "h1", "username": "Hana"], "screen": nil,
            "n": [1, 2.5, [true, false, nil]],
        ])
    }

    @Test func duplicateKeysKeepTheLast() throws {
        #expect(try Self.parse(#"{"a":1,"a":2}"#) == ["a": 2])
    }

    @Test func escapes() throws {
        let value = try Self.parse(#""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u263A \ud83d\ude00 \u0000""#)
        #expect(value == .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t Aé☺ 😀 \u{0}"))
    }

    @Test func rawUTF8InStrings() throws {
        #expect(try Self.parse("\"héllo ☺ 😀 日本\"") == .string("héllo ☺ 😀 日本"))
        // Raw text mixed with escapes.
        #expect(try Self.parse(#""é\n😀\t日""#) == .string("é\n😀\t日"))
    }

    @Test("invalid documents", arguments: [
        "", "   ", "nul", "tru", "fals", "nulx", "True", "NaN", "Infinity", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10",
        "1e400", "-1e400", "{", "[", "]", "}", "[1,]", "[1 2]", "[,1]", "{,}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
        "{'a':1}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"a\tb\"", "\"a\nb\"",
        "1 2", "{} {}", "[] x", "\"\\", "/* c */ 1",
    ])
    func invalidDocuments(_ text: String) {
        #expect(Self.parseError(text) != nil, "accepted: \(text.debugDescription)")
    }

    @Test func errorsCarryAnOffsetAndAReason() throws {
        let error = try #require(Self.parseError("[1, x]"))
        #expect(error.offset == 4)
        #expect(error.reason == "unexpected character")
        #expect(error.description == "invalid JSON at byte 4: unexpected character")
        #expect(Self.parseError("[1] 2")?.reason == "unexpected data after the JSON value")
        #expect(Self.parseError("")?.reason == "unexpected end of input")
        #expect(Self.parseError("\"abc")?.reason == "unterminated string")
        #expect(Self.parseError("\"a\u{01}\"")?.reason == "control character in string")
        #expect(Self.parseError("\"\\q\"")?.reason == "invalid escape")
        #expect(Self.parseError("1e999")?.reason == "number out of range")
        #expect(Self.parseError("[1 2]")?.reason == "expected ',' or ']'")
        #expect(Self.parseError("{\"a\":1 2}")?.reason == "expected ',' or '}'")
        #expect(Self.parseError("{1:2}")?.reason == "expected a key")
        #expect(Self.parseError("{\"a\" 2}")?.reason == "expected ':'")
        #expect(Self.parseError("nope")?.reason == "invalid literal")
    }

    @Test func depthLimitIs32() throws {
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect(throws: Never.self) { try Self.parse(ok) }
        let objects = String(repeating: "{\"a\":", count: 31) + "[]" + String(repeating: "}", count: 31)
        #expect(throws: Never.self) { try Self.parse(objects) }
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(Self.parseError(tooDeep)?.reason == "nesting deeper than 32")
        let tooDeepObjects = String(repeating: "{\"a\":", count: 33) + "1" + String(repeating: "}", count: 33)
        #expect(Self.parseError(tooDeepObjects) != nil)
    }

    @Test func depthIsCountedNotSummed() throws {
        // Many siblings at depth 32 are fine: depth goes back down after each one.
        let deep = String(repeating: "[", count: 31) + "[]" + String(repeating: "]", count: 31)
        let text = "[" + Array(repeating: String(deep.dropFirst().dropLast()), count: 100).joined(separator: ",") + "]"
        #expect(throws: Never.self) { try Self.parse(text) }
    }

    @Test("100,000 nested brackets are refused without exhausting the stack")
    func hostileNesting() {
        #expect(Self.parseError(String(repeating: "[", count: 100_000)) != nil)
        #expect(Self.parseError(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)) != nil)
        #expect(Self.parseError(String(repeating: "{\"a\":", count: 100_000)) != nil)
        #expect(Self.parseError(String(repeating: "[{\"k\":", count: 50_000)) != nil)
    }

    @Test("invalid UTF-8 is refused", arguments: [
        [0x22, 0xFF, 0x22],  // 0xFF never appears in UTF-8
        [0x22, 0xC3, 0x22],  // truncated two-byte sequence
        [0x22, 0xC0, 0x80, 0x22],  // overlong NUL
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong '/'
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate U+D800
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0x80, 0x22],  // lone continuation byte
        [0x22, 0x5C, 0x6E, 0xFF, 0x22],  // bad byte after an escape
        [0x22, 0xFF, 0x5C, 0x6E, 0x22],  // bad byte before an escape
        [0xFF],  // outside any string
        [0xEF, 0xBB, 0xBF, 0x31],  // a byte-order mark is not JSON white space
    ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) {
        #expect(Self.parseError(bytes) != nil, "accepted \(bytes)")
    }

    @Test func invalidUTF8Reason() {
        #expect(Self.parseError([0x22, 0xFF, 0x22])?.reason == "invalid UTF-8 in string")
        #expect(Self.parseError([0x22, 0x5C, 0x6E, 0xFF, 0x22])?.reason == "invalid UTF-8 in string")
    }

    @Test func surrogatePairs() throws {
        #expect(try Self.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try Self.parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
        #expect(try Self.parse(#""\uD800\uDC00""#) == .string("\u{10000}"))
    }

    @Test("unpaired surrogates are refused", arguments: [
        #""\uD83D""#,  // high at the end
        #""\uD83Dx""#,  // high followed by text
        #""\uD83D\n""#,  // high followed by another escape
        #""\uD83D\u0041""#,  // high followed by a non-surrogate
        #""\uD83D\uD83D""#,  // two highs
        #""\uDE00""#,  // lone low
        #""\uDE00\uD83D""#,  // reversed pair
        #""\uD83D\uDE0""#,  // truncated low
    ])
    func unpairedSurrogates(_ text: String) {
        #expect(Self.parseError(text) != nil, "accepted \(text)")
    }

    @Test func parsesAnyByteSequence() throws {
        let bytes: ArraySlice<UInt8> = Array(#"xx{"type":"mute"}yy"#.utf8)[2..<17]
        #expect(try JSONParser.parse(bytes) == ["type": "mute"])
    }
}
