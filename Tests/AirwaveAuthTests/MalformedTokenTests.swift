import AirwaveTestSupport
import Foundation
import Testing

@testable import AirwaveAuth

@Suite("Malformed input")
struct MalformedTokenTests {
    static let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
    static let payload = Base64URL.encode(Data(#"{"user_id":"alice","exp":1700003600}"#.utf8))

    @Test(arguments: [
        ".", "..", "...", "a", "a.b", "a.b.c.d", "abc..def", "..sig",
        "!!!.@@@.###", "e30.e30.e30=", "e30.e30.!!", "\u{1F600}.\u{1F600}.\u{1F600}", "\(header).\(payload).é",
        "\(header)", "\(header).\(payload)", "\(header).\(payload).sig.extra", " \(header).\(payload).sig",
        "e30.\(payload).sig",  // header without alg
        "bm90IGpzb24.\(payload).sig",  // header is not JSON
        "WzFd.\(payload).sig",  // header is an array
        "eyJhbGciOjF9.\(payload).sig",  // alg is a number
        "eyJhbGciOiJIUzI1NiIsImtpZCI6MX0.\(payload).sig",  // kid is a number
        "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiYjY0Il19.\(payload).sig",  // crit
        "\(header).bm90IGpzb24.sig",  // payload is not JSON
        "\(header).A.sig",  // impossible base64 length
    ])
    func malformedStringsAreMalformed(token: String) async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        #expect(await rejection(verifier, token) == .malformed)
    }

    @Test func emptyIsMissing() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        #expect(await rejection(verifier, "") == .missing)
    }

    @Test func longTokensAreTooLong() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        #expect(await rejection(verifier, String(repeating: "A", count: 10 * 1024)) == .tooLong)
        #expect(await rejection(verifier, String(repeating: "é", count: 4097)) == .tooLong)  // 8194 bytes
        // A real token padded with a big claim just over the limit.
        let big = try hs256Token(claims(["pad": String(repeating: "x", count: 7000)]))
        #expect(big.utf8.count > TokenVerifier.maximumTokenLength)
        #expect(await rejection(verifier, big) == .tooLong)
        // Just under the limit is fine.
        let fits = try hs256Token(claims(["pad": String(repeating: "x", count: 5500)]))
        #expect(fits.utf8.count <= TokenVerifier.maximumTokenLength)
        #expect(await rejection(verifier, fits) == nil)
    }

    @Test func deeplyNestedJSONDoesNotCrash() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        let nested = String(repeating: "[", count: 3000) + String(repeating: "]", count: 3000)
        let token = "\(Self.header).\(Base64URL.encode(Data(nested.utf8))).c2ln"
        #expect(await rejection(verifier, token) == .malformed)
        let nestedHeader = Base64URL.encode(Data((#"{"alg":"HS256","x":"# + nested + "}").utf8))
        let result = await rejection(verifier, "\(nestedHeader).\(Self.payload).c2ln")
        #expect(result == .malformed || result == .badSignature)
    }

    @Test func randomGarbageNeverCrashes() async throws {
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret))
        var generator = SplitMix64(seed: 42)
        let alphabet = Array("ABCxyz019-_.=+/ {}\"é")
        for _ in 0..<500 {
            let length = Int(generator.next() % 300) + 1
            let token = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
            let result = await rejection(verifier, token)
            #expect(result == .malformed || result == .algorithmNotAllowed || result == .badSignature, "\(token)")
        }
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode("e30") == Data("{}".utf8))
        #expect(Base64URL.decode("-_8") == Data([0xFB, 0xFF]))
        #expect(Base64URL.decode("e30=") == nil)
        #expect(Base64URL.decode("e3+0") == nil)
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.encode(Data([0xFB, 0xFF])) == "-_8")
    }

    @Test func rejectionLabelsAreStable() {
        let all: [TokenRejection] = [
            .missing, .malformed, .tooLong, .algorithmNotAllowed, .badSignature, .expired, .missingExpiry,
            .notYetValid, .wrongIssuer, .wrongAudience, .missingUserClaim, .invalidUserID, .noKeys,
        ]
        #expect(TokenRejection.expired.reason == "expired")
        #expect(TokenRejection.badSignature.reason == "bad_signature")
        #expect(TokenRejection.algorithmNotAllowed.reason == "alg_not_allowed")
        #expect(TokenRejection.expired.message == "The token has expired.")
        #expect(Set(all.map(\.reason)).count == all.count)
        for rejection in all {
            #expect(rejection.reason.allSatisfy { $0.isLowercase || $0 == "_" })
            #expect(rejection.message.hasSuffix("."))
        }
    }
}
