import AsyncHTTPClient
import Foundation
import JWTKit
import Logging

/// Verifies the JWTs presented on Airwave's WebSocket endpoints.
///
/// Verification order: presence, key availability, length (at most 8 KiB), structure
/// (three base64url segments, JSON header and payload), the header's `alg` (`none` and any algorithm
/// that is not one of the configured keys' algorithms are refused before any key is touched, which
/// prevents algorithm-confusion attacks), the signature (only keys bound to that `alg`, and to the
/// header's `kid` when a JWKS key has it), then `exp` (required), `nbf`, `iss`, `aud` and the user id.
/// `exp` and `nbf` are checked with ``AuthConfiguration/clockSkew`` of leeway (default 5 s) to
/// tolerate clocks that differ slightly between the token issuer and this server.
public final class TokenVerifier: Sendable {
    /// Longest accepted token, in bytes (8 KiB); longer tokens are refused with ``TokenRejection/tooLong``.
    public static let maximumTokenLength = 8 * 1024
    /// Default user-id claim, and its fallback when no claim is configured.
    static let defaultUserClaims = ["user_id", "sub"]
    /// Claims a display name is taken from, in order.
    static let usernameClaims = ["username", "preferred_username", "name"]

    private let staticKeys: [VerificationKey]
    private let remoteJWKS: RemoteJWKS?
    private let issuer: String?
    private let audience: String?
    private let userClaim: String?
    private let leeway: TimeInterval
    let userLookup: UserLookup?

    /// True when at least one key is configured (otherwise every token is refused with ``TokenRejection/noKeys``).
    public let hasKeys: Bool

    /// The JWS algorithms of the keys loaded at start, sorted (e.g. `["ES256", "HS256"]`); handy for a startup log line.
    public let algorithms: [String]

    private init(
        staticKeys: [VerificationKey], remoteJWKS: RemoteJWKS?, remoteKeys: [VerificationKey],
        configuration: AuthConfiguration, userClaim: String?, userLookup: UserLookup?
    ) {
        self.staticKeys = staticKeys
        self.remoteJWKS = remoteJWKS
        self.issuer = configuration.issuer.nonBlank
        self.audience = configuration.audience.nonBlank
        self.userClaim = userClaim
        self.leeway = configuration.clockSkew.secondsDouble
        self.userLookup = userLookup
        let all = staticKeys + remoteKeys
        self.hasKeys = !all.isEmpty
        self.algorithms = Set(all.map(\.algorithm)).sorted()
    }

    /// Loads keys (reads files, fetches a JWKS URL once) and validates the configuration.
    ///
    /// - Parameters:
    ///   - configuration: What to accept.
    ///   - httpClient: Client for the JWKS URL and the user lookup; `nil` uses `HTTPClient.shared`.
    ///   - logger: Receives warnings (skipped JWKS keys, failed lookups, failed JWKS refetches).
    /// - Throws: ``AuthConfigurationError`` with one clear sentence for the operator.
    public static func make(
        configuration: AuthConfiguration, httpClient: HTTPClient?, logger: Logger
    ) async throws -> TokenVerifier {
        try await make(configuration: configuration, httpClient: httpClient, logger: logger, jwksRefetchInterval: .seconds(60))
    }

    /// ``make(configuration:httpClient:logger:)`` with a configurable minimum interval between JWKS refetches.
    static func make(
        configuration: AuthConfiguration, httpClient: HTTPClient?, logger: Logger, jwksRefetchInterval: Duration
    ) async throws(AuthConfigurationError) -> TokenVerifier {
        guard configuration.clockSkew >= .zero else {
            throw AuthConfigurationError("The clock skew leeway must not be negative.")
        }
        guard configuration.userLookupTimeout > .zero else {
            throw AuthConfigurationError("The user lookup timeout must be longer than zero.")
        }
        let userClaim = configuration.userClaim.nonBlank

        var staticKeys: [VerificationKey] = []
        if let secret = configuration.hs256Secret, !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            staticKeys.append(try await KeyLoader.hmac(secret: secret))
        }
        if let path = configuration.publicKeyPEMPath.nonBlank {
            staticKeys.append(try await KeyLoader.pem(path: path))
        }
        var remote: RemoteJWKS?
        var remoteKeys: [VerificationKey] = []
        if let source = configuration.jwks.nonBlank {
            if KeyLoader.isURL(source) {
                let client = httpClient ?? HTTPClient.shared
                remoteKeys = try await KeyLoader.jwksURL(source, client: client, logger: logger)
                remote = RemoteJWKS(
                    url: source, client: client, logger: logger, keys: remoteKeys, minimumInterval: jwksRefetchInterval)
            } else {
                staticKeys.append(contentsOf: try await KeyLoader.jwksFile(path: source, logger: logger))
            }
        }
        var lookup: UserLookup?
        if let template = configuration.userLookupURL.nonBlank {
            try UserLookup.validate(template: template)
            lookup = UserLookup(
                template: template, client: httpClient ?? HTTPClient.shared,
                timeout: configuration.userLookupTimeout, logger: logger)
        }
        return TokenVerifier(
            staticKeys: staticKeys, remoteJWKS: remote, remoteKeys: remoteKeys,
            configuration: configuration, userClaim: userClaim, userLookup: lookup)
    }

    /// Verifies the token at `now` and resolves the username (claims, then lookup, then the id).
    ///
    /// The user lookup never fails verification: when it fails or times out the username is the user id.
    /// - Throws: ``TokenRejection`` telling why the token was refused.
    public func verify(_ token: String, now: Date = Date()) async throws(TokenRejection) -> VerifiedUser {
        let (userID, claims) = try await verifiedClaims(token, now: now)
        if let name = Identity.firstDisplayName(in: claims, keys: Self.usernameClaims) {
            return VerifiedUser(userID: userID, username: name)
        }
        if let userLookup, let name = await userLookup.username(for: userID, now: now) {
            return VerifiedUser(userID: userID, username: name)
        }
        return VerifiedUser(userID: userID, username: userID)
    }

    /// Everything but the username: returns the user id and the verified claims.
    func verifiedClaims(_ token: String, now: Date) async throws(TokenRejection) -> (String, [String: JSONValue]) {
        guard !token.isEmpty else { throw .missing }
        guard hasKeys else { throw .noKeys }
        guard token.utf8.count <= Self.maximumTokenLength else { throw .tooLong }

        // Structure and header, parsed here before any key or jwt-kit sees the token.
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, !segments[0].isEmpty, !segments[1].isEmpty,
            let headerData = Base64URL.decode(segments[0]),
            let header = JSONValue.object(from: headerData),
            case .string(let algorithm)? = header["alg"]
        else { throw .malformed }
        let kid: String?
        switch header["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: throw .malformed
        }
        // No JWS extensions are understood, so a token that declares critical ones is refused (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw .malformed }

        var keys = staticKeys
        if let remoteJWKS { keys += await remoteJWKS.keys }
        guard algorithm.lowercased() != "none", keys.contains(where: { $0.algorithm == algorithm }) else {
            throw .algorithmNotAllowed
        }

        guard let payloadData = Base64URL.decode(segments[1]),
            let claims = JSONValue.object(from: payloadData),
            let signature = Base64URL.decode(segments[2])
        else { throw .malformed }

        // Signature: only keys bound to the header's alg (and kid, when a key carries that kid).
        if let kid, let remoteJWKS, !keys.contains(where: { $0.kid == kid }) {
            keys = staticKeys + (await remoteJWKS.refreshIfAllowed())
        }
        let candidates = Self.candidates(in: keys, algorithm: algorithm, kid: kid)
        let signingInput = Data("\(segments[0]).\(segments[1])".utf8)
        guard !signature.isEmpty,
            candidates.contains(where: { (try? $0.verifier.verify(signature, signs: signingInput)) == true })
        else { throw .badSignature }

        // Time claims, with leeway for clock skew.
        let nowSeconds = now.timeIntervalSince1970
        guard let expClaim = claims["exp"], expClaim != .null else { throw .missingExpiry }
        guard let exp = expClaim.numberValue, exp.isFinite else { throw .malformed }
        guard nowSeconds < exp + leeway else { throw .expired }
        if let nbfClaim = claims["nbf"], nbfClaim != .null {
            guard let nbf = nbfClaim.numberValue, nbf.isFinite else { throw .malformed }
            guard nowSeconds + leeway >= nbf else { throw .notYetValid }
        }

        if let issuer, claims["iss"]?.stringValue != issuer { throw .wrongIssuer }
        if let audience {
            switch claims["aud"] {
            case .string(let value)? where value == audience: break
            case .array(let values)? where values.contains(.string(audience)): break
            default: throw .wrongAudience
            }
        }

        return (try userID(in: claims), claims)
    }

    /// Keys that may verify a token with `algorithm` and `kid`: keys of that algorithm whose kid
    /// matches, or, when no key has that kid, the algorithm's keys without a kid.
    static func candidates(in keys: [VerificationKey], algorithm: String, kid: String?) -> [VerificationKey] {
        let ofAlgorithm = keys.filter { $0.algorithm == algorithm }
        guard let kid else { return ofAlgorithm }
        let exact = ofAlgorithm.filter { $0.kid == kid }
        return exact.isEmpty ? ofAlgorithm.filter { $0.kid == nil } : exact
    }

    /// The user id from the configured claim (or `user_id`, then `sub`).
    private func userID(in claims: [String: JSONValue]) throws(TokenRejection) -> String {
        let names = userClaim.map { [$0] } ?? Self.defaultUserClaims
        guard let value = names.lazy.compactMap({ claims[$0] }).first(where: { $0 != .null }) else {
            throw .missingUserClaim
        }
        let id: String
        switch value {
        case .string(let text): id = text
        case .int, .double:
            guard let integer = value.integerValue else { throw .invalidUserID }
            id = String(integer)
        default: throw .invalidUserID
        }
        guard Identity.isValidUserID(id) else { throw .invalidUserID }
        return id
    }
}

/// Keys from a JWKS URL, refetched when a token names an unknown `kid` (at most once per interval).
actor RemoteJWKS {
    let url: String
    private let client: HTTPClient
    private let logger: Logger
    private let minimumInterval: Duration
    private(set) var keys: [VerificationKey]
    private var lastFetch: ContinuousClock.Instant
    private var refresh: Task<Void, Never>?
    /// Number of refetches attempted (for tests and diagnostics).
    private(set) var refetchCount = 0

    init(url: String, client: HTTPClient, logger: Logger, keys: [VerificationKey], minimumInterval: Duration) {
        self.url = url
        self.client = client
        self.logger = logger
        self.keys = keys
        self.minimumInterval = minimumInterval
        self.lastFetch = .now
    }

    /// Refetches the JWKS unless one was fetched within the minimum interval; returns the current keys.
    /// A failed refetch keeps the previous keys and is logged.
    func refreshIfAllowed() async -> [VerificationKey] {
        if let refresh {
            await refresh.value
            return keys
        }
        guard ContinuousClock.now - lastFetch >= minimumInterval else { return keys }
        lastFetch = .now
        refetchCount += 1
        let task = Task {
            do {
                self.keys = try await KeyLoader.jwksURL(self.url, client: self.client, logger: self.logger)
            } catch {
                self.logger.warning("JWKS refetch failed; keeping the previous keys", metadata: ["error": "\(error)"])
            }
        }
        refresh = task
        await task.value
        refresh = nil
        return keys
    }
}
