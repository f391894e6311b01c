import Foundation

/// How Airwave verifies the tokens presented on its WebSocket endpoints.
///
/// Any combination of key sources may be configured at once (an HS256 secret, a PEM public key and a
/// JWKS); a token is accepted when one of the configured keys of the token's own algorithm verifies it.
/// Empty or whitespace-only strings are treated as "not set", so an empty environment variable
/// disables a setting instead of configuring an empty value.
public struct AuthConfiguration: Sendable {
    /// Shared secret for HS256 tokens. Must be at least 32 bytes (UTF-8) long.
    public var hs256Secret: String?
    /// Path to a PEM file holding an RSA (RS256) or EC P-256 (ES256) public key or certificate.
    /// P-384 and P-521 keys are accepted too (ES384, ES512). The algorithm is detected from the PEM.
    public var publicKeyPEMPath: String?
    /// A JSON Web Key Set: a file path, or an `http://` / `https://` URL fetched once at start
    /// (and again, at most once a minute, when a token names an unknown `kid`).
    public var jwks: String?
    /// When set, the token's `iss` claim must equal this value.
    public var issuer: String?
    /// When set, the token's `aud` claim (a string or an array of strings) must contain this value.
    public var audience: String?
    /// The claim holding the user id. `nil` means `user_id`, falling back to `sub` when `user_id`
    /// is absent. When set explicitly, only that claim counts.
    public var userClaim: String?
    /// Optional user-lookup URL template containing `{user_id}`, e.g.
    /// `https://accounts.example.com/api/users/{user_id}`. Used to resolve a display name when the
    /// token carries none.
    public var userLookupURL: String?
    /// Timeout for one user-lookup request. Default: 2 seconds.
    public var userLookupTimeout: Duration
    /// Leeway applied to `exp` and `nbf` to tolerate clock skew between the token issuer and this
    /// server. Default: 5 seconds.
    public var clockSkew: Duration

    /// Creates a configuration; every setting is optional.
    /// - Parameters:
    ///   - hs256Secret: Shared secret for HS256 (at least 32 bytes).
    ///   - publicKeyPEMPath: Path to an RSA or EC public-key PEM file.
    ///   - jwks: JWKS file path or `http(s)` URL.
    ///   - issuer: Required `iss` value, if any.
    ///   - audience: Required `aud` value, if any.
    ///   - userClaim: Claim holding the user id (`nil`: `user_id`, then `sub`).
    ///   - userLookupURL: User-lookup URL template containing `{user_id}`.
    ///   - userLookupTimeout: Timeout of one lookup request (default 2 s).
    ///   - clockSkew: Leeway for `exp` and `nbf` (default 5 s).
    public init(
        hs256Secret: String? = nil,
        publicKeyPEMPath: String? = nil,
        jwks: String? = nil,
        issuer: String? = nil,
        audience: String? = nil,
        userClaim: String? = nil,
        userLookupURL: String? = nil,
        userLookupTimeout: Duration = .seconds(2),
        clockSkew: Duration = .seconds(5)
    ) {
        self.hs256Secret = hs256Secret
        self.publicKeyPEMPath = publicKeyPEMPath
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.userClaim = userClaim
        self.userLookupURL = userLookupURL
        self.userLookupTimeout = userLookupTimeout
        self.clockSkew = clockSkew
    }
}

/// A configuration problem: one clear sentence for the operator (the CLI prints it and exits 2).
public struct AuthConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The sentence to show the operator.
    public var description: String

    /// Creates an error with the sentence to show the operator.
    public init(_ description: String) {
        self.description = description
    }
}

extension Optional where Wrapped == String {
    /// The value with surrounding whitespace removed, or `nil` when unset or blank.
    var nonBlank: String? {
        guard let value = self?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
            return nil
        }
        return value
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var secondsDouble: Double {
        let parts = self.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
