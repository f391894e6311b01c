import AirwaveProtocol
import Foundation

extension Timestamp {
    /// The current wall-clock time (the server's only clock read for the core).
    static func now() -> Timestamp {
        Timestamp(milliseconds: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
