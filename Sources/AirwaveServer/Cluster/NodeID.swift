import AirwaveProtocol
import AirwaveWebRTC
import Foundation

/// This node's id when `--node-id` is not given: made once and kept in `<data-dir>/node-id`, so
/// that a restarted node is the same node (its old rows are its own, not a stranger's).
enum NodeID {
    static func loadOrCreate(in dataDirectory: String) throws(ServerStartError) -> String {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("node-id").path
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard Identifier.isValid(text) else {
                throw ServerStartError("\(path) must hold a node id (1–64 characters of A–Z, a–z, 0–9, _ . @ -); delete it to get a new one.")
            }
            return text
        }
        let id = "node-" + RandomToken.make(length: 12, alphabet: RandomToken.lowercaseAlphanumerics)
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .withoutOverwriting)
        } catch {
            throw ServerStartError("Cannot keep the node id in \(path): \(error.localizedDescription)")
        }
        return id
    }
}
