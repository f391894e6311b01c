/// Random text for identifiers that must not be guessed: ICE credentials, session ids.
public enum RandomToken {
    /// `ice-char` of RFC 8839 §5.4: ALPHA / DIGIT / "+" / "/" (6 bits a character).
    public static let iceCharacters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    /// `[a-z0-9]`: safe in a URL path and a file name.
    public static let lowercaseAlphanumerics = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    /// `length` characters of `alphabet`, each drawn uniformly from the system's cryptographic
    /// generator (`SystemRandomNumberGenerator`: getrandom(2) on Linux, arc4random on macOS).
    public static func make(length: Int, alphabet: [Character]) -> String {
        precondition(!alphabet.isEmpty, "an alphabet needs characters")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }
}

/// Local ICE credentials (RFC 8445 §5.3: at least 24 bits of randomness in the ufrag, 128 in
/// the password; RFC 8839 §5.4: 4–256 and 22–256 `ice-char`s).
public struct ICECredentials: Equatable, Sendable {
    /// Characters of a ufrag: 8 × 6 = 48 bits, so ufrags of concurrent sessions do not collide.
    public static let ufragLength = 8
    /// Characters of a password: 24 × 6 = 144 bits.
    public static let passwordLength = 24

    public var ufrag: String
    public var password: String

    public init(ufrag: String, password: String) {
        self.ufrag = ufrag
        self.password = password
    }

    /// Fresh random credentials.
    public static func random() -> ICECredentials {
        ICECredentials(ufrag: RandomToken.make(length: ufragLength, alphabet: RandomToken.iceCharacters),
                       password: RandomToken.make(length: passwordLength, alphabet: RandomToken.iceCharacters))
    }
}
