import AirwaveCore
import AirwaveProtocol
import Foundation
import Testing

/// Loads the listening-room scenario fixtures of `Fixtures/rooms/` (format: `Fixtures/README.md`,
/// "Listening-room scenarios") and replays them against `ListeningRoom`.
enum RoomFixtureLibrary {
    static let folder = FixtureFolder("rooms")
    static var directory: URL? { folder.directory }
    static let names = folder.names
    static func load(_ name: String) throws -> JSONValue { try folder.load(name) }
}

/// The JSON form of `ListeningRoom` outputs and snapshots used by the room fixtures.
enum RoomOutputJSON {
    static func json(_ output: ListeningRoom.Output) -> JSONValue {
        switch output {
        case .send(let message, let recipients): ["send": message, "to": json(recipients)]
        case .close(let connection, let code): ["close": OutputJSON.id(connection), "code": .int(code.rawValue)]
        // The room log's own form of the event (RoomEvent.json), so the fixtures pin it too.
        case .publish(let event): ["publish": event.json]
        }
    }

    static func json(_ recipients: ListeningRoom.Recipients) -> JSONValue {
        switch recipients {
        case .one(let connection): [OutputJSON.id(connection)]
        case .all: "all"
        }
    }

    static func json(_ song: QueuedSong) -> JSONValue {
        ["song_id": .string(song.songID), "voters": .array(song.voters.map(JSONValue.string)), "time_added": .int(song.timeAdded.milliseconds)]
    }

    /// `{"queue": [{"song_id", "voters", "time_added"}], "current_song", "playback", "chat": count}`;
    /// times as integer milliseconds. Chat entries are checked through `persist_chat` and
    /// `room_state`, so a snapshot shows only how many it holds.
    static func json(_ snapshot: RoomSnapshot) -> JSONValue {
        [
            "queue": .array(snapshot.queue.map(json)),
            "current_song": .string(snapshot.currentSong),
            "playback": snapshot.playback.map(json) ?? .null,
            "chat": .int(snapshot.chat.count),
        ]
    }

    static func json(_ playback: Playback) -> JSONValue {
        [
            "percentage": playback.percentage.map(JSONValue.number) ?? .null, "paused": .bool(playback.paused),
            "song_progress": playback.songProgress.map { .int($0) } ?? .null,
            "song_length": playback.songLength.map { .int($0) } ?? .null, "at": .int(playback.at.milliseconds),
        ]
    }

    static func json(_ entry: RoomChatEntry) -> JSONValue {
        ["user_id": .string(entry.userID), "name": .string(entry.name), "message": .string(entry.message), "sent_at": .int(entry.sentAt.milliseconds)]
    }

    /// The output as the fixture's `expect` shows it, or nil when its `ignore` list drops it: a
    /// `.send` of an ignored message type is dropped; a `.publish` of one is shown without its
    /// message, and dropped if it has no effect either.
    static func shown(_ output: ListeningRoom.Output, ignoring ignore: Set<String>) -> JSONValue? {
        func ignored(_ message: JSONValue) -> Bool { message["type"]?.stringValue.map(ignore.contains) ?? false }
        switch output {
        case .send(let message, _) where ignored(message): return nil
        case .publish(let event) where ignored(event.message):
            guard case .object(var fields) = event.json else { return nil }
            fields["message"] = nil
            return fields.isEmpty ? nil : ["publish": .object(fields)]
        default: return json(output)
        }
    }

    /// A restored snapshot from its fixture form (`room.restored`): like `json(_ snapshot:)`, but
    /// `chat` is a list of `{"user_id", "name", "message", "sent_at"}` entries.
    static func snapshot(_ spec: JSONValue, name: String) throws -> RoomSnapshot {
        func fail(_ what: String) -> FixtureError { FixtureError("\(name): room.restored: \(what)") }
        var snapshot = RoomSnapshot()
        for song in spec["queue"]?.arrayValue ?? [] {
            guard let songID = song["song_id"]?.stringValue, let added = song["time_added"]?.intValue else {
                throw fail("a queued song needs song_id and time_added")
            }
            let voters = try (song["voters"]?.arrayValue ?? []).map { voter in
                guard let key = voter.stringValue else { throw fail("voters are strings") }
                return key
            }
            snapshot.queue.append(QueuedSong(songID: songID, voters: voters, timeAdded: Timestamp(milliseconds: Int64(added))))
        }
        snapshot.currentSong = spec["current_song"]?.stringValue
        if let playback = spec["playback"], playback != .null {
            guard let at = playback["at"]?.intValue else { throw fail("playback needs at") }
            snapshot.playback = Playback(percentage: playback["percentage"]?.numberValue, paused: playback["paused"]?.boolValue ?? false,
                                         songProgress: playback["song_progress"]?.intValue.map(Int64.init),
                                         songLength: playback["song_length"]?.intValue.map(Int64.init),
                                         at: Timestamp(milliseconds: Int64(at)))
        }
        for entry in spec["chat"]?.arrayValue ?? [] {
            guard let userID = entry["user_id"]?.stringValue, let message = entry["message"]?.stringValue,
                let sentAt = entry["sent_at"]?.intValue
            else { throw fail("a chat entry needs user_id, message and sent_at") }
            snapshot.chat.append(RoomChatEntry(userID: userID, name: entry["name"]?.stringValue ?? userID, message: message,
                                               sentAt: Timestamp(milliseconds: Int64(sentAt))))
        }
        return snapshot
    }
}

/// Replays one room fixture, recording an issue for every step whose outputs differ, and
/// checking on every step (ignored outputs included) that the room's rules on persistence hold.
struct RoomFixtureRunner {
    let name: String
    let fixture: JSONValue
    private(set) var room: ListeningRoom
    let ignore: Set<String>

    init(name: String, fixture: JSONValue) throws {
        self.name = name
        self.fixture = fixture
        try FixtureKeys.check(fixture, allowed: ["description", "room", "ignore", "steps"], name)
        guard fixture["description"]?.stringValue?.isEmpty == false else { throw FixtureError("\(name): no description") }
        try FixtureKeys.check(fixture["room"], allowed: ["room_id", "host_user_id", "restored", "chat_history_limit", "queue_limit"], "\(name): room")
        try FixtureKeys.check(fixture["room"]?["restored"], allowed: ["queue", "current_song", "playback", "chat"], "\(name): room.restored")
        guard let roomSpec = fixture["room"], let roomID = roomSpec["room_id"]?.stringValue else {
            throw FixtureError("\(name): room needs room_id")
        }
        let host: String?
        switch roomSpec["host_user_id"] {
        case nil, .null?: host = nil
        case .string(let id)?: host = id
        default: throw FixtureError("\(name): room.host_user_id is a string or null")
        }
        let restored = try roomSpec["restored"].map { try RoomOutputJSON.snapshot($0, name: name) } ?? RoomSnapshot()
        ignore = Set((fixture["ignore"]?.arrayValue ?? []).compactMap(\.stringValue))
        room = ListeningRoom(roomID: roomID, hostUserID: host, restored: restored,
                             chatHistoryLimit: roomSpec["chat_history_limit"]?.intValue ?? 100,
                             queueLimit: roomSpec["queue_limit"]?.intValue ?? ListeningRoom.defaultQueueLimit)
    }

    /// Every input a step may have (exactly one), with the keys that may come with it.
    static let stepInputs: [String: Set<String>] = ["join": ["member"], "leave": [], "from": ["message", "raw"], "replay": [], "restore": []]
    static let stepKeys: Set<String> = ["at", "expect", "member_count", "queue_order"]

    /// Every output of the step, none ignored.
    mutating func drain() -> [ListeningRoom.Output] {
        var outputs: [ListeningRoom.Output] = []
        while let output = room.pollOutput() { outputs.append(output) }
        return outputs
    }

    /// Runs every step; returns the number of mismatches.
    @discardableResult
    mutating func run(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var failures = 0
        guard let steps = fixture["steps"]?.arrayValue, !steps.isEmpty else { throw FixtureError("\(name): no steps") }
        for (index, step) in steps.enumerated() {
            let (_, at, expected) = try FixtureKeys.step(
                step, inputs: Self.stepInputs, stepKeys: Self.stepKeys, nested: ["member": ["user_id", "name", "verified"]],
                "\(name): step \(index)")
            let now = Timestamp(milliseconds: Int64(at))
            let before = room.state
            var decodeError: JSONValue?
            var replayed: RoomEvent?
            var restored: RoomSnapshot?
            let label: String
            if let c = step["join"]?.intValue {
                guard let member = step["member"], let userID = member["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) join needs member.user_id")
                }
                label = "join \(c) as \(userID)"
                let roomMember = RoomMember(userID: userID, name: member["name"]?.stringValue ?? userID,
                                            verified: member["verified"]?.boolValue ?? false, connection: ConnectionID(UInt64(c)),
                                            instance: Self.instance)
                room.handle(.join(ConnectionID(UInt64(c)), roomMember), now: now)
            } else if let c = step["leave"]?.intValue {
                label = "leave \(c)"
                room.handle(.leave(ConnectionID(UInt64(c))), now: now)
            } else if let c = step["from"]?.intValue {
                let text = try FixtureStep.clientText(step, fixture: name, index: index)
                label = "from \(c): \(text.prefix(120))"
                do {
                    // Exactly what the transport does with a text frame.
                    let command = try RoomCommand.decode(Array(text.utf8))
                    room.handle(.command(ConnectionID(UInt64(c)), command), now: now)
                } catch {
                    decodeError = ["send": error.json, "to": [.int(c)]]
                }
            } else if let entry = step["replay"] {
                guard let event = RoomEvent(json: entry) else { throw FixtureError("\(name): step \(index) replay is not a room log entry") }
                label = "replay \(entry.jsonText.prefix(120))"
                replayed = event
                room.handle(.replay(event), now: now)
            } else if let spec = step["restore"] {
                try FixtureKeys.check(spec, allowed: ["queue", "current_song", "playback", "chat"], "\(name): step \(index) restore")
                label = "restore"
                restored = try RoomOutputJSON.snapshot(spec, name: name)
                room.handle(.restore(restored!), now: now)
            } else {
                throw FixtureError("\(name): step \(index) has no input")
            }
            let where_ = "step \(index) (at \(at), \(label))"
            let outputs = drain()
            for problem in Self.ruleViolations(outputs, before: restored == nil ? before : room.state, after: room.state,
                                               replayed: replayed, chatHistoryLimit: room.chatHistoryLimit) {
                failures += 1
                Issue.record(Comment(rawValue: "\(name) \(where_): \(problem)"), sourceLocation: sourceLocation)
            }
            var actual = decodeError.map { [$0] } ?? []
            actual += outputs.compactMap { RoomOutputJSON.shown($0, ignoring: ignore) }
            if actual != expected {
                failures += 1
                Issue.record(Comment(rawValue: FixtureRunner.mismatch(name, where_, expected, actual)), sourceLocation: sourceLocation)
            }
            if let order = step["queue_order"]?.arrayValue?.compactMap(\.stringValue), order != room.state.queue.map(\.songID) {
                failures += 1
                Issue.record(Comment(rawValue: "\(name) \(where_): queue_order expected \(order), actual \(room.state.queue.map(\.songID))"),
                             sourceLocation: sourceLocation)
            }
            if let count = step["member_count"]?.intValue, count != room.memberCount {
                failures += 1
                Issue.record(Comment(rawValue: "\(name) \(where_): member_count expected \(count), actual \(room.memberCount)"),
                             sourceLocation: sourceLocation)
            }
        }
        return failures
    }

    /// The instance the fixtures' members belong to: a guest on connection 3 votes as
    /// `connection:n1:3` (another node's guests, in replayed events, have other instances).
    static let instance = "n1"

    /// PROTOCOL.md 3 / docs/protocol.md "What is relayed": members, here or on another node, see
    /// a change only once it is stored. Checked on every step, whatever the fixture ignores:
    /// - a command's step sends nothing to all members directly: what they all see is published
    ///   (stored in the room's log first); only a replayed or restored step relays to all;
    /// - a changed state is explained by the step's events: the replayed event, then each
    ///   published one, applied to the state before it as a node that replays them would
    ///   (`closed` empties it) give the new state, chat included;
    /// - a close in a command's step follows the publication of `room_closed`.
    static func ruleViolations(_ outputs: [ListeningRoom.Output], before: RoomSnapshot, after: RoomSnapshot,
                               replayed: RoomEvent? = nil, chatHistoryLimit: Int = 100) -> [String] {
        var problems: [String] = []
        var rebuilt = ListeningRoom(roomID: "rules", hostUserID: nil, restored: before, chatHistoryLimit: chatHistoryLimit)
        if let replayed { rebuilt.handle(.replay(replayed), now: Timestamp(milliseconds: 0)) }
        var closedPublished = false
        for output in outputs {
            switch output {
            case .publish(let event):
                rebuilt.handle(.replay(event), now: Timestamp(milliseconds: 0))
                if event.effect == .closed { closedPublished = true }
            case .send(let message, .all):
                if replayed == nil && !isRestore(outputs) {
                    problems.append("sent \(message.jsonText) to all members without publishing it")
                }
            case .send: break
            case .close(let connection, _):
                if replayed == nil && !closedPublished { problems.append("closed \(connection) before room_closed was published") }
            }
        }
        if rebuilt.state != after { problems.append("the published events do not give the new state") }
        return problems
    }

    /// A restore's only output is `room_state` to every member.
    private static func isRestore(_ outputs: [ListeningRoom.Output]) -> Bool {
        outputs.allSatisfy { if case .send(let message, .all) = $0 { message["type"] == "room_state" } else { false } }
    }
}
