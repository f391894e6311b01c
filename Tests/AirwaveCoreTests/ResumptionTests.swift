import AirwaveCore
import AirwaveProtocol
import Testing

/// An event resumed on another node after its origin died (PROTOCOL.md 8) looks as it did:
/// co-hosts speak with the source ids they had (PROTOCOL.md 2: a source id stays with its user
/// for the whole event) and a screen share keeps its codec fields.
@Suite struct ResumptionTests {
    static let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    static let screen = ScreenConfig(codec: "vp8", width: 1280, height: 720, description: "AAECAw==")

    /// Runs an engine with a fake clock, collecting what each input outputs.
    struct Driver {
        var event: LiveEvent

        mutating func outputs(_ input: LiveEvent.Input, at ms: Int64) -> [LiveEvent.Output] {
            event.handle(input, now: Timestamp(milliseconds: ms))
            var all: [LiveEvent.Output] = []
            while let output = event.pollOutput() { all.append(output) }
            return all
        }

        /// The JSON of every message of this type among the outputs.
        static func messages(_ type: LiveEvent.MessageType, in outputs: [LiveEvent.Output]) -> [JSONValue] {
            outputs.compactMap { output in
                guard case .send(let message, _) = output, message.type == type else { return nil }
                return message.json
            }
        }

        static func records(in outputs: [LiveEvent.Output]) -> [EventRecord] {
            outputs.compactMap { output in
                guard case .persist(let record) = output else { return nil }
                return record
            }
        }

        /// Invites the user on `connection` and has it accept; the source id `cohost_joined` gives.
        mutating func promote(_ userID: String, on connection: UInt64, at ms: Int64) -> Int? {
            _ = outputs(.command(ConnectionID(1), .inviteCohost(userID: userID)), at: ms)
            let accepted = outputs(.command(ConnectionID(connection), .acceptCohost), at: ms + 1)
            return Self.messages(.cohostJoined, in: accepted).first?["source_id"]?.intValue
        }
    }

    static func verified(_ userID: String) -> UserIdentity { UserIdentity(userID: userID, username: userID.uppercased(), verified: true) }

    /// Co-hosts come back with the ids they had, in whatever order; a former co-host promoted
    /// again gets its own id back, and a new co-host an id above every stored one.
    @Test func cohostsKeepTheirSourceIDs() {
        let resumption = LiveEvent.Resumption(
            startedAt: Timestamp(milliseconds: 0), mode: .audio, chat: [],
            // In join order; u3 was promoted first (2), u2 second (3); u7 (4) and u4 (5) stepped down before the death.
            cohosts: [.init(user: Self.verified("u2"), sourceID: 3), .init(user: Self.verified("u3"), sourceID: 2)],
            sourceIDs: ["u2": 3, "u3": 2, "u7": 4, "u4": 5])
        var driver = Driver(event: LiveEvent(resuming: "ev1", host: Self.host, resumption, now: Timestamp(milliseconds: 10_000)))
        _ = driver.outputs(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), at: 10_000)

        let u3 = driver.outputs(.join(ConnectionID(3), Self.verified("u3")), at: 10_100)
        #expect(Driver.messages(.cohostJoined, in: u3).map { $0["source_id"]?.intValue } == [2])
        #expect(Driver.records(in: u3) == [.participantJoined(eventID: "ev1", connection: ConnectionID(3), user: Self.verified("u3"),
                                                              role: .cohost, sourceID: 2, at: Timestamp(milliseconds: 10_100))])
        let u2 = driver.outputs(.join(ConnectionID(2), Self.verified("u2")), at: 10_200)
        #expect(Driver.messages(.cohostJoined, in: u2).map { $0["source_id"]?.intValue } == [3])

        // A guest may not take the id of a user who spoke with a token, even while it is away.
        let guest = driver.outputs(.join(ConnectionID(6), UserIdentity(userID: "u4", username: "Mallory", verified: false)), at: 10_250)
        #expect(guest.contains(.close(ConnectionID(6), .duplicateUser)))
        // u4 comes back as a listener, with its id on the record; promoted again, it speaks with it.
        let u4 = driver.outputs(.join(ConnectionID(4), Self.verified("u4")), at: 10_300)
        #expect(Driver.messages(.cohostJoined, in: u4).isEmpty)
        #expect(Driver.records(in: u4) == [.participantJoined(eventID: "ev1", connection: ConnectionID(4), user: Self.verified("u4"),
                                                              role: .listener, sourceID: 5, at: Timestamp(milliseconds: 10_300))])
        #expect(driver.promote("u4", on: 4, at: 10_400) == 5)
        // A first-time co-host gets a new id, above every stored one.
        _ = driver.outputs(.join(ConnectionID(5), Self.verified("u5")), at: 10_500)
        #expect(driver.promote("u5", on: 5, at: 10_600) == 6)
    }

    /// What the original engine records is what it takes to resume it: the role change records
    /// the co-host's id (also when it steps down), the mode change the screen's fields.
    @Test func recordsCarrySourceIDsAndScreenFields() {
        var driver = Driver(event: LiveEvent(eventID: "ev1", host: Self.host, now: Timestamp(milliseconds: 0)))
        _ = driver.outputs(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), at: 0)
        _ = driver.outputs(.join(ConnectionID(2), Self.verified("u2")), at: 10)
        _ = driver.outputs(.join(ConnectionID(3), Self.verified("u3")), at: 20)
        _ = driver.outputs(.command(ConnectionID(1), .inviteCohost(userID: "u3")), at: 30)
        #expect(Driver.records(in: driver.outputs(.command(ConnectionID(3), .acceptCohost), at: 40))
            == [.roleChanged(eventID: "ev1", connection: ConnectionID(3), role: .cohost, sourceID: 2, at: Timestamp(milliseconds: 40))])
        #expect(driver.promote("u2", on: 2, at: 50) == 3)
        #expect(Driver.records(in: driver.outputs(.command(ConnectionID(3), .leaveCohost), at: 60))
            == [.roleChanged(eventID: "ev1", connection: ConnectionID(3), role: .listener, sourceID: 2, at: Timestamp(milliseconds: 60))])
        #expect(Driver.records(in: driver.outputs(.command(ConnectionID(1), .switchToScreen(Self.screen)), at: 70))
            == [.modeChanged(eventID: "ev1", mode: .screen, screen: Self.screen, at: Timestamp(milliseconds: 70))])
        #expect(Driver.records(in: driver.outputs(.command(ConnectionID(1), .switchToAudio), at: 80))
            == [.modeChanged(eventID: "ev1", mode: .audio, screen: nil, at: Timestamp(milliseconds: 80))])
    }

    /// A screen share resumes with its codec fields: the host's `stream_link` says screen, its
    /// `stream_state` and every joiner's carry the same `screen` as before the origin died.
    @Test func aScreenShareResumesWithItsCodecFields() {
        let resumption = LiveEvent.Resumption(startedAt: Timestamp(milliseconds: 0), mode: .screen, screen: Self.screen, chat: [], cohosts: [])
        var driver = Driver(event: LiveEvent(resuming: "ev1", host: Self.host, resumption, now: Timestamp(milliseconds: 10_000)))
        let resumed = driver.outputs(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), at: 10_000)
        let link = Driver.messages(.streamLink, in: resumed)
        #expect(link.map { $0["mode"] } == [.string("screen")] && link.map { $0["resumed"] } == [.bool(true)])
        let expected = JSONValue.object(Self.screen.jsonFields)
        #expect(Driver.messages(.streamState, in: resumed).map { $0["screen"] } == [expected])
        let joined = driver.outputs(.join(ConnectionID(2), Self.verified("u2")), at: 10_100)
        #expect(Driver.messages(.streamState, in: joined).map { $0["screen"] } == [expected])
        #expect(driver.event.screen == Self.screen)
    }

    /// A share stored without fields resumes with an empty config (as a switch without fields
    /// leaves it); audio has none whatever was stored.
    @Test func screenConfigFollowsTheMode() {
        func resumed(_ mode: StreamMode, _ screen: ScreenConfig?) -> ScreenConfig? {
            let resumption = LiveEvent.Resumption(startedAt: Timestamp(milliseconds: 0), mode: mode, screen: screen, chat: [], cohosts: [])
            return LiveEvent(resuming: "ev1", host: Self.host, resumption, now: Timestamp(milliseconds: 10)).screen
        }
        #expect(resumed(.screen, nil) == ScreenConfig())
        #expect(resumed(.audio, Self.screen) == nil)
        #expect(resumed(.audio, nil) == nil)
    }
}
