extension SessionDescription {
    /// Largest SDP text accepted (a Chromium offer with audio and video is ≈ 5 KB).
    public static let maximumSize = 64 * 1024
    /// Most `m=` sections accepted.
    public static let maximumMediaSections = 32

    /// Parses SDP text. Lines end in CRLF or LF; each must be `<letter>=<value>`. The first
    /// must be `v=0`. Lines other than `o=`, `m=`, `c=` and `a=` are skipped.
    public static func parse(_ text: String) throws(SDPError) -> SessionDescription {
        guard text.utf8.count <= maximumSize else { throw .tooLarge }
        var origin = ""
        var sessionAttributes: [Attribute] = []
        var media: [MediaDescription] = []
        var sawVersion = false
        var lineNumber = 0
        // Split on the bytes: Swift's Character treats "\r\n" as one, so splitting the String
        // on "\n" would not separate CRLF lines.
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var utf8 = Array(rawLine)
            if utf8.last == UInt8(ascii: "\r") { utf8.removeLast() }
            if utf8.isEmpty { continue }
            // RFC 8866 §5: no CR or NUL inside a line; an answer copies offered values into its own lines.
            guard !utf8.contains(UInt8(ascii: "\r")), !utf8.contains(0) else { throw .malformedLine(lineNumber) }
            guard utf8.count >= 2, utf8[1] == UInt8(ascii: "="), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(utf8[0])
            else { throw .malformedLine(lineNumber) }
            let type = utf8[0]
            let value = String(decoding: utf8[2...], as: UTF8.self)
            if !sawVersion {
                guard type == UInt8(ascii: "v"), value == "0" else { throw .missingVersion }
                sawVersion = true
                continue
            }
            switch type {
            case UInt8(ascii: "o"):
                origin = value
            case UInt8(ascii: "m"):
                guard media.count < maximumMediaSections else { throw .tooManyMediaSections }
                let parts = value.split(separator: " ")
                guard parts.count >= 3, !parts[0].isEmpty else { throw .malformedMediaLine(lineNumber) }
                // "port/count" is allowed by RFC 8866; only the port matters here.
                guard let port = UInt16(parts[1].split(separator: "/").first ?? "") else {
                    throw .malformedMediaLine(lineNumber)
                }
                media.append(MediaDescription(
                    kind: String(parts[0]), port: port, proto: String(parts[2]),
                    formats: parts.dropFirst(3).map(String.init), connection: nil, attributes: []))
            case UInt8(ascii: "c"):
                if !media.isEmpty { media[media.count - 1].connection = value }
            case UInt8(ascii: "a"):
                let attribute: Attribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = Attribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = Attribute(value)
                }
                // A mid is a token (RFC 5888 §4): the answer lists it in `a=group:BUNDLE`, space-separated.
                if attribute.name == "mid", !isToken(attribute.value ?? "") { throw .malformedLine(lineNumber) }
                if media.isEmpty {
                    sessionAttributes.append(attribute)
                } else {
                    media[media.count - 1].attributes.append(attribute)
                }
            default:
                continue
            }
        }
        guard sawVersion else { throw .missingVersion }
        return SessionDescription(origin: origin, attributes: sessionAttributes, media: media)
    }

    /// RFC 8866 `token`: one or more of `!#$%&'*+-.0-9A-Z^_`a-z{|}~`.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x30...0x39, 0x41...0x5A, 0x5E...0x7E: true
            default: false
            }
        }
    }
}
