import AirwaveAuth
import Foundation
import Testing

@Suite("Cluster link token")
struct ClusterLinkTokenTests {
    static let secret = String(repeating: "s", count: 40)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aTokenOpensOneEventForOneNodeUntilItExpires() {
        let token = ClusterLinkToken.make(nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now)
        #expect(ClusterLinkToken.isValid(token, nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now))
        #expect(ClusterLinkToken.isValid(token, nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now + 59))
        #expect(!ClusterLinkToken.isValid(token, nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now + 61))
        #expect(!ClusterLinkToken.isValid(token, nodeID: "c", eventID: "ev1", secret: Self.secret, now: Self.now))
        #expect(!ClusterLinkToken.isValid(token, nodeID: "b", eventID: "ev2", secret: Self.secret, now: Self.now))
        #expect(!ClusterLinkToken.isValid(token, nodeID: "b", eventID: "ev1", secret: Self.secret + "x", now: Self.now))
    }

    @Test func malformedTokensAreRefused() {
        let token = ClusterLinkToken.make(nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now)
        let expiry = token.split(separator: ".")[0]
        for bad in ["", ".", "abc", "\(expiry).", "\(expiry).x", "99999999999999.\(token.split(separator: ".")[1])",
                    "\(Int(expiry)! + 3600).\(token.split(separator: ".")[1])", token + "A"] {
            #expect(!ClusterLinkToken.isValid(bad, nodeID: "b", eventID: "ev1", secret: Self.secret, now: Self.now), "\(bad)")
        }
    }
}
