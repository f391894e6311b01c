import AirwaveCore
import AirwaveProtocol
import NIOCore
import Testing

/// The HLS segmenter as the engine sees it (`segmenterSubscription`, PROTOCOL.md 9): a mix
/// subscriber of the full mix that is no participant. It keeps the mix running and speakers'
/// frames going to the mixer, is never counted, listed or closed, and a participant's
/// connection id cannot pose as it.
@Suite("LiveEvent HLS segmenter subscription")
struct ListenSegmenterSubscriptionTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    static let guest = UserIdentity(userID: "g1", username: "Gus", verified: false)

    struct Run {
        var event: LiveEvent
        var now: Int64 = 0

        init() {
            var configuration = LiveEventConfiguration()
            configuration.noticeInterval = .milliseconds(0)
            event = LiveEvent(eventID: "ev1", host: ListenSegmenterSubscriptionTests.host, now: Timestamp(milliseconds: 0),
                              configuration: configuration)
        }

        /// Handles the input; returns every output it caused.
        mutating func step(_ input: LiveEvent.Input) -> [LiveEvent.Output] {
            now += 10
            event.handle(input, now: Timestamp(milliseconds: now))
            var outputs: [LiveEvent.Output] = []
            while let output = event.pollOutput() { outputs.append(output) }
            return outputs
        }

        /// Whether the host's next audio frame goes to the mixer.
        mutating func hostAudioIsMixed() -> Bool? {
            let frame = MediaFrame(header: MediaFrameHeader(kind: .opus, sequence: UInt32(now), timestamp: UInt32(now) * 48),
                                   payload: ByteBuffer(bytes: [0xF8, 0xFF, 0xFE]))
            for case .forward(_, let route) in step(.media(ConnectionID(1), frame)) { return route.mix }
            return nil
        }
    }

    @Test func theSegmenterHearsTheFullMixWithoutBeingAParticipant() {
        var run = Run()
        _ = run.step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"))
        _ = run.step(.join(ConnectionID(2), Self.guest))
        #expect(run.hostAudioIsMixed() == false, "nobody takes the mix yet")

        let subscribed = run.step(.segmenterSubscription(ConnectionID(50), subscribed: true))
        #expect(subscribed.contains(.mixSubscriber(ConnectionID(50), minus: nil)))
        #expect(run.event.participantCount == 1, "only the guest")
        #expect(!subscribed.contains { if case .send(let message, _) = $0 { message.type == .participantJoined } else { false } })
        #expect(run.hostAudioIsMixed() == true)

        let unsubscribed = run.step(.segmenterSubscription(ConnectionID(50), subscribed: false))
        #expect(unsubscribed.contains(.mixUnsubscriber(ConnectionID(50))))
        #expect(run.hostAudioIsMixed() == false)
    }

    @Test func aParticipantsConnectionCannotPoseAsTheSegmenter() {
        var run = Run()
        _ = run.step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"))
        _ = run.step(.join(ConnectionID(2), Self.guest))
        #expect(run.step(.segmenterSubscription(ConnectionID(2), subscribed: true)).isEmpty)
        #expect(run.step(.segmenterSubscription(ConnectionID(1), subscribed: true)).isEmpty)
        #expect(run.hostAudioIsMixed() == false)
    }

    @Test func theEventsEndClosesParticipantsButNotTheSegmenter() {
        var run = Run()
        _ = run.step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"))
        _ = run.step(.segmenterSubscription(ConnectionID(50), subscribed: true))
        let end = run.step(.command(ConnectionID(1), .endStream))
        #expect(end.contains(.close(ConnectionID(1), .normal)))
        #expect(!end.contains(.close(ConnectionID(50), .normal)))
        #expect(end.last == .ended)
    }
}
