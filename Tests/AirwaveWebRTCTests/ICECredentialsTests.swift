import Foundation
import Testing

@testable import AirwaveWebRTC

/// RFC 8445 §5.3 and RFC 8839 §5.4: the ufrag at least 24 bits of randomness and 4 `ice-char`s,
/// the password at least 128 bits and 22 `ice-char`s.
@Suite struct ICECredentialsTests {
    static let iceChars = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

    /// Bits of a token of `length` characters drawn uniformly from `alphabet`.
    static func entropy(length: Int, alphabet: [Character]) -> Double {
        Double(length) * log2(Double(Set(alphabet).count))
    }

    @Test func lengthsAlphabetAndEntropyMeetRFC8445() {
        #expect(Set(RandomToken.iceCharacters) == Self.iceChars && RandomToken.iceCharacters.count == 64)
        #expect(Self.entropy(length: ICECredentials.passwordLength, alphabet: RandomToken.iceCharacters) >= 128)
        #expect(Self.entropy(length: ICECredentials.ufragLength, alphabet: RandomToken.iceCharacters) >= 24)
        for _ in 0..<100 {
            let credentials = ICECredentials.random()
            #expect(credentials.password.count == ICECredentials.passwordLength && credentials.password.count >= 22)
            #expect((4...256).contains(credentials.ufrag.count))
            #expect(credentials.password.allSatisfy(Self.iceChars.contains) && credentials.ufrag.allSatisfy(Self.iceChars.contains))
        }
    }

    /// Every character of the alphabet turns up, about equally often: the draw is uniform, so
    /// the entropy above is the real one (a draw biased to part of the alphabet would have less).
    @Test func theDrawIsUniformOverTheAlphabet() {
        var counts: [Character: Int] = [:]
        let draws = 2_000
        for _ in 0..<draws {
            for character in ICECredentials.random().password { counts[character, default: 0] += 1 }
        }
        #expect(Set(counts.keys) == Self.iceChars)
        // 48,000 characters, 750 expected of each; ±25 % is more than 8 standard deviations.
        let expected = Double(draws * ICECredentials.passwordLength) / 64
        #expect(counts.values.allSatisfy { abs(Double($0) - expected) < expected / 4 }, "\(counts)")
        // And no two passwords of many are equal.
        let passwords = Set((0..<1_000).map { _ in ICECredentials.random().password })
        #expect(passwords.count == 1_000)
    }

    @Test func tokensUseTheirAlphabetOnly() {
        let token = RandomToken.make(length: 16, alphabet: RandomToken.lowercaseAlphanumerics)
        #expect(token.count == 16 && token.allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(Self.entropy(length: 16, alphabet: RandomToken.lowercaseAlphanumerics) > 82)
    }
}
