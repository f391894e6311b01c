/// Ids in paths and messages: 1–64 characters of `[A-Za-z0-9_.@-]` (PROTOCOL.md section 1).
public enum Identifier {
    /// Longest id accepted.
    public static let maxLength = 64

    /// Whether `text` is a well-formed id.
    public static func isValid(_ text: some StringProtocol) -> Bool {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "@"),
                UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }
}

/// Display names: 1–64 characters after trimming, no control characters.
public enum DisplayName {
    /// Longest name accepted, in characters.
    public static let maxLength = 64

    /// The trimmed name, or nil if it is empty, too long or holds control characters.
    public static func validated(_ text: String) -> String? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed.count <= maxLength,
            !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return nil }
        return trimmed
    }
}

extension String {
    /// The string without leading and trailing white space (no Foundation needed).
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
