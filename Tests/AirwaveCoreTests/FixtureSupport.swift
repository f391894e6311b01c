import AirwaveCore
import AirwaveProtocol
import Foundation
import Testing

/// Loads the scenario fixtures of `Fixtures/live/` (format: `Fixtures/README.md`) and replays
/// them against `LiveEvent`.
enum FixtureLibrary {
    static let folder = FixtureFolder("live")
    static var directory: URL? { folder.directory }
    static let names = folder.names
    static func load(_ name: String) throws -> JSONValue { try folder.load(name) }
}

/// One folder of JSON scenarios under `Fixtures/`: its `*.json` files, sorted, and each parsed.
struct FixtureFolder: Sendable {
    /// `Fixtures` of the package that holds this test file: found by walking up from
    /// `#filePath` to the first folder with a `Package.swift`.
    static let root: URL? = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                return folder.appendingPathComponent("Fixtures")
            }
            folder.deleteLastPathComponent()
        }
        return nil
    }()

    let name: String
    let directory: URL?

    init(_ name: String) {
        self.name = name
        directory = Self.root?.appendingPathComponent(name)
    }

    /// Every `*.json` file of the folder, sorted.
    var names: [String] {
        guard let directory, let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        return files.filter { $0.hasSuffix(".json") }.sorted()
    }

    func load(_ file: String) throws -> JSONValue {
        guard let directory else { throw FixtureError("Fixtures/\(name) not found above \(#filePath)") }
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        do {
            return try JSONParser.parse(Array(data))
        } catch {
            throw FixtureError("\(file) is not valid JSON: \(error)")
        }
    }
}

/// What both fixture runners read from a step the same way.
enum FixtureStep {
    /// The client's frame of a `from` step: `message` as JSON text, or `raw` as it is.
    static func clientText(_ step: JSONValue, fixture: String, index: Int) throws -> String {
        if let message = step["message"] { return message.jsonText }
        if let raw = step["raw"]?.stringValue { return raw }
        throw FixtureError("\(fixture): step \(index) needs message or raw")
    }
}

/// Fixtures fail loudly on a key nobody reads: a typo must not turn a step into a no-op.
enum FixtureKeys {
    /// Throws unless `value` is an object whose keys are all in `allowed`.
    static func check(_ value: JSONValue?, allowed: Set<String>, _ where_: @autoclosure () -> String) throws {
        guard let value else { return }
        guard let members = value.objectValue else { throw FixtureError("\(where_()) must be an object") }
        let unknown = Set(members.keys).subtracting(allowed).sorted()
        if !unknown.isEmpty {
            throw FixtureError("\(where_()): unknown key\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// The parts of a step every runner reads: its one input (of `inputs`, whose values are the
    /// keys that input may bring along), `at` and `expect`; every key of the step, and of the
    /// objects named in `nested`, checked against what is allowed.
    static func step(_ step: JSONValue, inputs: [String: Set<String>], stepKeys: Set<String>, nested: [String: Set<String>],
                     _ where_: String) throws -> (input: String, at: Int, expected: [JSONValue]) {
        let input = try Self.input(of: step, among: Set(inputs.keys), where_)
        try check(step, allowed: stepKeys.union([input]).union(inputs[input] ?? []), where_)
        for (key, allowed) in nested.sorted(by: { $0.key < $1.key }) {
            try check(step[key], allowed: allowed, "\(where_) \(key)")
        }
        guard let at = step["at"]?.intValue else { throw FixtureError("\(where_) has no at") }
        guard let expected = step["expect"]?.arrayValue else { throw FixtureError("\(where_) has no expect list") }
        return (input, at, expected)
    }

    /// The one input key of a step: throws when it has none or several.
    static func input(of step: JSONValue, among inputs: Set<String>, _ where_: @autoclosure () -> String) throws -> String {
        let present = Set(step.objectValue?.keys.map { $0 } ?? []).intersection(inputs).sorted()
        guard present.count == 1 else {
            throw FixtureError("\(where_()) needs exactly one input (one of \(inputs.sorted().joined(separator: ", "))), has \(present.isEmpty ? "none" : present.joined(separator: ", "))")
        }
        return present[0]
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
}

/// The JSON form of engine outputs and records used by the fixtures.
enum OutputJSON {
    static func json(_ output: LiveEvent.Output) -> JSONValue {
        switch output {
        case .send(let message, let route): json(route, adding: ["send": message.json])
        case .close(let connection, let code): ["close": id(connection), "code": .int(code.rawValue)]
        case .persist(let record): ["persist": json(record)]
        case .awaitPersistence: "await_persistence"
        case .ended: "ended"
        case .handedOver: "handed_over"
        case .forward(let frame, let route): json(route, adding: ["forward": json(frame)])
        case .encodePCM(let frame, let speaker): ["encode_pcm": json(frame), "speaker": id(speaker)]
        case .mediaDropped(let reason): ["media_dropped": .string(reason.rawValue)]
        case .mixSubscriber(let connection, let minus): ["mix_subscriber": id(connection), "minus": minus.map { .int($0) } ?? .null]
        case .mixUnsubscriber(let connection): ["mix_unsubscriber": id(connection)]
        case .mixDropSource(let source): ["mix_drop_source": .int(source)]
        case .sessionsDropSource(let source): ["sessions_drop_source": .int(source)]
        case .recordingStart(let name): ["recording_start": .string(name)]
        case .recordingStop: "recording_stop"
        }
    }

    /// A route as fixtures write it, the whole value: `to` (WebSocket connections) always;
    /// `sessions`, `links`, `queue`, `mix`, `measure_level` unless they have their default
    /// (none, none, control, false, false).
    static func json(_ route: LiveEvent.Route, adding fields: [String: JSONValue]) -> JSONValue {
        var fields = fields
        fields["to"] = json(route.sockets)
        if !route.sessions.isNone { fields["sessions"] = json(route.sessions) }
        if !route.links.isNone { fields["links"] = json(route.links) }
        if route.queue != .control { fields["queue"] = .string(route.queue.rawValue) }
        if route.mix { fields["mix"] = true }
        if route.measureLevel { fields["measure_level"] = true }
        return .object(fields)
    }

    static func json(_ audience: LiveEvent.Audience) -> JSONValue {
        switch audience {
        case .none: []
        case .one(let connection): [id(connection)]
        case .only(let connections): .array(connections.map(id))
        case .all: "all"
        case .allExcept(let connection, let skipping):
            skipping.isEmpty ? ["all_except": id(connection)] : ["all_except": id(connection), "skipping": .array(skipping.sorted().map(id))]
        }
    }

    /// A media frame as fixtures write it: the header fields, the payload's size and first bytes.
    static func json(_ frame: MediaFrame) -> JSONValue {
        let prefix = frame.payload.getBytes(at: frame.payload.readerIndex, length: min(8, frame.payload.readableBytes)) ?? []
        return [
            "kind": .int(frame.header.kind.rawValue), "flags": .int(frame.header.flags.rawValue),
            "source_id": .int(frame.header.sourceID), "sequence": .int(frame.header.sequence),
            "timestamp": .int(frame.header.timestamp), "payload_size": .int(frame.payload.readableBytes),
            "payload_prefix": .string(prefix.map { String(format: "%02x", $0) }.joined()),
        ]
    }

    static func json(_ user: UserIdentity) -> JSONValue {
        ["user_id": .string(user.userID), "username": .string(user.username), "verified": .bool(user.verified)]
    }

    /// `record` with the optional fields that are set (a record without them is written as before they existed).
    static func adding(_ optional: [String: JSONValue?], to record: [String: JSONValue]) -> JSONValue {
        .object(record.merging(optional.compactMapValues { $0 }) { first, _ in first })
    }

    static func json(_ record: EventRecord) -> JSONValue {
        switch record {
        case .eventStarted(let eventID, let host, let mode, let at):
            ["record": "event_started", "event_id": .string(eventID), "host": json(host), "mode": .string(mode.rawValue), "at": ms(at)]
        case .eventEnded(let eventID, let reason, let at):
            ["record": "event_ended", "event_id": .string(eventID), "reason": .string(reason), "at": ms(at)]
        case .modeChanged(let eventID, let mode, let screen, let at):
            adding(["screen": screen.map { .object($0.jsonFields) }],
                   to: ["record": "mode_changed", "event_id": .string(eventID), "mode": .string(mode.rawValue), "at": ms(at)])
        case .participantJoined(let eventID, let connection, let user, let role, let sourceID, let at):
            adding(["source_id": sourceID.map { .int($0) }],
                   to: ["record": "participant_joined", "event_id": .string(eventID), "connection": id(connection), "user": json(user),
                        "role": .string(role.rawValue), "at": ms(at)])
        case .participantLeft(let eventID, let connection, let at):
            ["record": "participant_left", "event_id": .string(eventID), "connection": id(connection), "at": ms(at)]
        case .roleChanged(let eventID, let connection, let role, let sourceID, let at):
            adding(["source_id": sourceID.map { .int($0) }],
                   to: ["record": "role_changed", "event_id": .string(eventID), "connection": id(connection), "role": .string(role.rawValue),
                        "at": ms(at)])
        case .chat(let eventID, let entry):
            ["record": "chat", "event_id": .string(eventID), "user_id": .string(entry.userID), "username": .string(entry.username),
             "message": .string(entry.message), "sent_at": ms(entry.sentAt), "verified": .bool(entry.verified)]
        }
    }

    static func id(_ connection: ConnectionID) -> JSONValue { .int(connection.rawValue) }
    static func ms(_ time: Timestamp) -> JSONValue { .int(time.milliseconds) }

    /// What an `ignore` entry may name: output kinds, and the type of any message the engine sends.
    static let ignorable: Set<String> = Set(["persist", "await_persistence", "forward", "encode_pcm", "media_dropped", "mix_subscriber",
                                             "mix_drop_source", "sessions_drop_source"]).union(LiveEvent.MessageType.allCases.map(\.rawValue))

    /// Whether the fixture's `ignore` list drops this output.
    static func isIgnored(_ output: LiveEvent.Output, by ignore: Set<String>) -> Bool {
        switch output {
        case .persist: ignore.contains("persist")
        case .awaitPersistence: ignore.contains("await_persistence")
        case .send(let message, _): ignore.contains(message.type.rawValue)
        case .close, .ended, .handedOver: false
        case .forward: ignore.contains("forward")
        case .encodePCM: ignore.contains("encode_pcm")
        case .mediaDropped: ignore.contains("media_dropped")
        case .mixSubscriber, .mixUnsubscriber: ignore.contains("mix_subscriber")
        case .mixDropSource: ignore.contains("mix_drop_source")
        case .sessionsDropSource: ignore.contains("sessions_drop_source")
        case .recordingStart, .recordingStop: false
        }
    }
}

/// Replays one fixture, recording an issue for every step whose outputs or wake-up differ.
struct FixtureRunner {
    let name: String
    let fixture: JSONValue
    private(set) var event: LiveEvent
    let ignore: Set<String>
    /// Every step's actual outputs and wake-up, for diagnostics.
    private(set) var transcript: [(outputs: [JSONValue], wakeUp: JSONValue)] = []
    /// The outputs of the event's creation, for diagnostics.
    private(set) var createdOutputs: [JSONValue] = []

    init(name: String, fixture: JSONValue) throws {
        self.name = name
        self.fixture = fixture
        try FixtureKeys.check(fixture, allowed: ["description", "event", "configuration", "ignore", "steps"], name)
        guard fixture["description"]?.stringValue?.isEmpty == false else { throw FixtureError("\(name): no description") }
        try FixtureKeys.check(fixture["event"], allowed: ["event_id", "host", "at", "expect"], "\(name): event")
        try FixtureKeys.check(fixture["event"]?["host"], allowed: ["user_id", "username"], "\(name): event.host")
        guard let eventSpec = fixture["event"], let eventID = eventSpec["event_id"]?.stringValue,
            let hostSpec = eventSpec["host"], let hostID = hostSpec["user_id"]?.stringValue,
            let at = eventSpec["at"]?.intValue
        else { throw FixtureError("\(name): event needs event_id, host.user_id and at") }
        let host = UserIdentity(userID: hostID, username: hostSpec["username"]?.stringValue ?? hostID, verified: true)
        let ignoreEntries = try (fixture["ignore"]?.arrayValue ?? []).map { entry in
            guard let text = entry.stringValue, OutputJSON.ignorable.contains(text) else {
                throw FixtureError("\(name): ignore entry \(entry.jsonText) names no output kind or message type")
            }
            return text
        }
        ignore = Set(ignoreEntries)
        event = LiveEvent(eventID: eventID, host: host, now: Timestamp(milliseconds: Int64(at)),
                          configuration: try Self.configuration(fixture["configuration"], name: name))
    }

    /// Every input a step may have (exactly one), with the keys that may come with it.
    static let stepInputs: [String: Set<String>] = [
        "host_connected": ["join_url"], "join": ["user"], "media_listener": ["user", "video", "speakers"], "publisher": ["user"],
        "from": ["message", "raw"], "disconnected": [], "media": ["frame"], "encoded_audio": ["frame"],
        "mix_subscribe": [], "mix_unsubscribe": [], "levels": [], "tick": [], "shutdown": [], "hand_over": [],
    ]
    static let stepKeys: Set<String> = ["at", "expect", "wake_up"]

    static func configuration(_ spec: JSONValue?, name: String) throws -> LiveEventConfiguration {
        var configuration = LiveEventConfiguration()
        guard let members = spec?.objectValue else { return configuration }
        for (key, value) in members {
            guard let n = value.intValue else { throw FixtureError("\(name): configuration.\(key) must be an integer") }
            switch key {
            case "host_grace_ms": configuration.hostGrace = .milliseconds(n)
            case "invite_lifetime_ms": configuration.inviteLifetime = .milliseconds(n)
            case "notice_interval_ms": configuration.noticeInterval = .milliseconds(n)
            case "individual_notice_limit": configuration.individualNoticeLimit = n
            case "list_listener_limit": configuration.listListenerLimit = n
            case "chat_history_limit": configuration.chatHistoryLimit = n
            case "keyframe_request_interval_ms": configuration.keyframeRequestInterval = .milliseconds(n)
            case "screen_cache_limit": configuration.screenCacheLimit = n
            default: throw FixtureError("\(name): unknown configuration key \(key)")
            }
        }
        return configuration
    }

    /// Every output of the engine since the last call, minus the ignored ones. A message whose
    /// typed `type` differs from its JSON's is recorded as an issue (counters read the typed one).
    mutating func drain(sourceLocation: SourceLocation = #_sourceLocation) -> [JSONValue] {
        var outputs: [JSONValue] = []
        while let output = event.pollOutput() {
            if case .send(let message, _) = output,
                message.json["type"]?.stringValue != message.type.rawValue
                    || message.json["code"]?.stringValue != message.errorCode?.rawValue {
                Issue.record("\(name): message typed \(message.type.rawValue)/\(message.errorCode?.rawValue ?? "-") is \(message.json.jsonText)",
                             sourceLocation: sourceLocation)
            }
            if !OutputJSON.isIgnored(output, by: ignore) { outputs.append(OutputJSON.json(output)) }
        }
        return outputs
    }

    /// Runs every step; returns the number of mismatches. Throws on a malformed fixture.
    @discardableResult
    mutating func run(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var failures = 0
        let created = drain(sourceLocation: sourceLocation)
        createdOutputs = created
        let expectedAtStart = fixture["event"]?["expect"]?.arrayValue ?? []
        if created != expectedAtStart {
            failures += 1
            Issue.record(Comment(rawValue: Self.mismatch(name, "event creation", expectedAtStart, created)), sourceLocation: sourceLocation)
        }
        guard let steps = fixture["steps"]?.arrayValue, !steps.isEmpty else { throw FixtureError("\(name): no steps") }
        for (index, step) in steps.enumerated() {
            let (input, at, expected) = try FixtureKeys.step(
                step, inputs: Self.stepInputs, stepKeys: Self.stepKeys,
                nested: ["user": ["user_id", "username", "verified"], "frame": MediaFixtures.frameKeys], "\(name): step \(index)")
            let now = Timestamp(milliseconds: Int64(at))
            var decodeError: JSONValue?
            let label: String
            func connection() throws -> ConnectionID {
                guard let c = step[input]?.intValue, c >= 0 else { throw FixtureError("\(name): step \(index) \(input) needs a connection number") }
                return ConnectionID(UInt64(c))
            }
            func identity() throws -> UserIdentity {
                guard let user = step["user"], let userID = user["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) \(input) needs user.user_id")
                }
                return UserIdentity(userID: userID, username: user["username"]?.stringValue ?? userID, verified: user["verified"]?.boolValue ?? false)
            }
            switch input {
            case "host_connected":
                let c = try connection()
                label = "host_connected \(c.rawValue)"
                let url = step["join_url"]?.stringValue ?? "ws://example/ws/stream/live/join/event/\(event.eventID)/"
                event.handle(.hostConnected(c, joinURL: url), now: now)
            case "join":
                let (c, user) = (try connection(), try identity())
                label = "join \(c.rawValue) as \(user.userID)"
                event.handle(.join(c, user), now: now)
            case "media_listener":
                let (c, user) = (try connection(), try identity())
                label = "media listener \(c.rawValue) as \(user.userID)"
                event.handle(.mediaListenerJoined(c, user, video: step["video"]?.boolValue ?? false,
                                                  speakers: step["speakers"]?.boolValue ?? false), now: now)
            case "publisher":
                let (c, user) = (try connection(), try identity())
                label = "publisher \(c.rawValue) for \(user.userID)"
                event.handle(.publisherConnected(c, user), now: now)
            case "from":
                let c = try connection()
                let text = try FixtureStep.clientText(step, fixture: name, index: index)
                label = "from \(c.rawValue): \(text.prefix(120))"
                do {
                    // Exactly what the transport does with a text frame.
                    let command = try LiveCommand.decode(Array(text.utf8))
                    event.handle(.command(c, command), now: now)
                } catch {
                    decodeError = ["send": error.json, "to": [.int(Int(c.rawValue))]]
                }
            case "disconnected":
                let c = try connection()
                label = "disconnected \(c.rawValue)"
                event.handle(.disconnected(c), now: now)
            case "media":
                let c = try connection()
                let frame = try MediaFixtures.frame(step["frame"], name: name, step: index)
                label = "media from \(c.rawValue): kind \(frame.header.kind.rawValue) seq \(frame.header.sequence)"
                event.handle(.media(c, frame), now: now)
            case "encoded_audio":
                let c = try connection()
                let frame = try MediaFixtures.frame(step["frame"], name: name, step: index)
                label = "encoded audio of \(c.rawValue) seq \(frame.header.sequence)"
                event.handle(.encodedAudio(speaker: c, frame), now: now)
            case "mix_subscribe", "mix_unsubscribe":
                let c = try connection()
                label = "\(input) \(c.rawValue)"
                event.handle(.mixSubscription(c, subscribed: input == "mix_subscribe"), now: now)
            case "levels":
                guard let levels = step["levels"]?.objectValue else { throw FixtureError("\(name): step \(index) levels must be an object") }
                label = "levels"
                var measured: [UInt32: UInt8] = [:]
                for (source, level) in levels {
                    guard let id = UInt32(source), let value = level.intValue else { throw FixtureError("\(name): step \(index) bad levels") }
                    measured[id] = UInt8(clamping: value)
                }
                event.handle(.measuredLevels(measured), now: now)
            case "tick", "shutdown":
                guard step[input]?.boolValue == true else { throw FixtureError("\(name): step \(index) \(input) must be true") }
                label = input
                event.handle(input == "tick" ? .tick : .shutdown, now: now)
            case "hand_over":
                guard let keeping = step["hand_over"]?.arrayValue?.map({ $0.intValue }), !keeping.contains(nil) else {
                    throw FixtureError("\(name): step \(index) hand_over must be a list of the connections that stay")
                }
                label = "hand over"
                event.handle(.handOver(keeping: Set(keeping.map { ConnectionID(UInt64($0!)) })), now: now)
            default:
                throw FixtureError("\(name): step \(index) has no input")
            }
            var actual = decodeError.map { [$0] } ?? []
            actual += drain(sourceLocation: sourceLocation)
            let wakeUp: JSONValue = event.nextWakeUp.map { .int($0.milliseconds) } ?? .null
            transcript.append((actual, wakeUp))
            if actual != expected {
                failures += 1
                Issue.record(Comment(rawValue: Self.mismatch(name, "step \(index) (at \(at), \(label))", expected, actual)),
                             sourceLocation: sourceLocation)
            }
            if let expectedWakeUp = step["wake_up"], expectedWakeUp != wakeUp {
                failures += 1
                Issue.record(Comment(rawValue: "\(name) step \(index) (at \(at), \(label)): wake_up expected \(expectedWakeUp.jsonText), actual \(wakeUp.jsonText)"),
                             sourceLocation: sourceLocation)
            }
        }
        return failures
    }

    static func mismatch(_ name: String, _ where_: String, _ expected: [JSONValue], _ actual: [JSONValue]) -> String {
        func list(_ outputs: [JSONValue]) -> String {
            outputs.isEmpty ? "  (nothing)" : outputs.map { "  " + $0.jsonText }.joined(separator: "\n")
        }
        return "\(name) \(where_): outputs differ\nexpected:\n\(list(expected))\nactual:\n\(list(actual))"
    }
}
