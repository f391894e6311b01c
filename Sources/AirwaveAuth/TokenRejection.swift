/// Why a token was refused; `reason` is a short stable metric label.
public enum TokenRejection: Error, Sendable, Equatable {
    /// No token was presented.
    case missing
    /// The token is not a well-formed JWT (segments, base64url, JSON or claim types).
    case malformed
    /// The token is longer than ``TokenVerifier/maximumTokenLength`` (8 KiB).
    case tooLong
    /// The header's `alg` is `none` or not the algorithm of any configured key.
    case algorithmNotAllowed
    /// No configured key of the token's algorithm (and `kid`) verifies the signature.
    case badSignature
    /// The `exp` claim is in the past (beyond the clock-skew leeway).
    case expired
    /// The token has no `exp` claim.
    case missingExpiry
    /// The `nbf` claim is in the future (beyond the clock-skew leeway).
    case notYetValid
    /// The `iss` claim does not match the configured issuer.
    case wrongIssuer
    /// The `aud` claim does not contain the configured audience.
    case wrongAudience
    /// The token has no user id claim.
    case missingUserClaim
    /// The user id claim is not a string or integer, or does not match `^[A-Za-z0-9_.@-]{1,64}$`.
    case invalidUserID
    /// No verification key is configured, so no token can be accepted.
    case noKeys

    /// A short, stable label for metrics and logs (snake_case).
    public var reason: String {
        switch self {
        case .missing: "missing"
        case .malformed: "malformed"
        case .tooLong: "too_long"
        case .algorithmNotAllowed: "alg_not_allowed"
        case .badSignature: "bad_signature"
        case .expired: "expired"
        case .missingExpiry: "missing_exp"
        case .notYetValid: "not_yet_valid"
        case .wrongIssuer: "wrong_issuer"
        case .wrongAudience: "wrong_audience"
        case .missingUserClaim: "missing_user_claim"
        case .invalidUserID: "invalid_user_id"
        case .noKeys: "no_keys"
        }
    }

    /// A human sentence explaining the refusal, safe to send to the client.
    public var message: String {
        switch self {
        case .missing: "No token was provided."
        case .malformed: "The token is not a well-formed JWT."
        case .tooLong: "The token is too long (more than 8 KiB)."
        case .algorithmNotAllowed: "The token's signing algorithm is not allowed."
        case .badSignature: "The token's signature is not valid."
        case .expired: "The token has expired."
        case .missingExpiry: "The token has no expiry (exp) claim."
        case .notYetValid: "The token is not valid yet."
        case .wrongIssuer: "The token was issued by an unexpected issuer."
        case .wrongAudience: "The token is not meant for this audience."
        case .missingUserClaim: "The token has no user id claim."
        case .invalidUserID: "The token's user id is not valid."
        case .noKeys: "The server has no token keys configured."
        }
    }
}

/// The identity carried by a verified token.
public struct VerifiedUser: Sendable, Equatable {
    /// The user id, matching `^[A-Za-z0-9_.@-]{1,64}$`.
    public var userID: String
    /// The display name: from the token's claims, else the user-lookup service, else the user id.
    public var username: String

    /// Creates a verified user.
    public init(userID: String, username: String) {
        self.userID = userID
        self.username = username
    }
}
