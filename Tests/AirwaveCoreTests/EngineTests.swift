import AirwaveCore
import AirwaveProtocol
import Testing

/// Scenarios that are easier to generate than to write out as fixtures.
@Suite("LiveEvent")
struct EngineTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)

    static func listener(_ i: Int, verified: Bool = true) -> UserIdentity {
        UserIdentity(userID: "u\(i)", username: "User \(i)", verified: verified)
    }

    static func drain(_ event: inout LiveEvent) -> [LiveEvent.Output] {
        var outputs: [LiveEvent.Output] = []
        while let output = event.pollOutput() { outputs.append(output) }
        return outputs
    }

    static func sends(_ outputs: [LiveEvent.Output], type: String) -> [(JSONValue, LiveEvent.Audience)] {
        outputs.compactMap {
            if case .send(let message, let route) = $0, message.type.rawValue == type { return (message.json, route.sockets) }
            return nil
        }
    }

    @Test("chat_history replays only the last 100 messages, oldest first")
    func chatHistoryKeepsTheLast100() throws {
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0))
        event.handle(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), now: Timestamp(milliseconds: 0))
        event.handle(.join(ConnectionID(2), Self.listener(2)), now: Timestamp(milliseconds: 1))
        _ = Self.drain(&event)
        for i in 1...130 {
            let from = ConnectionID(i.isMultiple(of: 2) ? 1 : 2)
            event.handle(.command(from, .chat("message \(i)")), now: Timestamp(milliseconds: Int64(1000 + i)))
            let outputs = Self.drain(&event)
            // Every message is persisted, awaited, then broadcast.
            #expect(outputs.count == 3)
            guard case .persist(.chat(_, let entry)) = outputs.first else {
                Issue.record("first output of a chat is not its record: \(outputs)")
                continue
            }
            #expect(entry.message == "message \(i)")
            #expect(outputs[1] == .awaitPersistence)
            if case .send(let message, let route) = outputs[2], route.sockets == .all, case let json = message.json {
                #expect(json["message"] == .string("message \(i)"))
            } else {
                Issue.record("third output of a chat is not a broadcast: \(outputs[2])")
            }
        }
        event.handle(.join(ConnectionID(3), Self.listener(3)), now: Timestamp(milliseconds: 5000))
        let outputs = Self.drain(&event)
        let history = try #require(Self.sends(outputs, type: "chat_history").first)
        #expect(history.1 == .one(ConnectionID(3)))
        let messages = try #require(history.0["messages"].flatMap { if case .array(let a) = $0 { a } else { nil } })
        #expect(messages.count == 100)
        #expect(messages.first?["message"] == "message 31")
        #expect(messages.first?["sent_at"] == .string(Timestamp(milliseconds: 1031).iso8601))
        #expect(messages.first?["user_id"] == "u2")  // odd messages come from the listener
        #expect(messages.last?["message"] == "message 130")
        #expect(messages.map { $0["message"]?.stringValue } == (31...130).map { "message \($0)" })
    }

    @Test("chat_history_limit is configurable")
    func chatHistoryLimitIsConfigurable() throws {
        var configuration = LiveEventConfiguration()
        configuration.chatHistoryLimit = 3
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0), configuration: configuration)
        event.handle(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), now: Timestamp(milliseconds: 0))
        for i in 1...5 { event.handle(.command(ConnectionID(1), .chat("m\(i)")), now: Timestamp(milliseconds: Int64(i))) }
        event.handle(.join(ConnectionID(2), Self.listener(2)), now: Timestamp(milliseconds: 10))
        let history = try #require(Self.sends(Self.drain(&event), type: "chat_history").first)
        #expect(history.0["messages"] == .array([
            ["username": "Hana", "user_id": "h1", "message": "m3", "sent_at": .string(Timestamp(milliseconds: 3).iso8601), "verified": true],
            ["username": "Hana", "user_id": "h1", "message": "m4", "sent_at": .string(Timestamp(milliseconds: 4).iso8601), "verified": true],
            ["username": "Hana", "user_id": "h1", "message": "m5", "sent_at": .string(Timestamp(milliseconds: 5).iso8601), "verified": true],
        ]))
    }

    /// PROTOCOL.md 2.6: 3,000 joins within 3 s must not cost frames proportional to N².
    @Test("3,000 joins in 3 simulated seconds stay far below N² frames")
    func largeEventIsNotQuadratic() throws {
        let n = 3000
        var event = LiveEvent(eventID: "big", host: Self.host, now: Timestamp(milliseconds: 0))
        var connected: Set<ConnectionID> = []
        var frames = 0
        var listTimes: [Int64] = []
        var countTimes: [Int64] = []
        var lastList: JSONValue?
        var lastCount: JSONValue?
        var joinedNotices = 0

        func step(_ input: LiveEvent.Input, at ms: Int64) {
            if case .join(let c, _) = input { connected.insert(c) }
            if case .hostConnected(let c, _) = input { connected.insert(c) }
            event.handle(input, now: Timestamp(milliseconds: ms))
            while let output = event.pollOutput() {
                switch output {
                case .send(let message, let route):
                    let json = message.json
                    switch route.sockets {
                    case .none: break
                    case .one: frames += 1
                    case .only(let list): frames += list.count
                    case .all: frames += connected.count
                    case .allExcept(let c, _): frames += connected.count - (connected.contains(c) ? 1 : 0)
                    }
                    switch json["type"]?.stringValue {
                    case "participant_list": listTimes.append(ms); lastList = json
                    case "participant_count": countTimes.append(ms); lastCount = json
                    case "participant_joined": joinedNotices += 1
                    default: break
                    }
                case .close(let c, _): connected.remove(c)
                case .persist, .awaitPersistence, .ended, .handedOver, .forward, .encodePCM, .mediaDropped, .mixSubscriber, .mixUnsubscriber, .mixDropSource, .sessionsDropSource,
                    .recordingStart, .recordingStop:
                    break
                }
            }
        }

        step(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), at: 0)
        for i in 0..<n {
            let at = Int64(i)  // 3,000 joins, one a millisecond: all within 3 s
            // The driver ticks whenever the engine asked to be woken.
            while let wake = event.nextWakeUp, wake.milliseconds <= at { step(.tick, at: wake.milliseconds) }
            step(.join(ConnectionID(UInt64(10 + i)), Self.listener(i, verified: i.isMultiple(of: 2))), at: at)
        }
        while let wake = event.nextWakeUp { step(.tick, at: wake.milliseconds) }

        #expect(event.participantCount == n)
        #expect(connected.count == n + 1)
        #expect(frames < 50 * n, "frames: \(frames)")
        // Individual join notices stop at the default limit of 200.
        #expect(joinedNotices == 200)
        // At most one participant_list and one participant_count per second, plus the trailing one.
        #expect(listTimes.count <= 4, "\(listTimes)")
        #expect(countTimes.count <= 4, "\(countTimes)")
        for (a, b) in zip(listTimes, listTimes.dropFirst()) { #expect(b - a >= 1000) }
        for (a, b) in zip(countTimes, countTimes.dropFirst()) { #expect(b - a >= 1000) }
        // The trailing update carries the final state, truncated to the 1,000 most recent listeners.
        let list = try #require(lastList)
        #expect(list["truncated"] == true)
        #expect(list["total"] == .int(n + 1))
        if case .array(let entries) = list["participants"] {
            #expect(entries.count == 1001)
            #expect(entries.first?["role"] == "host")
            #expect(entries.last?["user_id"] == .string("u\(n - 1)"))
            #expect(entries[1]["user_id"] == .string("u\(n - 1000)"))
        } else {
            Issue.record("participants is not an array")
        }
        #expect(lastCount?["count"] == .int(n))
    }

    @Test("an ended event wants no wake-up and reports itself ended")
    func endedEventIsInert() {
        var event = LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0))
        event.handle(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), now: Timestamp(milliseconds: 0))
        event.handle(.join(ConnectionID(2), Self.listener(2)), now: Timestamp(milliseconds: 10))
        event.handle(.join(ConnectionID(3), Self.listener(3)), now: Timestamp(milliseconds: 20))
        #expect(event.nextWakeUp != nil)
        #expect(event.connections == [ConnectionID(1), ConnectionID(2), ConnectionID(3)])
        #expect(event.summary.participantCount == 2)
        event.handle(.command(ConnectionID(1), .endStream), now: Timestamp(milliseconds: 30))
        let outputs = Self.drain(&event)
        #expect(outputs.last == .ended)
        #expect(event.isEnded)
        #expect(event.nextWakeUp == nil)
        #expect(event.connections.isEmpty)
        #expect(event.participantCount == 0)
        #expect(event.pollOutput() == nil)
    }
}
