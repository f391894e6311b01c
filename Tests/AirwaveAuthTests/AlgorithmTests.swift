import AirwaveTestSupport
import Foundation
import JWTKit
import Testing

@testable import AirwaveAuth

@Suite("Algorithms, PEM keys and JWKS")
struct AlgorithmTests {
    @Test func algNoneIsAlwaysRefused() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        for alg in ["none", "None", "NONE"] {
            let unsigned = try makeToken(header: ["alg": alg, "typ": "JWT"], claims: claims()) { _ in Data() }
            #expect(unsigned.hasSuffix("."))
            #expect(await rejection(verifier, unsigned) == .algorithmNotAllowed)
        }
        // Even with a signature segment attached.
        let withSignature = try makeToken(header: ["alg": "none"], claims: claims()) { _ in Data("sig".utf8) }
        #expect(await rejection(verifier, withSignature) == .algorithmNotAllowed)
    }

    @Test func algorithmsWithoutAConfiguredKeyAreRefused() async throws {
        let hsOnly = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        let rsa = try await KeyPool.shared.rsa(0)
        #expect(await rejection(hsOnly, try rsa.token(claims())) == .algorithmNotAllowed)
        #expect(await rejection(hsOnly, try hs256Token(claims(), header: ["alg": "HS512"])) == .algorithmNotAllowed)
        #expect(await rejection(hsOnly, try hs256Token(claims(), header: ["alg": "hs256"])) == .algorithmNotAllowed)
    }

    @Test func hs256SignedWithTheRSAPublicKeyIsRefused() async throws {
        // Classic algorithm confusion: the attacker HMACs with the server's public key text.
        let rsa = try await KeyPool.shared.rsa(0)
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let pemPath = try dir.write("rsa.pem", rsa.publicPEM)
        let verifier = try await verifier(AuthConfiguration(publicKeyPEMPath: pemPath))
        #expect(verifier.algorithms == ["RS256"])
        let forged = try TokenMinter.hs256(userID: "admin", username: nil, ttl: .seconds(60), secret: rsa.publicPEM, now: testNow)
        #expect(await rejection(verifier, forged) == .algorithmNotAllowed)
        // The genuine RS256 token passes.
        #expect(try await verifier.verify(try rsa.token(claims()), now: testNow).userID == "alice")
    }

    @Test func rs256FromAPEMFile() async throws {
        let rsa = try await KeyPool.shared.rsa(0)
        let other = try await KeyPool.shared.rsa(1)
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let verifier = try await verifier(AuthConfiguration(publicKeyPEMPath: try dir.write("key.pem", rsa.publicPEM)))
        #expect(try await verifier.verify(try rsa.token(claims(["username": "Alice"])), now: testNow) == VerifiedUser(userID: "alice", username: "Alice"))
        #expect(await rejection(verifier, try other.token(claims())) == .badSignature)
        #expect(await rejection(verifier, try rsa.token(claims(["exp": NSNull()]))) == .missingExpiry)
    }

    @Test func es256FromAPEMFile() async throws {
        let ec = try await TestKeyPair.es256()
        let other = try await TestKeyPair.es256()
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let verifier = try await verifier(AuthConfiguration(publicKeyPEMPath: try dir.write("ec.pem", ec.publicPEM)))
        #expect(verifier.algorithms == ["ES256"])
        #expect(try await verifier.verify(try ec.token(claims()), now: testNow).userID == "alice")
        #expect(await rejection(verifier, try other.token(claims())) == .badSignature)
        // A truncated signature never crashes.
        let token = try ec.token(claims())
        #expect(await rejection(verifier, String(token.dropLast(10))) == .badSignature)
    }

    @Test func severalKeySourcesAtOnce() async throws {
        let ec = try await TestKeyPair.es256()
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let verifier = try await verifier(
            AuthConfiguration(hs256Secret: testSecret, publicKeyPEMPath: try dir.write("ec.pem", ec.publicPEM)))
        #expect(verifier.algorithms == ["ES256", "HS256"])
        #expect(await rejection(verifier, try ec.token(claims())) == nil)
        #expect(await rejection(verifier, try hs256Token(claims())) == nil)
    }

    @Test func pemProblemsAreClearConfigurationErrors() async throws {
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let missing = dir.url.appendingPathComponent("absent.pem").path
        let error = try #require(await configurationError(AuthConfiguration(publicKeyPEMPath: missing)))
        #expect(error.description.contains(missing))

        let notPEM = try dir.write("junk.pem", "hello")
        #expect(try #require(await configurationError(AuthConfiguration(publicKeyPEMPath: notPEM))).description.contains("not PEM"))

        let privatePEM = try dir.write("private.pem", ES256PrivateKey().pemRepresentation)
        #expect(try #require(await configurationError(AuthConfiguration(publicKeyPEMPath: privatePEM))).description.contains("private key"))

        let garbage = try dir.write("garbage.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        #expect(try #require(await configurationError(AuthConfiguration(publicKeyPEMPath: garbage))).description.contains(garbage))
    }

    @Test func jwksFromAFile() async throws {
        let rsa = try await KeyPool.shared.rsa(0)
        let ec = try await TestKeyPair.es256()
        let stranger = try await TestKeyPair.es256()
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let path = try dir.write("jwks.json", try jwksJSON([
            rsa.jwk(kid: "rsa-1"),
            ec.jwk(kid: "ec-1", includeAlg: false),
            ["kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"],
            stranger.jwk(kid: "enc-only").merging(["use": "enc"]) { _, new in new },
        ]))
        let verifier = try await verifier(AuthConfiguration(jwks: path))
        #expect(verifier.algorithms == ["ES256", "RS256"])
        #expect(await rejection(verifier, try rsa.token(claims(), kid: "rsa-1")) == nil)
        #expect(await rejection(verifier, try ec.token(claims(), kid: "ec-1")) == nil)
        // Without a kid, every key of the algorithm is tried.
        #expect(await rejection(verifier, try ec.token(claims())) == nil)
        // A kid naming another key of the same algorithm, or an unknown key, fails.
        #expect(await rejection(verifier, try stranger.token(claims(), kid: "ec-1")) == .badSignature)
        #expect(await rejection(verifier, try stranger.token(claims(), kid: "enc-only")) == .badSignature)
        #expect(await rejection(verifier, try stranger.token(claims(), kid: "nope")) == .badSignature)
        // The oct key is not a way in for HS256.
        #expect(await rejection(verifier, try hs256Token(claims(), secret: "secret")) == .algorithmNotAllowed)
    }

    @Test func jwksWithoutUsableKeysIsAConfigurationError() async throws {
        let dir = try TemporaryDirectory(prefix: "airwave-auth")
        defer { dir.remove() }
        let empty = try dir.write("empty.json", #"{"keys": []}"#)
        #expect(try #require(await configurationError(AuthConfiguration(jwks: empty))).description.contains("no usable"))
        let notJSON = try dir.write("bad.json", "keys")
        #expect(try #require(await configurationError(AuthConfiguration(jwks: notJSON))).description.contains("not a JSON Web Key Set"))
    }

    @Test func jwksFromAURL() async throws {
        let ec = try await TestKeyPair.es256()
        let body = try jwksJSON([ec.jwk(kid: "k1")])
        let server = try await TestHTTPServer.start { path in
            path == "/.well-known/jwks.json" ? .init(body: body) : .init(status: .notFound, body: "{}")
        }
        defer { Task { await server.stop() } }
        let verifier = try await verifier(AuthConfiguration(jwks: server.url("/.well-known/jwks.json")))
        #expect(try await verifier.verify(try ec.token(claims(), kid: "k1"), now: testNow).userID == "alice")
        #expect(server.count("/.well-known/jwks.json") == 1)
        // An unknown kid within the refetch interval does not refetch.
        let stranger = try await TestKeyPair.es256()
        #expect(await rejection(verifier, try stranger.token(claims(), kid: "k2")) == .badSignature)
        #expect(server.count("/.well-known/jwks.json") == 1)
    }

    @Test func unknownKidRefetchesARotatedJWKS() async throws {
        let first = try await TestKeyPair.es256()
        let second = try await TestKeyPair.es256()
        let bodies = [try jwksJSON([first.jwk(kid: "k1")]), try jwksJSON([first.jwk(kid: "k1"), second.jwk(kid: "k2")])]
        // A server whose answer changes after the first request.
        let counter = RequestCounter()
        let live = try await TestHTTPServer.start { _ in .init(body: bodies[min(counter.next(), 1)]) }
        defer { Task { await live.stop() } }
        let verifier = try await TokenVerifier.make(
            configuration: AuthConfiguration(jwks: live.url("/jwks")), httpClient: .shared, logger: quietLogger,
            jwksRefetchInterval: .zero)
        #expect(await rejection(verifier, try second.token(claims(), kid: "k2")) == nil)
        #expect(live.count("/jwks") == 2)
        // Known kids never refetch.
        #expect(await rejection(verifier, try first.token(claims(), kid: "k1")) == nil)
        #expect(live.count("/jwks") == 2)
    }

    @Test func aJWKSURLThatFailsAtStartIsAConfigurationError() async throws {
        let server = try await TestHTTPServer.start { _ in .init(status: .internalServerError, body: "{}") }
        defer { Task { await server.stop() } }
        let url = server.url("/jwks")
        let error = try #require(await configurationError(AuthConfiguration(jwks: url)))
        #expect(error.description.contains(url))
        #expect(error.description.contains("500"))
    }
}
