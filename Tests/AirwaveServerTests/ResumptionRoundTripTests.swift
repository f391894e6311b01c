import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Testing

@testable import AirwaveServer

/// The whole way of a failover (PROTOCOL.md 8) but the cluster: what the origin's engine
/// records goes through the store, is read back as a `LiveEvent.Resumption` as
/// `interruptedEvent` reads it, and the resumed engine shows the same source ids and screen.
@Suite struct ResumptionRoundTripTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    static let screen = ScreenConfig(codec: "vp8", width: 1280, height: 720, description: "AAECAw==")

    static func verified(_ userID: String) -> UserIdentity { UserIdentity(userID: userID, username: userID.uppercased(), verified: true) }

    /// An engine on a fake clock whose records go to the store, as the server's writer does.
    struct Node {
        var event: LiveEvent
        var records: [StoreRecord] = []

        mutating func outputs(_ input: LiveEvent.Input, at ms: Int64) -> [LiveEvent.Output] {
            event.handle(input, now: Timestamp(milliseconds: ms))
            return drain()
        }

        mutating func drain() -> [LiveEvent.Output] {
            var all: [LiveEvent.Output] = []
            while let output = event.pollOutput() {
                if case .persist(let record) = output { records.append(StoreRecord(record)) }
                all.append(output)
            }
            return all
        }

        /// Invites and accepts; the source id of the `cohost_joined`.
        mutating func promote(_ userID: String, on connection: UInt64, at ms: Int64) -> Int? {
            _ = outputs(.command(ConnectionID(1), .inviteCohost(userID: userID)), at: ms)
            return Self.sourceIDs(in: outputs(.command(ConnectionID(connection), .acceptCohost), at: ms + 1)).first
        }

        static func sourceIDs(in outputs: [LiveEvent.Output]) -> [Int] {
            outputs.compactMap { output in
                guard case .send(let message, _) = output, message.type == .cohostJoined else { return nil }
                return message.json["source_id"]?.intValue
            }
        }

        static func screens(in outputs: [LiveEvent.Output]) -> [JSONValue?] {
            outputs.compactMap { output in
                guard case .send(let message, _) = output, message.type == .streamState else { return nil }
                return message.json["screen"]
            }
        }
    }

    /// Co-hosts promoted in another order than they joined, one who stepped down, a screen
    /// share with codec fields: after the origin dies (nothing more recorded) the event resumes
    /// from the store with the same ids and screen, and again after a second failover.
    @Test func aResumedEventKeepsSourceIDsAndScreenThroughTheStore() async throws {
        let store = try await SQLiteEventStore.openInMemory()
        try await store.migrate()

        var origin = Node(event: LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 1_000)))
        _ = origin.drain()
        _ = origin.outputs(.hostConnected(ConnectionID(1), joinURL: "ws://a/"), at: 1_000)
        for (index, user) in ["u2", "u3", "u4"].enumerated() {
            _ = origin.outputs(.join(ConnectionID(UInt64(index + 2)), Self.verified(user)), at: 1_100 + Int64(index))
        }
        #expect(origin.promote("u3", on: 3, at: 1_200) == 2)
        #expect(origin.promote("u2", on: 2, at: 1_300) == 3)
        #expect(origin.promote("u4", on: 4, at: 1_400) == 4)
        _ = origin.outputs(.command(ConnectionID(4), .leaveCohost), at: 1_500)
        _ = origin.outputs(.command(ConnectionID(1), .switchToScreen(Self.screen)), at: 1_600)
        let before = Node.screens(in: origin.outputs(.join(ConnectionID(9), Self.verified("u9")), at: 1_700))
        #expect(before == [.object(Self.screen.jsonFields)])
        try await store.write(origin.records)

        // The origin dies: its sessions stay open. Another node reads the event back.
        var resumption = LiveEvent.Resumption(try #require(try await store.event(id: "ev1")), chat: [])
        #expect(resumption.mode == .screen && resumption.screen == Self.screen)
        #expect(resumption.cohosts.map { [$0.user.userID: $0.sourceID] } == [["u2": 3], ["u3": 2]])
        #expect(resumption.sourceIDs == ["u2": 3, "u3": 2, "u4": 4])

        var resumed = Node(event: LiveEvent(resuming: "ev1", host: Self.host, resumption, now: Timestamp(milliseconds: 5_000)))
        #expect(Node.screens(in: resumed.outputs(.hostConnected(ConnectionID(1), joinURL: "ws://c/"), at: 5_000)) == before)
        #expect(Node.sourceIDs(in: resumed.outputs(.join(ConnectionID(12), Self.verified("u2")), at: 5_100)) == [3])
        #expect(Node.sourceIDs(in: resumed.outputs(.join(ConnectionID(13), Self.verified("u3")), at: 5_200)) == [2])
        // A first-time co-host gets an id no one had (not u4's, who is away); u4 gets its own back.
        _ = resumed.outputs(.join(ConnectionID(15), Self.verified("u5")), at: 5_300)
        #expect(resumed.promote("u5", on: 15, at: 5_400) == 5)
        _ = resumed.outputs(.join(ConnectionID(14), Self.verified("u4")), at: 5_500)
        #expect(resumed.promote("u4", on: 14, at: 5_600) == 4)
        #expect(Node.screens(in: resumed.outputs(.join(ConnectionID(16), Self.verified("u6")), at: 5_700)) == before)
        try await store.write(resumed.records)

        // A second failover keeps them all again.
        resumption = LiveEvent.Resumption(try #require(try await store.event(id: "ev1")), chat: [])
        #expect(Set(resumption.cohosts.map(\.sourceID)) == [2, 3, 4, 5])
        #expect(resumption.sourceIDs == ["u2": 3, "u3": 2, "u4": 4, "u5": 5])
        #expect(resumption.screen == Self.screen)
        try await store.shutdown()
    }

    /// A co-host whose rows carry no source id (stored before schema version 8) gets one above
    /// every stored id, never one a user already has.
    @Test func aCohostWithoutAStoredIDGetsANewOneAboveEveryStoredID() {
        let event = StoredEvent(
            eventID: "ev1", hostUserID: "h1", hostUsername: "Hana", mode: "screen", startedAt: 1_000,
            participants: [
                StoredParticipant(userID: "old", username: "Old", role: .cohost, verified: true, joinedAt: 1_100),
                StoredParticipant(userID: "gone", username: "Gone", role: .listener, verified: true, joinedAt: 1_200, leftAt: 1_300, sourceID: 5),
                StoredParticipant(userID: "new", username: "New", role: .cohost, verified: true, joinedAt: 1_400, sourceID: 3),
            ])
        let resumption = LiveEvent.Resumption(event, chat: [])
        #expect(resumption.cohosts.map(\.user.userID) == ["old", "new"])
        #expect(resumption.cohosts.map(\.sourceID) == [6, 3])
        #expect(resumption.sourceIDs == ["gone": 5, "new": 3])
        #expect(resumption.screen == nil && resumption.mode == .screen)
        #expect(LiveEvent(resuming: "ev1", host: Self.host, resumption, now: Timestamp(milliseconds: 2_000)).screen == ScreenConfig())
    }
}
