import AirwaveCore
import AirwaveProtocol

/// The event a WebRTC session reports to: the origin's ``LiveEventDriver``, or, for a WHEP
/// player on a node that is not the event's origin, that node's ``EdgeEventDriver``
/// (PROTOCOL.md 8). The gateway says what the session did; the event decides what follows.
protocol WebRTCEvent: AnyObject, Sendable {
    var eventID: String { get }
    /// True once the event is over here (a session offered now is refused).
    var hasEnded: Bool { get }
    /// A WHEP player's session connected: from now it is a listener of the event. False once
    /// the event is over (the session is closed then).
    func playerConnected(_ peer: WebRTCPeer) -> Bool
    /// A WHIP publisher's audio, validated by the gateway.
    func published(_ frame: MediaFrame, by peer: ConnectionID)
    /// A WHEP player asked for a screen keyframe (PLI/FIR); the event throttles what reaches the host.
    func keyframeRequested(by peer: ConnectionID)
    /// The session ended, for any reason.
    func peerDisconnected(_ peer: ConnectionID)
}

extension LiveEventDriver: WebRTCEvent {
    func playerConnected(_ peer: WebRTCPeer) -> Bool {
        submit(.mediaListenerJoined(peer.id, peer.user, video: peer.receivesVideo, speakers: peer.speakerTracks > 0), peer: peer)
    }

    func published(_ frame: MediaFrame, by peer: ConnectionID) {
        submit(.media(peer, frame))
    }

    func keyframeRequested(by peer: ConnectionID) {
        submit(.command(peer, .keyframeRequest))
    }

    func peerDisconnected(_ peer: ConnectionID) {
        submit(.disconnected(peer))
    }
}
