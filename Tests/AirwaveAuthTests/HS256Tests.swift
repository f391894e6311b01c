import Foundation
import Testing

@testable import AirwaveAuth

@Suite("HS256 verification and claims")
struct HS256Tests {
    let config = AuthConfiguration(hs256Secret: testSecret)

    @Test func validTokenFromTheMinterIsAccepted() async throws {
        let verifier = try await verifier(config)
        #expect(verifier.hasKeys)
        #expect(verifier.algorithms == ["HS256"])
        let token = try TokenMinter.hs256(userID: "alice", username: "Alice", ttl: .seconds(60), secret: testSecret, now: testNow)
        let user = try await verifier.verify(token, now: testNow)
        #expect(user == VerifiedUser(userID: "alice", username: "Alice"))
    }

    @Test func wrongSecretIsABadSignature() async throws {
        let verifier = try await verifier(config)
        let token = try hs256Token(claims(), secret: "another-secret-that-is-long-enough-0123456789")
        #expect(await rejection(verifier, token) == .badSignature)
    }

    @Test func tamperedPayloadIsABadSignature() async throws {
        let verifier = try await verifier(config)
        let token = try hs256Token(claims())
        let parts = token.split(separator: ".")
        let forged = Base64URL.encode(try JSONSerialization.data(withJSONObject: claims(["user_id": "mallory"])))
        #expect(await rejection(verifier, "\(parts[0]).\(forged).\(parts[2])") == .badSignature)
        #expect(await rejection(verifier, "\(parts[0]).\(parts[1]).") == .badSignature)
    }

    @Test func expiryIsRequiredAndCheckedWithFiveSecondsOfLeeway() async throws {
        let verifier = try await verifier(config)
        let now = Int(testNow.timeIntervalSince1970)
        #expect(await rejection(verifier, try hs256Token(claims(["exp": now - 60]))) == .expired)
        #expect(await rejection(verifier, try hs256Token(claims(["exp": now - 5]))) == .expired)
        #expect(await rejection(verifier, try hs256Token(claims(["exp": now - 4]))) == nil)
        #expect(await rejection(verifier, try hs256Token(claims(["exp": NSNull()]))) == .missingExpiry)
        #expect(await rejection(verifier, try hs256Token(claims(["exp": "tomorrow"]))) == .malformed)
        // The same token is fine a minute earlier.
        let token = try hs256Token(claims(["exp": now - 60]))
        #expect(await rejection(verifier, token, now: testNow.addingTimeInterval(-120)) == nil)
    }

    @Test func notBeforeIsHonouredWithLeeway() async throws {
        let verifier = try await verifier(config)
        let now = Int(testNow.timeIntervalSince1970)
        #expect(await rejection(verifier, try hs256Token(claims(["nbf": now + 60]))) == .notYetValid)
        #expect(await rejection(verifier, try hs256Token(claims(["nbf": now + 6]))) == .notYetValid)
        #expect(await rejection(verifier, try hs256Token(claims(["nbf": now + 5]))) == nil)
        #expect(await rejection(verifier, try hs256Token(claims(["nbf": now - 60]))) == nil)
    }

    @Test func clockSkewIsConfigurable() async throws {
        let strict = try await verifier(AuthConfiguration(hs256Secret: testSecret, clockSkew: .zero))
        let now = Int(testNow.timeIntervalSince1970)
        #expect(await rejection(strict, try hs256Token(claims(["exp": now - 1]))) == .expired)
        #expect(await rejection(strict, try hs256Token(claims(["nbf": now + 1]))) == .notYetValid)
        #expect(await configurationError(AuthConfiguration(hs256Secret: testSecret, clockSkew: .seconds(-1))) != nil)
    }

    @Test func issuerMustMatchWhenConfigured() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret, issuer: "https://id.example"))
        #expect(await rejection(verifier, try hs256Token(claims(["iss": "https://id.example"]))) == nil)
        #expect(await rejection(verifier, try hs256Token(claims(["iss": "https://evil.example"]))) == .wrongIssuer)
        #expect(await rejection(verifier, try hs256Token(claims())) == .wrongIssuer)
        #expect(await rejection(verifier, try hs256Token(claims(["iss": 7]))) == .wrongIssuer)
    }

    @Test func audienceMayBeAStringOrAnArray() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret, audience: "airwave"))
        #expect(await rejection(verifier, try hs256Token(claims(["aud": "airwave"]))) == nil)
        #expect(await rejection(verifier, try hs256Token(claims(["aud": ["other", "airwave"]]))) == nil)
        #expect(await rejection(verifier, try hs256Token(claims(["aud": "other"]))) == .wrongAudience)
        #expect(await rejection(verifier, try hs256Token(claims(["aud": ["other", "more"]]))) == .wrongAudience)
        #expect(await rejection(verifier, try hs256Token(claims())) == .wrongAudience)
        // Without a configured audience, any aud is accepted.
        let open = try await AirwaveAuthTests.verifier(config)
        #expect(await rejection(open, try hs256Token(claims(["aud": "other"]))) == nil)
    }

    @Test func mintedIssuerAndAudienceVerify() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret, issuer: "me", audience: "airwave"))
        let token = try TokenMinter.hs256(
            userID: "bob", username: nil, ttl: .seconds(30), secret: testSecret, issuer: "me", audience: "airwave", now: testNow)
        #expect(try await verifier.verify(token, now: testNow) == VerifiedUser(userID: "bob", username: "bob"))
        #expect(await rejection(verifier, token, now: testNow.addingTimeInterval(36)) == .expired)
    }

    @Test func minterRefusesUnusableArguments() {
        #expect(throws: AuthConfigurationError.self) {
            try TokenMinter.hs256(userID: "alice", username: nil, ttl: .seconds(60), secret: "short")
        }
        #expect(throws: AuthConfigurationError.self) {
            try TokenMinter.hs256(userID: "not valid", username: nil, ttl: .seconds(60), secret: testSecret)
        }
        #expect(throws: AuthConfigurationError.self) {
            try TokenMinter.hs256(userID: "alice", username: nil, ttl: .zero, secret: testSecret)
        }
    }

    @Test func shortSecretIsAClearConfigurationError() async throws {
        let error = try #require(await configurationError(AuthConfiguration(hs256Secret: "too-short-secret")))
        #expect(error.description.contains("HS256 secret"))
        #expect(error.description.contains("16 bytes"))
        #expect(error.description.contains("at least 32 bytes"))
        // 32 bytes is enough.
        #expect(await configurationError(AuthConfiguration(hs256Secret: String(repeating: "k", count: 32))) == nil)
    }

    @Test func withoutKeysEveryTokenIsRefused() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: "", jwks: "  "))
        #expect(!verifier.hasKeys)
        #expect(await rejection(verifier, try hs256Token(claims())) == .noKeys)
        #expect(await rejection(verifier, "") == .missing)
    }
}

@Suite("User id and username claims")
struct ClaimTests {
    let config = AuthConfiguration(hs256Secret: testSecret)

    @Test func numericUserIDBecomesText() async throws {
        let verifier = try await verifier(config)
        let user = try await verifier.verify(try hs256Token(claims(["user_id": 123])), now: testNow)
        #expect(user == VerifiedUser(userID: "123", username: "123"))
        #expect(try await verifier.verify(try hs256Token(claims(["user_id": -7])), now: testNow).userID == "-7")
        #expect(try await verifier.verify(try hs256Token(claims(["user_id": 1])), now: testNow).userID == "1")
        #expect(try await verifier.verify(try hs256Token(claims(["user_id": 0])), now: testNow).userID == "0")
        #expect(try await verifier.verify(rawHS256(#"{"user_id":42.0,"exp":1700003600}"#), now: testNow).userID == "42")
        #expect(await rejection(verifier, rawHS256(#"{"user_id":1e300,"exp":1700003600}"#)) == .invalidUserID)
    }

    @Test func nonIntegralOrOtherTypedUserIDsAreInvalid() async throws {
        let verifier = try await verifier(config)
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": 12.5]))) == .invalidUserID)
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": true]))) == .invalidUserID)
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": ["a"]]))) == .invalidUserID)
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": ["id": "a"]]))) == .invalidUserID)
    }

    @Test func subIsTheFallbackForTheDefaultClaim() async throws {
        let verifier = try await verifier(config)
        let user = try await verifier.verify(try hs256Token(claims(["user_id": NSNull(), "sub": "bob"])), now: testNow)
        #expect(user.userID == "bob")
        // user_id wins over sub when both are present.
        #expect(try await verifier.verify(try hs256Token(claims(["sub": "bob"])), now: testNow).userID == "alice")
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": NSNull()]))) == .missingUserClaim)
    }

    @Test func anExplicitClaimIsTheOnlyOneThatCounts() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret, userClaim: "uid"))
        // user_id and sub are present, but the operator asked for uid.
        #expect(await rejection(verifier, try hs256Token(claims(["sub": "bob"]))) == .missingUserClaim)
        #expect(try await verifier.verify(try hs256Token(claims(["uid": "carol"])), now: testNow).userID == "carol")
        let subOnly = try await AirwaveAuthTests.verifier(AuthConfiguration(hs256Secret: testSecret, userClaim: "sub"))
        #expect(await rejection(subOnly, try hs256Token(claims())) == .missingUserClaim)
    }

    @Test(arguments: ["al ice", "a/b", "", "ünïcode", "<script>", "a\nb", String(repeating: "x", count: 65)])
    func userIDsWithBadCharactersAreInvalid(id: String) async throws {
        let verifier = try await verifier(config)
        #expect(await rejection(verifier, try hs256Token(claims(["user_id": id]))) == .invalidUserID)
    }

    @Test func userIDsUseTheAllowedAlphabet() async throws {
        let verifier = try await verifier(config)
        for id in ["a", "A.b_c-d@e.example", String(repeating: "x", count: 64)] {
            #expect(try await verifier.verify(try hs256Token(claims(["user_id": id])), now: testNow).userID == id)
        }
    }

    @Test func usernameComesFromTheFirstUsableClaim() async throws {
        let verifier = try await verifier(config)
        func name(_ extra: [String: Any]) async throws -> String {
            try await verifier.verify(try hs256Token(claims(extra)), now: testNow).username
        }
        #expect(try await name(["username": "Alice A.", "preferred_username": "al", "name": "Alice"]) == "Alice A.")
        #expect(try await name(["username": "   ", "preferred_username": "  al  ", "name": "Alice"]) == "al")
        #expect(try await name(["username": 5, "name": "Alice Liddell"]) == "Alice Liddell")
        #expect(try await name(["name": String(repeating: "n", count: 65)]) == "alice")
        #expect(try await name(["name": String(repeating: "n", count: 64)]) == String(repeating: "n", count: 64))
        #expect(try await name([:]) == "alice")
    }
}
