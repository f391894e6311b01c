import AirwaveCore
import AirwaveProtocol
import NIOCore
import Testing

/// Per-speaker WHEP listeners (`?audio=speakers`): the route of each speaker's Opus names them,
/// never a session of the speaker's own user, and follows sessions joining and leaving.
@Suite("LiveEvent per-speaker media-only listeners")
struct MediaOnlySpeakersTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    static let guest = UserIdentity(userID: "whep-abc", username: "WebRTC listener", verified: false)
    static let guest2 = UserIdentity(userID: "whep-def", username: "WebRTC listener", verified: false)

    static func opus(_ sequence: UInt32) -> MediaFrame {
        MediaFrame(header: MediaFrameHeader(kind: .opus, sequence: sequence, timestamp: sequence * 960),
                   payload: ByteBuffer(bytes: [0x78, 0x01, 0x02]))
    }

    /// The routes of the frames forwarded by the last input, and whether it subscribed anyone to the mix.
    static func drain(_ event: inout LiveEvent) -> (routes: [LiveEvent.Route], mixSubscribed: Bool) {
        var routes: [LiveEvent.Route] = []
        var mixSubscribed = false
        while let output = event.pollOutput() {
            switch output {
            case .forward(_, let route): routes.append(route)
            case .mixSubscriber: mixSubscribed = true
            default: break
            }
        }
        return (routes, mixSubscribed)
    }

    @Test func theHostsWHIPVoiceReachesEveryPerSpeakerSessionButTheHostsOwn() {
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0))
        var now: Int64 = 0
        func step(_ input: LiveEvent.Input) -> (routes: [LiveEvent.Route], mixSubscribed: Bool) {
            now += 10
            event.handle(input, now: Timestamp(milliseconds: now))
            return Self.drain(&event)
        }
        _ = step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"))
        _ = step(.publisherConnected(ConnectionID(20), Self.host))
        #expect(event.isPublisher(ConnectionID(20)))
        #expect(step(.mediaListenerJoined(ConnectionID(10), Self.host, video: false, speakers: true)).mixSubscribed == false)
        #expect(step(.mediaListenerJoined(ConnectionID(11), Self.guest, video: false, speakers: true)).mixSubscribed == false)

        var routes = step(.media(ConnectionID(20), Self.opus(1))).routes
        #expect(routes.map(\.sessions) == [.only([ConnectionID(11)])])
        // Nobody takes the mix: none is encoded for per-speaker sessions.
        #expect(routes.map(\.mix) == [false])

        _ = step(.mediaListenerJoined(ConnectionID(12), Self.guest2, video: false, speakers: true))
        routes = step(.media(ConnectionID(20), Self.opus(2))).routes
        #expect(routes.map(\.sessions) == [.only([ConnectionID(11), ConnectionID(12)])])

        _ = step(.disconnected(ConnectionID(11)))
        _ = step(.disconnected(ConnectionID(12)))
        routes = step(.media(ConnectionID(20), Self.opus(3))).routes
        #expect(routes.map(\.sessions) == [.none])  // only the host's own session is left
    }
}
