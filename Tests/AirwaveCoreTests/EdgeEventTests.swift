import AirwaveCore
import AirwaveProtocol
import Testing

/// An edge fed by a real origin engine: what the edge replays to its joiner must be what the
/// origin gives its own joiner at the same point, however the mode, its codec fields and the
/// chat changed on the way (the edge mirrors them from the notices alone).
@Suite("Edge against the origin engine")
struct EdgeEventTests {
    static func t(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: ms) }
    static func c(_ n: UInt64) -> ConnectionID { ConnectionID(n) }

    /// The origin and one edge linked to it the way the next session's adapter will: every
    /// message the origin sends to all goes down the link to all.
    struct Pair {
        var origin: LiveEvent
        var edge: EdgeEvent
        var now: Int64 = 1000
        var nextOriginConnection: UInt64 = 100
        var nextEdgeConnection: UInt64 = 1000
        var nextEdgeNumber: UInt32 = 1

        init(chatHistoryLimit: Int) {
            var originConfiguration = LiveEventConfiguration()
            originConfiguration.chatHistoryLimit = chatHistoryLimit
            var edgeConfiguration = EdgeConfiguration()
            edgeConfiguration.chatHistoryLimit = chatHistoryLimit
            origin = LiveEvent(eventID: "ev1", host: UserIdentity(userID: "h1", username: "Hana", verified: true), now: EdgeEventTests.t(now),
                               configuration: originConfiguration)
            edge = EdgeEvent(eventID: "ev1", now: EdgeEventTests.t(now), configuration: edgeConfiguration)
            origin.handle(.hostConnected(EdgeEventTests.c(1), joinURL: "ws://a/"), now: EdgeEventTests.t(now))
            drainOrigin()
            // The link comes up with what a joiner of the origin gets now.
            let (state, history, list, count) = originJoiner()
            edge.handle(.fromOrigin(.snapshot(.init(streamState: state, chatHistory: history, participantList: list, participantCount: count))),
                        now: EdgeEventTests.t(now))
            while edge.pollOutput() != nil {}
        }

        /// Feeds the origin and relays its messages for all down the link.
        mutating func origin(_ input: LiveEvent.Input) {
            now += 10
            origin.handle(input, now: EdgeEventTests.t(now))
            drainOrigin()
        }

        mutating func drainOrigin() {
            while let output = origin.pollOutput() {
                if case .send(let message, let route) = output, route.sockets == .all {
                    edge.handle(.fromOrigin(.message(message, to: .all)), now: EdgeEventTests.t(now))
                }
            }
            while edge.pollOutput() != nil {}
        }

        /// A new direct joiner of the origin: the stream_state and chat_history it gets, and the
        /// list and count that follow for everyone.
        mutating func originJoiner() -> (JSONValue, JSONValue, JSONValue, JSONValue) {
            nextOriginConnection += 1
            let connection = EdgeEventTests.c(nextOriginConnection)
            now += 10
            origin.handle(.join(connection, UserIdentity(userID: "o\(nextOriginConnection)", username: "O", verified: false)), now: EdgeEventTests.t(now))
            var personal: [LiveEvent.MessageType: JSONValue] = [:]
            var forAll: [LiveEvent.MessageType: JSONValue] = [:]
            while let output = origin.pollOutput() {
                guard case .send(let message, let route) = output else { continue }
                if route.sockets == .one(connection) { personal[message.type] = message.json }
                if route.sockets == .all {
                    forAll[message.type] = message.json
                    edge.handle(.fromOrigin(.message(message, to: .all)), now: EdgeEventTests.t(now))
                }
            }
            while edge.pollOutput() != nil {}
            return (personal[.streamState] ?? .null, personal[.chatHistory] ?? .null, forAll[.participantList] ?? .null,
                    forAll[.participantCount] ?? .null)
        }

        /// A new client of the edge, welcomed: the stream_state and chat_history the edge replays.
        mutating func edgeJoiner() -> (JSONValue, JSONValue) {
            nextEdgeConnection += 1
            let connection = EdgeEventTests.c(nextEdgeConnection)
            edge.handle(.join(connection, UserIdentity(userID: "e\(nextEdgeConnection)", username: "E", verified: false)), now: EdgeEventTests.t(now))
            edge.handle(.fromOrigin(.welcome(nextEdgeNumber)), now: EdgeEventTests.t(now))
            nextEdgeNumber += 1
            var personal: [LiveEvent.MessageType: JSONValue] = [:]
            while let output = edge.pollOutput() {
                if case .send(let message, let route) = output, route.sockets == .one(connection) { personal[message.type] = message.json }
            }
            return (personal[.streamState] ?? .null, personal[.chatHistory] ?? .null)
        }

        /// The edge's joiner and the origin's get the same state.
        mutating func expectSameReplay(_ context: String) {
            let (edgeState, edgeHistory) = edgeJoiner()
            let (originState, originHistory, _, _) = originJoiner()
            #expect(edgeState == originState, "\(context): stream_state \(edgeState.jsonText) vs the origin's \(originState.jsonText)")
            #expect(edgeHistory == originHistory, "\(context): chat_history \(edgeHistory.jsonText) vs the origin's \(originHistory.jsonText)")
            #expect(edgeState != .null && edgeHistory != .null, "\(context)")
        }
    }

    @Test func theEdgeReplaysWhatTheOriginGivesItsJoiner() {
        var pair = Pair(chatHistoryLimit: 3)
        pair.expectSameReplay("at the start")
        pair.origin(.command(Self.c(1), .chat("one")))
        pair.origin(.command(Self.c(1), .switchToScreen(ScreenConfig(codec: "vp8", width: 1280, height: 720, description: "AAECAw=="))))
        pair.expectSameReplay("screen with codec fields")
        for text in ["two", "three", "four", "five"] {
            pair.origin(.command(Self.c(1), .chat(text)))
        }
        pair.origin(.command(Self.c(101), .chat("from a listener of the origin")))
        pair.expectSameReplay("chat beyond the history limit")
        pair.origin(.command(Self.c(1), .switchToAudio))
        pair.expectSameReplay("back to audio")
        pair.origin(.command(Self.c(1), .switchToScreen(ScreenConfig())))
        pair.expectSameReplay("screen without codec fields")
    }

    @Test func snapshotSourcesKeepASpeakersOwnVoiceFromIt() {
        // A co-host listed in the snapshot: its audio reaches every member of the edge but it.
        var edge = EdgeEvent(eventID: "ev1", now: Self.t(0))
        edge.handle(.join(Self.c(11), UserIdentity(userID: "u2", username: "Uma", verified: true)), now: Self.t(0))
        edge.handle(.join(Self.c(12), UserIdentity(userID: "u3", username: "Ugo", verified: false)), now: Self.t(0))
        let list = LiveServerMessage.participantList([
            .init(userID: "h1", username: "Hana", role: "host", verified: true, sourceID: 1, muted: false),
            .init(userID: "u2", username: "Uma", role: "cohost", verified: true, sourceID: 5, muted: false),
        ], truncatedTotal: nil)
        edge.handle(.fromOrigin(.snapshot(.init(streamState: LiveServerMessage.streamState(eventID: "ev1", mode: "audio", hostUserID: "h1", hostUsername: "Hana",
                                                                                           screen: nil, startedAt: Self.t(0)),
                                               chatHistory: LiveServerMessage.chatHistory([]), participantList: list,
                                               participantCount: LiveServerMessage.participantCount(2)))), now: Self.t(1))
        edge.handle(.fromOrigin(.welcome(1)), now: Self.t(2))
        edge.handle(.fromOrigin(.welcome(2)), now: Self.t(2))
        while edge.pollOutput() != nil {}
        let frame = EdgeLinkMessageTests.frame(.opus, source: 5, [0xfc])
        edge.handle(.fromOrigin(.media(frame)), now: Self.t(3))
        let forwarded = edge.pollOutput()
        #expect(forwarded == .forward(frame, LiveEvent.Route(sockets: .allExcept(Self.c(11)), queue: .audio)))
        let more = edge.pollOutput()
        #expect(more == nil)
    }
}
