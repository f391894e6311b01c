import AirwaveCore
import AirwaveProtocol

/// One WHEP or WHIP session as its event sees it: a connection id of the engine, and the ICE
/// ufrag its datagrams go out under. Media-only: it has no control channel.
struct WebRTCPeer: Sendable, Hashable {
    enum Kind: String, Sendable {
        /// `POST /whep/{eventId}`: receives the mix and the screen.
        case whep
        /// `POST /whip/{eventId}`: sends the microphone of its user.
        case whip
    }

    let id: ConnectionID
    let kind: Kind
    let user: UserIdentity
    /// The last path segment of the session's `Location`.
    let sessionID: String
    /// The server's ICE ufrag of the session (the UDP driver's key).
    let ufrag: String
    /// The answer accepted a VP8 track (told to the engine, which decides which screen frames it gets).
    let receivesVideo: Bool
    /// WHEP with `?audio=speakers`: the audio tracks the answer accepted, one speaker on each
    /// (the session maps speakers to tracks); 0 for the mix.
    var speakerTracks = 0

    /// The `Location` of the session, for `DELETE`.
    func location(eventID: String) -> String {
        "/\(kind.rawValue)/\(eventID)/\(sessionID)"
    }
}
