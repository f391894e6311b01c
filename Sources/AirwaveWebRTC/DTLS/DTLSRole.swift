/// Which side of the DTLS handshake this endpoint plays. With `a=setup`, `active` is the client.
public enum DTLSRole: Sendable, Equatable {
    case client
    case server
}

/// A certificate fingerprint as SDP's `a=fingerprint` carries it: `sha-256` and upper-case hex
/// pairs separated by colons.
public struct CertificateFingerprint: Equatable, Sendable {
    /// Hash function name as in SDP (`sha-256`, `sha-1`, …), lower case.
    public var algorithm: String
    /// `AB:CD:…`, upper case.
    public var value: String

    public init(algorithm: String, value: String) {
        self.algorithm = algorithm.lowercased()
        self.value = value.uppercased()
    }

    /// Parses an `a=fingerprint` value: `<algorithm> <hex pairs>`.
    public init?(attributeValue: String) {
        let parts = attributeValue.split(separator: " ")
        guard parts.count == 2 else { return nil }
        let pairs = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard !pairs.isEmpty, pairs.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else { return nil }
        self.init(algorithm: String(parts[0]), value: String(parts[1]))
    }

    public var attributeValue: String { "\(algorithm) \(value)" }

    /// Whether DTLS can check a certificate against it: a SHA-1 or SHA-2 hash (not `md5` or
    /// an unknown name) and a digest of that hash's length.
    public var isVerifiable: Bool {
        guard let length = DTLSContext.digestLength(algorithm) else { return false }
        return value.split(separator: ":").count == length
    }

    /// Formats a digest as colon-separated upper-case hex pairs.
    static func format(_ digest: [UInt8]) -> String {
        digest.map { byte in
            let digits = Array("0123456789ABCDEF")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined(separator: ":")
    }
}
