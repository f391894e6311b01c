import AirwaveProtocol
import Testing

@Suite("Identifier and DisplayName")
struct IdentifierTests {
    @Test("valid ids", arguments: [
        "a", "0", "u2", "user_1", "first.last", "a@b.c", "-", "A-Z_a-z.0-9@", String(repeating: "x", count: 64), "123",
    ])
    func validIDs(_ id: String) {
        #expect(Identifier.isValid(id))
        #expect(Identifier.isValid(id[...]))
    }

    @Test("invalid ids", arguments: [
        "", " ", "a b", " a", "a ", "a/b", "a%20b", "a+b", "a:b", "é", "日本", "😀", "a\n", "a\0b", "#", "?x",
        String(repeating: "x", count: 65),
    ])
    func invalidIDs(_ id: String) {
        #expect(!Identifier.isValid(id))
    }

    @Test func maxLength() {
        #expect(Identifier.maxLength == 64)
        #expect(DisplayName.maxLength == 64)
    }

    @Test("valid names", arguments: [
        ("Hana", "Hana"), ("  Hana  ", "Hana"), ("\tUma Thurman\n", "Uma Thurman"), ("日本 語", "日本 語"), ("😀", "😀"),
        ("a", "a"), (String(repeating: "n", count: 64), String(repeating: "n", count: 64)),
        (" " + String(repeating: "é", count: 64) + " ", String(repeating: "é", count: 64)),
        (String(repeating: "👩‍👩‍👧", count: 64), String(repeating: "👩‍👩‍👧", count: 64)),
    ])
    func validNames(_ input: String, _ expected: String) {
        #expect(DisplayName.validated(input) == expected)
    }

    @Test("invalid names", arguments: [
        "", " ", "\n\t ", String(repeating: "n", count: 65), "a\u{0}b", "a\nb", "bell\u{7}", "del\u{7F}", "c1\u{85}x",
    ])
    func invalidNames(_ input: String) {
        #expect(DisplayName.validated(input) == nil)
    }

    @Test func trimmingWhitespace() {
        #expect("  a b  ".trimmingWhitespace() == "a b")
        #expect("\u{3000}x\u{A0}".trimmingWhitespace() == "x")
        #expect("   ".trimmingWhitespace() == "")
        #expect("".trimmingWhitespace() == "")
        #expect("x".trimmingWhitespace() == "x")
    }
}
