import AirwaveCore
import AirwaveProtocol
import Foundation
import Testing

/// Loads the scenario fixtures of `Fixtures/live/` (format: `Fixtures/README.md`) and replays
/// them against `LiveEvent`.
enum FixtureLibrary {
    /// `Fixtures/live` of the package that holds this test file: found by walking up from
    /// `#filePath` to the first folder with a `Package.swift`.
    static let directory: URL? = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                return folder.appendingPathComponent("Fixtures/live")
            }
            folder.deleteLastPathComponent()
        }
        return nil
    }()

    /// Every `*.json` file of the folder, sorted.
    static let names: [String] = {
        guard let directory, let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        return files.filter { $0.hasSuffix(".json") }.sorted()
    }()

    static func load(_ name: String) throws -> JSONValue {
        guard let directory else { throw FixtureError("Fixtures/live not found above \(#filePath)") }
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        do {
            return try JSONParser.parse(Array(data))
        } catch {
            throw FixtureError("\(name) is not valid JSON: \(error)")
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
        case .send(let message, let recipients): ["send": message, "to": json(recipients)]
        case .close(let connection, let code): ["close": id(connection), "code": .int(code.rawValue)]
        case .persist(let record): ["persist": json(record)]
        case .awaitPersistence: "await_persistence"
        case .ended: "ended"
        case .forward(let frame, let recipients): ["forward": json(frame), "to": json(recipients)]
        case .encodePCM(let frame, let speaker): ["encode_pcm": json(frame), "speaker": id(speaker)]
        case .mediaDropped(let reason): ["media_dropped": .string(reason.rawValue)]
        case .mix(let frame): ["mix": json(frame)]
        case .mixSubscriber(let connection, let minus): ["mix_subscriber": id(connection), "minus": minus.map { .int($0) } ?? .null]
        case .mixUnsubscriber(let connection): ["mix_unsubscriber": id(connection)]
        case .mixDropSource(let source): ["mix_drop_source": .int(source)]
        case .recordingStart(let name): ["recording_start": .string(name)]
        case .recordingStop: "recording_stop"
        }
    }

    static func json(_ recipients: LiveEvent.Recipients) -> JSONValue {
        switch recipients {
        case .one(let connection): [id(connection)]
        case .all: "all"
        case .allExcept(let connection): ["all_except": id(connection)]
        }
    }

    static func json(_ recipients: LiveEvent.MediaRecipients) -> JSONValue {
        switch recipients {
        case .one(let connection): [id(connection)]
        case .allExcept(let connection, let skipping):
            ["all_except": id(connection), "skipping": .array(skipping.sorted().map(id))]
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

    static func json(_ record: EventRecord) -> JSONValue {
        switch record {
        case .eventStarted(let eventID, let host, let mode, let at):
            ["record": "event_started", "event_id": .string(eventID), "host": json(host), "mode": .string(mode.rawValue), "at": ms(at)]
        case .eventEnded(let eventID, let reason, let at):
            ["record": "event_ended", "event_id": .string(eventID), "reason": .string(reason), "at": ms(at)]
        case .modeChanged(let eventID, let mode, let at):
            ["record": "mode_changed", "event_id": .string(eventID), "mode": .string(mode.rawValue), "at": ms(at)]
        case .participantJoined(let eventID, let connection, let user, let role, let at):
            ["record": "participant_joined", "event_id": .string(eventID), "connection": id(connection), "user": json(user),
             "role": .string(role.rawValue), "at": ms(at)]
        case .participantLeft(let eventID, let connection, let at):
            ["record": "participant_left", "event_id": .string(eventID), "connection": id(connection), "at": ms(at)]
        case .roleChanged(let eventID, let connection, let role, let at):
            ["record": "role_changed", "event_id": .string(eventID), "connection": id(connection), "role": .string(role.rawValue), "at": ms(at)]
        case .chat(let eventID, let entry):
            ["record": "chat", "event_id": .string(eventID), "user_id": .string(entry.userID), "username": .string(entry.username),
             "message": .string(entry.message), "sent_at": ms(entry.sentAt), "verified": .bool(entry.verified)]
        }
    }

    static func id(_ connection: ConnectionID) -> JSONValue { .int(connection.rawValue) }
    static func ms(_ time: Timestamp) -> JSONValue { .int(time.milliseconds) }

    /// Whether the fixture's `ignore` list drops this output.
    static func isIgnored(_ output: LiveEvent.Output, by ignore: Set<String>) -> Bool {
        switch output {
        case .persist: ignore.contains("persist")
        case .awaitPersistence: ignore.contains("await_persistence")
        case .send(let message, _): message["type"]?.stringValue.map(ignore.contains) ?? false
        case .close, .ended: false
        case .forward: ignore.contains("forward")
        case .encodePCM: ignore.contains("encode_pcm")
        case .mediaDropped: ignore.contains("media_dropped")
        case .mix: ignore.contains("mix")
        case .mixSubscriber, .mixUnsubscriber: ignore.contains("mix_subscriber")
        case .mixDropSource: ignore.contains("mix_drop_source")
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
        guard fixture["description"]?.stringValue?.isEmpty == false else { throw FixtureError("\(name): no description") }
        guard let eventSpec = fixture["event"], let eventID = eventSpec["event_id"]?.stringValue,
            let hostSpec = eventSpec["host"], let hostID = hostSpec["user_id"]?.stringValue,
            let at = eventSpec["at"]?.intValue
        else { throw FixtureError("\(name): event needs event_id, host.user_id and at") }
        let host = UserIdentity(userID: hostID, username: hostSpec["username"]?.stringValue ?? hostID, verified: true)
        ignore = Set((fixture["ignore"]?.arrayValue ?? []).compactMap(\.stringValue))
        event = LiveEvent(eventID: eventID, host: host, now: Timestamp(milliseconds: Int64(at)),
                          configuration: try Self.configuration(fixture["configuration"], name: name))
    }

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

    mutating func drain() -> [JSONValue] {
        var outputs: [JSONValue] = []
        while let output = event.pollOutput() {
            if !OutputJSON.isIgnored(output, by: ignore) { outputs.append(OutputJSON.json(output)) }
        }
        return outputs
    }

    /// Runs every step; returns the number of mismatches.
    @discardableResult
    mutating func run(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var failures = 0
        let created = drain()
        createdOutputs = created
        let expectedAtStart = fixture["event"]?["expect"]?.arrayValue ?? []
        if created != expectedAtStart {
            failures += 1
            Issue.record(Comment(rawValue: Self.mismatch(name, "event creation", expectedAtStart, created)), sourceLocation: sourceLocation)
        }
        guard let steps = fixture["steps"]?.arrayValue, !steps.isEmpty else { throw FixtureError("\(name): no steps") }
        for (index, step) in steps.enumerated() {
            guard let at = step["at"]?.intValue else { throw FixtureError("\(name): step \(index) has no at") }
            guard let expected = step["expect"]?.arrayValue else { throw FixtureError("\(name): step \(index) has no expect list") }
            let now = Timestamp(milliseconds: Int64(at))
            var decodeError: JSONValue?
            let label: String
            if let c = step["host_connected"]?.intValue {
                label = "host_connected \(c)"
                let url = step["join_url"]?.stringValue ?? "ws://example/ws/stream/live/join/event/\(event.eventID)/"
                event.handle(.hostConnected(ConnectionID(UInt64(c)), joinURL: url), now: now)
            } else if let c = step["join"]?.intValue {
                guard let user = step["user"], let userID = user["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) join needs user.user_id")
                }
                label = "join \(c) as \(userID)"
                let identity = UserIdentity(userID: userID, username: user["username"]?.stringValue ?? userID,
                                            verified: user["verified"]?.boolValue ?? false)
                event.handle(.join(ConnectionID(UInt64(c)), identity), now: now)
            } else if let c = step["media_listener"]?.intValue ?? step["publisher"]?.intValue {
                guard let user = step["user"], let userID = user["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) media_listener/publisher needs user.user_id")
                }
                let identity = UserIdentity(userID: userID, username: user["username"]?.stringValue ?? userID,
                                            verified: user["verified"]?.boolValue ?? false)
                if step["publisher"] != nil {
                    label = "publisher \(c) for \(userID)"
                    event.handle(.publisherConnected(ConnectionID(UInt64(c)), identity), now: now)
                } else {
                    label = "media listener \(c) as \(userID)"
                    event.handle(.mediaListenerJoined(ConnectionID(UInt64(c)), identity), now: now)
                }
            } else if let c = step["from"]?.intValue {
                let text = try FixtureStep.clientText(step, fixture: name, index: index)
                label = "from \(c): \(text.prefix(120))"
                do {
                    // Exactly what the transport does with a text frame.
                    let command = try LiveCommand.decode(Array(text.utf8))
                    event.handle(.command(ConnectionID(UInt64(c)), command), now: now)
                } catch {
                    decodeError = ["send": error.json, "to": [.int(c)]]
                }
            } else if let c = step["disconnected"]?.intValue {
                label = "disconnected \(c)"
                event.handle(.disconnected(ConnectionID(UInt64(c))), now: now)
            } else if let c = step["media"]?.intValue {
                let frame = try MediaFixtures.frame(step["frame"], name: name, step: index)
                label = "media from \(c): kind \(frame.header.kind.rawValue) seq \(frame.header.sequence)"
                event.handle(.media(ConnectionID(UInt64(c)), frame), now: now)
            } else if let c = step["encoded_audio"]?.intValue {
                let frame = try MediaFixtures.frame(step["frame"], name: name, step: index)
                label = "encoded audio of \(c) seq \(frame.header.sequence)"
                event.handle(.encodedAudio(speaker: ConnectionID(UInt64(c)), frame), now: now)
            } else if let c = step["mix_subscribe"]?.intValue {
                label = "mix_subscribe \(c)"
                event.handle(.mixSubscription(ConnectionID(UInt64(c)), subscribed: true), now: now)
            } else if let c = step["mix_unsubscribe"]?.intValue {
                label = "mix_unsubscribe \(c)"
                event.handle(.mixSubscription(ConnectionID(UInt64(c)), subscribed: false), now: now)
            } else if let levels = step["levels"]?.objectValue {
                label = "levels"
                var measured: [UInt32: UInt8] = [:]
                for (source, level) in levels {
                    guard let id = UInt32(source), let value = level.intValue else { throw FixtureError("\(name): step \(index) bad levels") }
                    measured[id] = UInt8(clamping: value)
                }
                event.handle(.measuredLevels(measured), now: now)
            } else if step["tick"]?.boolValue == true {
                label = "tick"
                event.handle(.tick, now: now)
            } else {
                throw FixtureError("\(name): step \(index) has no input")
            }
            var actual = decodeError.map { [$0] } ?? []
            actual += drain()
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
