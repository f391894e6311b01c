import Crypto
import Foundation

/// Mints an HS256 token (for the `airwave token` command and for tests).
public enum TokenMinter {
    /// Mints an HS256 JWT with `sub` and `user_id` set to `userID`, plus `username`, `iat`, `exp`,
    /// and optional `iss` and `aud` claims.
    ///
    /// - Parameters:
    ///   - userID: The user id; must match `^[A-Za-z0-9_.@-]{1,64}$`.
    ///   - username: Optional display name (trimmed; at most 64 characters).
    ///   - ttl: Lifetime; `exp` is `now + ttl` (rounded down to whole seconds). Must be positive.
    ///   - secret: The HS256 secret (at least 32 bytes).
    ///   - issuer: Optional `iss` claim.
    ///   - audience: Optional `aud` claim.
    ///   - now: The issue time (`iat`).
    /// - Returns: The compact JWS (`header.payload.signature`).
    /// - Throws: ``AuthConfigurationError`` when an argument is not usable.
    public static func hs256(
        userID: String, username: String?, ttl: Duration, secret: String,
        issuer: String? = nil, audience: String? = nil, now: Date = Date()
    ) throws -> String {
        guard secret.utf8.count >= KeyLoader.minimumSecretBytes else {
            throw AuthConfigurationError(
                "The HS256 secret is \(secret.utf8.count) bytes long but must be at least \(KeyLoader.minimumSecretBytes) bytes (256 bits)."
            )
        }
        guard Identity.isValidUserID(userID) else {
            throw AuthConfigurationError("The user id \"\(userID)\" must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -.")
        }
        guard ttl > .zero else {
            throw AuthConfigurationError("The token lifetime must be longer than zero.")
        }
        var claims: [String: Any] = [
            "sub": userID,
            "user_id": userID,
            "iat": Int64(now.timeIntervalSince1970.rounded(.down)),
            "exp": Int64((now.timeIntervalSince1970 + ttl.secondsDouble).rounded(.down)),
        ]
        if let username {
            guard let name = Identity.displayName(.string(username)) else {
                throw AuthConfigurationError("The username must be 1 to 64 characters without control characters.")
            }
            claims["username"] = name
        }
        if let issuer { claims["iss"] = issuer }
        if let audience { claims["aud"] = audience }
        return try sign(header: ["alg": "HS256", "typ": "JWT"], claims: claims, secret: Data(secret.utf8))
    }

    /// Signs arbitrary header and claims with HMAC-SHA256 (no validation; used by tests too).
    static func sign(header: [String: Any], claims: [String: Any], secret: Data) throws -> String {
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        let headerPart = Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: options))
        let payloadPart = Base64URL.encode(try JSONSerialization.data(withJSONObject: claims, options: options))
        let signingInput = "\(headerPart).\(payloadPart)"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: secret))
        return "\(signingInput).\(Base64URL.encode(Data(mac)))"
    }
}
