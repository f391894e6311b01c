import AirwaveCore
import AirwaveProtocol
import Testing

/// `OriginLinks` against a real origin engine: what goes down each link for the engine's
/// outputs (welcome instead of the joiner's replay, once per link, the end as one message, the
/// grace of a dropped link, a new session of the same edge).
@Suite("Origin links")
struct OriginLinksTests {
    static func t(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: ms) }
    static func c(_ n: UInt64) -> ConnectionID { ConnectionID(n) }
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)

    /// An origin engine with links; `feed` returns what went down which link for one input.
    struct Origin {
        var engine = LiveEvent(eventID: "ev1", host: OriginLinksTests.host, now: OriginLinksTests.t(0))
        var links = OriginLinks(grace: .seconds(5))
        var now: Int64 = 0
        var nextConnection: UInt64 = 100

        init() {
            feed(.hostConnected(OriginLinksTests.c(1), joinURL: "ws://a/"))
        }

        @discardableResult
        mutating func feed(_ input: LiveEvent.Input) -> [String] {
            now += 10
            engine.handle(input, now: OriginLinksTests.t(now))
            return drain()
        }

        mutating func drain() -> [String] {
            var downs: [String] = []
            while let output = engine.pollOutput() {
                for (link, down) in links.route(output) {
                    switch down.frame {
                    case .text(let text): downs.append("\(link) \(text)")
                    case .binary(let frame): downs.append("\(link) media \(frame.header.kind) source \(frame.header.sourceID)")
                    }
                }
            }
            return downs
        }

        /// An edge client's join as the driver feeds it; returns what went down.
        mutating func join(_ link: String, _ number: UInt32, _ user: UserIdentity) -> [String] {
            nextConnection += 1
            switch links.join(link, number, fresh: OriginLinksTests.c(nextConnection)) {
            case .join(let id): return feed(.join(id, user))
            case .held(let down): return ["\(link) held \(down)"]
            case .ignored: return ["ignored"]
            }
        }
    }

    static func user(_ id: String, verified: Bool = false) -> UserIdentity { UserIdentity(userID: id, username: id.uppercased(), verified: verified) }

    @Test func aJoinIsWelcomedWithoutTheReplayAndNoticesGoOncePerLink() {
        var origin = Origin()
        #expect(origin.links.opened("b", session: "s1").isEmpty)
        #expect(origin.links.opened("c", session: "s1").isEmpty)
        let downs = origin.join("b", 1, Self.user("u2"))
        // The welcome stands for stream_state and chat_history; participant_joined goes to every link once.
        #expect(downs.first == #"b {"type":"welcome","client":1}"#, "\(downs)")
        #expect(!downs.contains { $0.contains("stream_state") || $0.contains("chat_history") }, "\(downs)")
        #expect(downs.filter { $0.contains("participant_joined") }.map { String($0.prefix(2)) } == ["b ", "c "], "\(downs)")
        // Host audio: one frame per link with a recipient (c has no client yet: nothing).
        let audio = EdgeLinkMessageTests.frame(.opus, [0xfc, 0xff, 0xfe])
        let forwarded = origin.feed(.media(Self.c(1), audio))
        #expect(forwarded == ["b media opus source 1"], "\(forwarded)")
        // A screen frame goes to every link, clients or not: an edge keeps the GOP for its joiners.
        origin.feed(.command(Self.c(1), .switchToScreen(ScreenConfig())))
        let key = EdgeLinkMessageTests.frame(.screen, flags: [.keyframe], [1, 2, 3])
        #expect(origin.feed(.media(Self.c(1), key)) == ["b media screen source 1", "c media screen source 1"])
    }

    /// A player of an edge (WHEP, `GET /listen/`): joined as a media-only listener, so no
    /// welcome (it gets no stream_state); counted everywhere; its mix goes to its link; the mix
    /// packets go down once per link (`EventMix`, not here); a speaker's stop reaches the links.
    @Test func aPlayerOfAnEdgeIsJoinedWithoutWelcomeAndGetsItsMixAssignment() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        _ = origin.links.opened("c", session: "s1")
        _ = origin.join("c", 1, Self.user("u9"))  // c has a client: a speaker's stop goes there too
        let id = Self.c(200)
        guard case .join(let joined) = origin.links.join("b", 1, fresh: id, mediaOnly: true) else {
            Issue.record("not joined")
            return
        }
        let downs = origin.feed(.mediaListenerJoined(joined, Self.user("whep-1"), video: false))
        #expect(downs.contains(#"b {"type":"mix_subscriber","client":1,"minus":null}"#), "\(downs)")
        #expect(!downs.contains { $0.contains("welcome") }, "\(downs)")
        #expect(downs.filter { $0.contains("participant_joined") }.map { String($0.prefix(2)) } == ["b ", "c "], "\(downs)")
        // The host's own stream skips mixed listeners: nothing goes down b, whose only client is mixed.
        let audio = EdgeLinkMessageTests.frame(.opus, [0xfc, 0xff, 0xfe])
        #expect(origin.feed(.media(Self.c(1), audio)) == ["c media opus source 1"])
        // A re-announce after a re-link is held, with the welcome the edge ignores for a player.
        #expect(origin.links.join("b", 1, fresh: Self.c(201), mediaOnly: true) == .held(.welcome(1)))
        // A per-speaker player on c: the host's mute stops its audio, and both links with clients hear so.
        _ = origin.links.join("c", 2, fresh: Self.c(202), mediaOnly: true)
        origin.feed(.mediaListenerJoined(Self.c(202), Self.user("whep-2"), video: false, speakers: true))
        let muted = origin.feed(.command(Self.c(1), .mute(userID: nil)))
        #expect(muted.contains(#"b {"type":"sessions_drop_source","source":1}"#) && muted.contains(#"c {"type":"sessions_drop_source","source":1}"#),
                "\(muted)")
    }

    /// An edge's HLS segmenter takes the full mix without being a participant, and its leave
    /// (the edge went away) stops the mix for it.
    @Test func anEdgesSegmenterTakesTheFullMixUncountedAndItsLeaveEndsIt() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        guard case .join(let id) = origin.links.join("b", 1, fresh: Self.c(300), mediaOnly: true) else {
            Issue.record("not joined")
            return
        }
        let downs = origin.feed(.segmenterSubscription(id, subscribed: true))
        #expect(downs == [#"b {"type":"mix_subscriber","client":1,"minus":null}"#], "\(downs)")
        #expect(origin.engine.summary.participantCount == 0)
        let left = origin.links.leave("b", 1)
        #expect(left == id)
        var mixOutputs: [String] = []
        origin.engine.handle(.disconnected(id), now: Self.t(1000))
        while let output = origin.engine.pollOutput() { mixOutputs.append("\(output)") }
        #expect(mixOutputs.contains { $0.hasPrefix("mixUnsubscriber") }, "\(mixOutputs)")
    }

    @Test func aRefusedJoinGetsTheErrorAndTheClose() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        let downs = origin.join("b", 1, Self.user("h1"))
        #expect(downs.count == 2, "\(downs)")
        #expect(downs.first?.contains(#""code":"duplicate_user""#) == true && downs.first?.contains(#""to":1"#) == true, "\(downs)")
        #expect(downs.last == #"b {"type":"close","client":1,"code":4409}"#, "\(downs)")
        #expect(origin.links.clientCount == 0)
    }

    @Test func chatFromAnEdgeGoesDownOnceToAll() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        _ = origin.join("b", 1, Self.user("u2"))
        let id = origin.links.connection("b", 1)!
        let downs = origin.feed(.command(id, .chat("hi")))
        #expect(downs == [#"b {"type":"message","message":{"type":"message_broadcast","message":"hi","sent_at":"1970-01-01T00:00:00.030Z","user_id":"u2","username":"U2","verified":false},"to":"all"}"#])
    }

    @Test func theEndIsTheNoticeAndOneEndedPerLink() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        for n in UInt32(1)...3 { _ = origin.join("b", n, Self.user("u\(n + 1)")) }
        let downs = origin.feed(.command(Self.c(1), .endStream))
        #expect(downs.count == 2, "\(downs)")
        #expect(downs.first?.contains("stream_ended") == true)
        #expect(downs.last == #"b {"type":"ended","code":1000}"#)
        #expect(origin.links.clientCount == 0)
    }

    @Test func aDroppedLinkKeepsItsClientsForTheGraceAndAReLinkWelcomesThemQuietly() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        _ = origin.join("b", 1, Self.user("u2"))
        origin.links.closed("b", now: Self.t(origin.now))
        #expect(origin.links.nextWakeUp == Self.t(origin.now + 5000))
        // Nothing goes down a link that is down.
        #expect(origin.feed(.command(Self.c(1), .chat("while down"))).isEmpty)
        // Back within the grace: the same client is held, welcomed, and no notice is made.
        #expect(origin.links.opened("b", session: "s1").isEmpty)
        #expect(origin.join("b", 1, Self.user("u2")) == ["b held welcome(1)"])
        #expect(origin.links.nextWakeUp == nil)
        #expect(origin.engine.participantCount == 1)
        // Down again, past the grace: its clients leave the event.
        origin.links.closed("b", now: Self.t(origin.now))
        let gone = origin.links.expire(now: Self.t(origin.now + 5000))
        #expect(gone.count == 1)
        origin.feed(.disconnected(gone[0]))
        #expect(origin.engine.participantCount == 0)
    }

    @Test func aNewSessionOfTheSameEdgeReplacesTheOldClientsAtOnce() {
        var origin = Origin()
        _ = origin.links.opened("b", session: "s1")
        _ = origin.join("b", 1, Self.user("u2"))
        origin.links.closed("b", now: Self.t(origin.now))
        let gone = origin.links.opened("b", session: "s2")
        #expect(gone.count == 1)
        // Client 1 of the new session is somebody else.
        #expect(origin.links.connection("b", 1) == nil)
        let downs = origin.join("b", 1, Self.user("u3"))
        #expect(downs.first == #"b {"type":"welcome","client":1}"#, "\(downs)")
    }

    @Test func anUnknownLinkIsIgnored() {
        var links = OriginLinks()
        #expect(links.join("x", 1, fresh: Self.c(5)) == .ignored)
        #expect(links.leave("x", 1) == nil)
        #expect(links.route(.ended).isEmpty)
    }
}
