/// Splits a text frame into its `type` and its JSON object, with the errors of PROTOCOL.md 1.
public enum TypedMessage {
    /// Parses the frame; not JSON, not an object or no string `type` is a `bad_message`.
    public static func decode(_ bytes: some Sequence<UInt8>) throws(ProtocolError) -> (type: String, json: JSONValue) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw ProtocolError(.badMessage, "The message is not valid JSON (\(error.description)).")
        }
        guard case .object = json else {
            throw ProtocolError(.badMessage, "The message must be a JSON object.")
        }
        guard let typeValue = json["type"] else {
            throw ProtocolError(.badMessage, "The message has no type.", details: ["field": "type"])
        }
        guard let type = typeValue.stringValue else {
            throw ProtocolError(.badMessage, "type must be a string.", details: ["field": "type"])
        }
        return (type, json)
    }
}

/// Reads typed fields of a message object, throwing `bad_message` naming the field on a wrong
/// type or size. Unknown extra fields are ignored.
public struct FieldReader {
    let json: JSONValue

    public init(json: JSONValue) { self.json = json }

    private func fail(_ field: String, _ message: String) -> ProtocolError {
        ProtocolError(.badMessage, message, details: ["field": .string(field)])
    }

    /// A string field of 1…maxLength characters, nil if absent or null.
    public mutating func optionalString(_ key: String, maxLength: Int) throws(ProtocolError) -> String? {
        guard let value = json[key], value != .null else { return nil }
        guard let s = value.stringValue else { throw fail(key, "\(key) must be a string.") }
        guard !s.isEmpty, s.count <= maxLength else {
            throw fail(key, "\(key) must be 1–\(maxLength) characters.")
        }
        return s
    }

    /// An id field (string, or an integer that is read as text), validated as an `Identifier`.
    public mutating func optionalID(_ key: String) throws(ProtocolError) -> String? {
        guard let value = json[key], value != .null else { return nil }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number: guard let i = value.intValue else { throw fail(key, "\(key) must be a string or an integer.") }
            text = String(i)
        default: throw fail(key, "\(key) must be a string or an integer.")
        }
        guard Identifier.isValid(text) else {
            throw fail(key, "\(key) must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.")
        }
        return text
    }

    /// A required id field.
    public mutating func requiredID(_ key: String) throws(ProtocolError) -> String {
        guard let id = try optionalID(key) else { throw fail(key, "\(key) is required.") }
        return id
    }

    /// An integer field within `range`, nil if absent or null.
    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int>) throws(ProtocolError) -> Int? {
        guard let value = json[key], value != .null else { return nil }
        guard let i = value.intValue, range.contains(i) else {
            throw fail(key, "\(key) must be an integer in \(range.lowerBound)…\(range.upperBound).")
        }
        return i
    }

    /// A number field within `range`, nil if absent or null.
    public mutating func optionalNumber(_ key: String, in range: ClosedRange<Double>) throws(ProtocolError) -> Double? {
        guard let value = json[key], value != .null else { return nil }
        guard let n = value.numberValue, range.contains(n) else {
            throw fail(key, "\(key) must be a number in \(range.lowerBound)…\(range.upperBound).")
        }
        return n
    }

    /// A boolean field, nil if absent or null.
    public mutating func optionalBool(_ key: String) throws(ProtocolError) -> Bool? {
        guard let value = json[key], value != .null else { return nil }
        guard case .bool(let b) = value else { throw fail(key, "\(key) must be true or false.") }
        return b
    }

    /// When present, the field must be this exact string.
    public mutating func expectOptional(_ key: String, equals expected: String) throws(ProtocolError) {
        guard let value = json[key], value != .null else { return }
        guard value.stringValue == expected else { throw fail(key, "\(key) must be \"\(expected)\".") }
    }
}
