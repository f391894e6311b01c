import Crypto
import Foundation

/// The credential an edge node shows the origin when it opens an event's link (PROTOCOL.md 8:
/// "a link without it is refused"): `<expiry>.<mac>`, where the MAC is HMAC-SHA256 with the
/// cluster secret over the node id, the event id and the expiry (Unix seconds). The secret
/// itself never travels; a token names one node and one event and lives `lifetime`.
public enum ClusterLinkToken {
    /// How long a token is accepted after it was made (links are opened at once).
    public static let lifetime: Duration = .seconds(60)

    /// A token for `nodeID` to link to `eventID`.
    public static func make(nodeID: String, eventID: String, secret: String, now: Date = Date()) -> String {
        let expiry = Int64(now.timeIntervalSince1970) + Int64(lifetime.components.seconds)
        return "\(expiry).\(mac(nodeID: nodeID, eventID: eventID, expiry: expiry, secret: secret))"
    }

    /// Whether `token` was made with `secret` for this node and event and has not expired.
    public static func isValid(_ token: String, nodeID: String, eventID: String, secret: String, now: Date = Date()) -> Bool {
        let parts = token.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, parts[0].utf8.count <= 12, let expiry = Int64(parts[0]),
              expiry >= Int64(now.timeIntervalSince1970),
              expiry <= Int64(now.timeIntervalSince1970) + Int64(lifetime.components.seconds) + 5
        else { return false }
        let expected = mac(nodeID: nodeID, eventID: eventID, expiry: expiry, secret: secret)
        // Constant time: the comparison must not tell how much of a forged MAC was right.
        let given = Array(parts[1].utf8), wanted = Array(expected.utf8)
        guard given.count == wanted.count else { return false }
        return zip(given, wanted).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func mac(nodeID: String, eventID: String, expiry: Int64, secret: String) -> String {
        let message = "airwave-link\n\(nodeID)\n\(eventID)\n\(expiry)"
        let code = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return Base64URL.encode(Data(code))
    }
}
