import AirwaveCore
import AirwaveProtocol
import Testing

/// Media-only (WHEP) listeners in counts and lists: a verified one whose user is already in
/// the event (the host, or the user's WebSocket) is the same person and is not counted twice.
@Suite("LiveEvent media-only listeners in counts and lists")
struct MediaOnlyCountTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    static let vera = UserIdentity(userID: "u4", username: "Vera", verified: true)
    static let guest = UserIdentity(userID: "whep-abc", username: "WebRTC listener", verified: false)

    /// The user ids of the last participant list the event sent, host first.
    static func listedUsers(_ event: inout LiveEvent) -> [String]? {
        var last: [String]?
        while let output = event.pollOutput() {
            if case .send(let message, _) = output, case let json = message.json, message.type == .participantList,
               let entries = json["participants"]?.arrayValue {
                last = entries.compactMap { $0["user_id"]?.stringValue }
            }
        }
        return last
    }

    @Test func aUsersOwnWHEPSessionIsNotCountedOrListedAgainUntilItsWebSocketLeaves() {
        var configuration = LiveEventConfiguration()
        configuration.noticeInterval = .milliseconds(0)
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0), configuration: configuration)
        var now: Int64 = 0
        func step(_ input: LiveEvent.Input) {
            now += 10
            event.handle(input, now: Timestamp(milliseconds: now))
        }
        step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"))
        step(.join(ConnectionID(2), Self.vera))
        step(.mediaListenerJoined(ConnectionID(10), Self.vera, video: false))
        #expect(event.participantCount == 1)
        #expect(Self.listedUsers(&event) == ["h1", "u4"])

        step(.mediaListenerJoined(ConnectionID(11), Self.guest, video: false))
        step(.mediaListenerJoined(ConnectionID(12), Self.host, video: false))  // the host monitoring its own event
        #expect(event.participantCount == 2)
        #expect(Self.listedUsers(&event) == ["h1", "u4", "whep-abc"])

        step(.disconnected(ConnectionID(2)))  // Vera's WebSocket goes; her WHEP session (joined first) stays
        #expect(event.participantCount == 2)
        #expect(Self.listedUsers(&event) == ["h1", "u4", "whep-abc"])

        step(.join(ConnectionID(3), Self.vera))  // and comes back
        #expect(event.participantCount == 2)
        step(.disconnected(ConnectionID(10)))
        step(.disconnected(ConnectionID(12)))
        #expect(event.participantCount == 2)
        #expect(Self.listedUsers(&event) == ["h1", "whep-abc", "u4"])
        step(.disconnected(ConnectionID(11)))
        #expect(event.participantCount == 1)
        #expect(event.summary.participantCount == 1)
    }

    @Test func noParticipantNoticesForAShadowedSession() {
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0))
        event.handle(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), now: Timestamp(milliseconds: 0))
        event.handle(.join(ConnectionID(2), Self.vera), now: Timestamp(milliseconds: 1))
        while event.pollOutput() != nil {}
        event.handle(.mediaListenerJoined(ConnectionID(10), Self.vera, video: false), now: Timestamp(milliseconds: 2))
        event.handle(.disconnected(ConnectionID(10)), now: Timestamp(milliseconds: 3))
        var types: [String] = []
        while let output = event.pollOutput() {
            if case .send(let message, _) = output { types.append(message.type.rawValue) }
        }
        #expect(!types.contains("participant_joined"))
        #expect(!types.contains("participant_left"))
    }
}
