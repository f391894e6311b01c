import AirwaveCore
import AirwaveProtocol
import Testing

@Suite("Listening-room fixtures")
struct RoomFixtureTests {
    @Test("Fixtures/rooms is found and not empty")
    func fixturesFound() {
        #expect(RoomFixtureLibrary.directory != nil)
        #expect(RoomFixtureLibrary.names.count >= 15, "found: \(RoomFixtureLibrary.names)")
    }

    @Test("room scenario", arguments: RoomFixtureLibrary.names)
    func scenario(_ name: String) throws {
        var runner = try RoomFixtureRunner(name: name, fixture: try RoomFixtureLibrary.load(name))
        try runner.run()
    }
}

/// What the JSON scenarios cannot say well: the 100-message chat history, and the runner's own
/// persistence checks.
@Suite("ListeningRoom")
struct ListeningRoomTests {
    static func member(_ userID: String, verified: Bool, _ connection: UInt64) -> RoomMember {
        RoomMember(userID: userID, name: userID, verified: verified, connection: ConnectionID(connection), instance: "n1")
    }

    static func command(_ json: JSONValue) throws -> RoomCommand {
        try RoomCommand.decode(Array(json.jsonText.utf8))
    }

    static func drain(_ room: inout ListeningRoom) -> [ListeningRoom.Output] {
        var outputs: [ListeningRoom.Output] = []
        while let output = room.pollOutput() { outputs.append(output) }
        return outputs
    }

    static func effect(_ output: ListeningRoom.Output?) -> RoomEvent.Effect? {
        if case .publish(let event)? = output { event.effect } else { nil }
    }

    static func sends(_ outputs: [ListeningRoom.Output]) -> [JSONValue] {
        outputs.compactMap { if case .send(let message, _) = $0 { message } else { nil } }
    }

    @Test("chat_history in room_state holds the last 100 messages, oldest first; each is published (stored, then relayed)")
    func chatHistoryKeepsTheLast100() throws {
        var room = ListeningRoom(roomID: "r1", hostUserID: nil)
        room.handle(.join(ConnectionID(1), Self.member("u1", verified: true, 1)), now: Timestamp(milliseconds: 1))
        _ = Self.drain(&room)
        for i in 1...130 {
            let now = Timestamp(milliseconds: Int64(1000 + i))
            room.handle(.command(ConnectionID(1), try Self.command(["type": "chat_message", "message": .string("message \(i)")])), now: now)
            let outputs = Self.drain(&room)
            let entry = RoomChatEntry(userID: "u1", name: "u1", message: "message \(i)", sentAt: now)
            let relayed: JSONValue = ["type": "chat_message", "message": .string("message \(i)"), "user_id": "u1", "name": "u1",
                                      "sent_at": .string(now.iso8601)]
            #expect(outputs == [.publish(RoomEvent(message: relayed, effect: .chat(entry)))])
        }
        #expect(room.state.chat.count == 100)
        room.handle(.join(ConnectionID(2), Self.member("guest-2", verified: false, 2)), now: Timestamp(milliseconds: 5000))
        let state = try #require(Self.sends(Self.drain(&room)).first)
        #expect(state["type"] == "room_state")
        let history = try #require(state["chat_history"]?.arrayValue)
        #expect(history.count == 100)
        #expect(history.first?["message"] == "message 31")
        #expect(history.first?["sent_at"] == .string(Timestamp(milliseconds: 1031).iso8601))
        #expect(history.last?["message"] == "message 130")
        #expect(history.compactMap { $0["message"]?.stringValue } == (31...130).map { "message \($0)" })
    }

    @Test("a chat message publishes no state change; the engine's default history limit is 100")
    func chatPersistsOnlyTheEntry() throws {
        var room = ListeningRoom(roomID: "r1", hostUserID: nil)
        #expect(room.chatHistoryLimit == 100)
        room.handle(.join(ConnectionID(1), Self.member("u1", verified: true, 1)), now: Timestamp(milliseconds: 1))
        _ = Self.drain(&room)
        room.handle(.command(ConnectionID(1), try Self.command(["type": "chat_message", "message": "hi"])), now: Timestamp(milliseconds: 2))
        let outputs = Self.drain(&room)
        #expect(outputs.count == 1)
        #expect(!outputs.contains { if case .publish(let event) = $0, case .change = event.effect { true } else { false } })
    }

    @Test("a command from a connection that is not a member does nothing")
    func nonMemberIsIgnored() throws {
        var room = ListeningRoom(roomID: "r1", hostUserID: nil)
        room.handle(.command(ConnectionID(9), try Self.command(["type": "song_queued", "song_id": "s1"])), now: Timestamp(milliseconds: 1))
        #expect(Self.drain(&room).isEmpty)
        #expect(room.state == RoomSnapshot())
    }

    @Test("the runner's rules catch a relay to all that was not published, an unexplained state and a close before room_closed")
    func publicationRules() {
        let changed = RoomSnapshot(currentSong: "s1")
        let message: JSONValue = ["type": "song_changed"]
        let published = ListeningRoom.Output.publish(RoomEvent(message: message, effect: .change(.songChanged("s1"))))
        #expect(RoomFixtureRunner.ruleViolations([published], before: RoomSnapshot(), after: changed).isEmpty)
        #expect(RoomFixtureRunner.ruleViolations([published, .send(message, to: .all)], before: RoomSnapshot(), after: changed).count == 1)
        #expect(RoomFixtureRunner.ruleViolations([.send(message, to: .all)], before: RoomSnapshot(), after: RoomSnapshot()).count == 1)
        #expect(RoomFixtureRunner.ruleViolations([.send(message, to: .all)], before: RoomSnapshot(), after: changed).count == 2)
        #expect(RoomFixtureRunner.ruleViolations([.publish(RoomEvent(message: message, effect: .change(.songChanged("s2"))))],
                                                 before: RoomSnapshot(), after: changed).count == 1)
        let closed = ListeningRoom.Output.publish(RoomEvent(message: ["type": "room_closed"], effect: .closed))
        #expect(RoomFixtureRunner.ruleViolations([closed, .close(ConnectionID(1), .normal)], before: changed, after: RoomSnapshot()).isEmpty)
        #expect(RoomFixtureRunner.ruleViolations([.close(ConnectionID(1), .normal), closed], before: changed, after: RoomSnapshot()).count == 1)
        // A replayed event explains the new state and is relayed to all without being published again.
        let replayed = RoomEvent(message: message, effect: .change(.songChanged("s1")))
        #expect(RoomFixtureRunner.ruleViolations([.send(message, to: .all)], before: RoomSnapshot(), after: changed, replayed: replayed).isEmpty)
    }

    @Test("a room log entry reads back as the event it was written from, for every kind of effect")
    func roomEventJSONRoundTrips() throws {
        let events = [
            RoomEvent(message: ["type": "user_joined", "user_id": "u1"], effect: .none),
            RoomEvent(message: ["type": "song_queued"], effect: .change(.songQueued(QueuedSong(songID: "s1", voters: ["user:u1", "connection:n2:7"],
                                                                                             timeAdded: Timestamp(milliseconds: 5))))),
            RoomEvent(message: ["type": "song_vote"], effect: .change(.voted(songID: "s1", voter: "user:u2"))),
            RoomEvent(message: ["type": "song_changed"], effect: .change(.songChanged(nil))),
            RoomEvent(message: ["type": "song_changed"], effect: .change(.songChanged("s1"))),
            RoomEvent(message: ["type": "playback_changed"], effect: .change(.playback(Playback(percentage: 12.5, paused: true, songProgress: 3,
                                                                                             songLength: nil, at: Timestamp(milliseconds: 9))))),
            RoomEvent(message: ["type": "chat_message"], effect: .chat(RoomChatEntry(userID: "u1", name: "Uma", message: "hi ☕",
                                                                                     sentAt: Timestamp(milliseconds: 11)))),
            RoomEvent(message: ["type": "room_closed"], effect: .closed),
        ]
        for event in events {
            #expect(RoomEvent(json: try JSONParser.parse(event.json.jsonText)) == event)
        }
        #expect(RoomEvent(json: ["change": ["voted": ["song_id": "s1"]], "message": ["type": "song_vote"]]) == nil)
        #expect(RoomEvent(json: ["message": "not an object"]) == nil)
    }

    @Test("the default queue holds 500 songs: the 501st is queue_full, a vote for a queued song still counts, and a song that leaves makes room")
    func queueLimitDefault() throws {
        let songs = (0..<500).map { QueuedSong(songID: "s\($0)", voters: [], timeAdded: Timestamp(milliseconds: Int64($0))) }
        var room = ListeningRoom(roomID: "r1", hostUserID: nil, restored: RoomSnapshot(queue: songs))
        #expect(room.queueLimit == 500)
        room.handle(.join(ConnectionID(1), Self.member("u1", verified: true, 1)), now: Timestamp(milliseconds: 1_000))
        _ = Self.drain(&room)
        room.handle(.command(ConnectionID(1), try Self.command(["type": "song_queued", "song_id": "new"])), now: Timestamp(milliseconds: 2_000))
        let refused: JSONValue = ["type": "error", "code": "queue_full", "message": "The queue holds at most 500 songs.",
                                  "details": ["song_id": "new", "limit": 500]]
        #expect(Self.drain(&room) == [.send(refused, to: .one(ConnectionID(1)))])
        #expect(room.state.queue.count == 500)
        room.handle(.command(ConnectionID(1), try Self.command(["type": "song_vote", "song_id": "s7"])), now: Timestamp(milliseconds: 2_100))
        #expect(Self.effect(Self.drain(&room).first) == .change(.voted(songID: "s7", voter: "user:u1")))
        room.handle(.command(ConnectionID(1), try Self.command(["type": "song_changed", "song_id": "s7"])), now: Timestamp(milliseconds: 2_200))
        _ = Self.drain(&room)
        room.handle(.command(ConnectionID(1), try Self.command(["type": "song_queued", "song_id": "new"])), now: Timestamp(milliseconds: 2_300))
        #expect(Self.effect(Self.drain(&room).first) == .change(.songQueued(QueuedSong(songID: "new", voters: ["user:u1"],
                                                                                    timeAdded: Timestamp(milliseconds: 2_300)))))
        #expect(room.state.queue.count == 500)
    }
}
