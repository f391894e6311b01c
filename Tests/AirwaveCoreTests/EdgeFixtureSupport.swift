import AirwaveCore
import AirwaveProtocol
import Foundation
import Testing

/// Loads the edge scenarios of `Fixtures/edge/` (format: `Fixtures/edge/README.md`).
enum EdgeFixtureLibrary {
    static let folder = FixtureFolder("edge")
    static var directory: URL? { folder.directory }
    static let names = folder.names
    static func load(_ name: String) throws -> JSONValue { try folder.load(name) }
}

/// The JSON form of `EdgeEvent` outputs in the fixtures. What goes up the link is written in its
/// wire form (`EdgeLinkMessage.Up.frame`), so the fixtures pin the link's format too.
enum EdgeOutputJSON {
    static func json(_ output: EdgeEvent.Output) -> JSONValue {
        switch output {
        case .send(let message, let route): OutputJSON.json(route, adding: ["send": message.json])
        case .forward(let frame, let route): OutputJSON.json(route, adding: ["forward": OutputJSON.json(frame)])
        case .mixPacket(let frame, let minus): ["mix_packet": OutputJSON.json(frame), "minus": minus.map { .int(Int($0)) } ?? .null]
        case .mixSubscriber(let connection, let minus): ["mix_subscriber": OutputJSON.id(connection), "minus": minus.map { .int(Int($0)) } ?? .null]
        case .mixUnsubscriber(let connection): ["mix_unsubscriber": OutputJSON.id(connection)]
        case .sessionsDropSource(let source): ["sessions_drop_source": .int(Int(source))]
        case .admit(let connection): ["admit": OutputJSON.id(connection)]
        case .close(let connection, let code): ["close": OutputJSON.id(connection), "code": .int(code.rawValue)]
        case .uplink(let message):
            switch message.frame {
            case .text(let text): ["uplink": (try? JSONParser.parse(text)) ?? .string(text)]
            case .binary(let frame): ["uplink_media": OutputJSON.json(frame)]
            }
        case .openLink: "open_link"
        case .closeLink: "close_link"
        case .mediaDropped(let reason): ["media_dropped": .string(reason.rawValue)]
        case .recordOrphanedEnd: "record_orphaned_end"
        case .finished: "finished"
        }
    }

    /// What an `ignore` entry may name: `forward`, `mix_packet`, `media_dropped`, and the type of any message.
    static let ignorable: Set<String> = Set(["forward", "mix_packet", "media_dropped"]).union(LiveEvent.MessageType.allCases.map(\.rawValue))

    static func isIgnored(_ output: EdgeEvent.Output, by ignore: Set<String>) -> Bool {
        switch output {
        case .send(let message, _): ignore.contains(message.type.rawValue)
        case .forward: ignore.contains("forward")
        case .mixPacket: ignore.contains("mix_packet")
        case .mediaDropped: ignore.contains("media_dropped")
        case .admit, .close, .uplink, .openLink, .closeLink, .recordOrphanedEnd, .finished, .mixSubscriber, .mixUnsubscriber,
             .sessionsDropSource: false
        }
    }
}

/// Replays one edge fixture, recording an issue for every step whose outputs, wake-up or client
/// count differ.
struct EdgeFixtureRunner {
    let name: String
    let fixture: JSONValue
    private(set) var edge: EdgeEvent
    let ignore: Set<String>
    let createdExpected: [JSONValue]

    static let stepInputs: [String: Set<String>] = [
        "join": ["user"], "player": ["user", "video", "speakers"], "segmenter": [], "disconnected": [], "mix": [], "from": ["message", "raw"], "media": ["frame"], "origin": [], "origin_media": [],
        "link_down": [], "no_origin": [], "tick": [], "shutdown": [],
    ]
    static let stepKeys: Set<String> = ["at", "expect", "wake_up", "clients"]

    init(name: String, fixture: JSONValue) throws {
        self.name = name
        self.fixture = fixture
        try FixtureKeys.check(fixture, allowed: ["description", "edge", "configuration", "ignore", "steps"], name)
        guard fixture["description"]?.stringValue?.isEmpty == false else { throw FixtureError("\(name): no description") }
        try FixtureKeys.check(fixture["edge"], allowed: ["event_id", "at", "expect"], "\(name): edge")
        guard let eventID = fixture["edge"]?["event_id"]?.stringValue, let at = fixture["edge"]?["at"]?.intValue else {
            throw FixtureError("\(name): edge needs event_id and at")
        }
        ignore = Set(try (fixture["ignore"]?.arrayValue ?? []).map { entry in
            guard let text = entry.stringValue, EdgeOutputJSON.ignorable.contains(text) else {
                throw FixtureError("\(name): ignore entry \(entry.jsonText) names no output kind or message type")
            }
            return text
        })
        createdExpected = fixture["edge"]?["expect"]?.arrayValue ?? []
        edge = EdgeEvent(eventID: eventID, now: Timestamp(milliseconds: Int64(at)), configuration: try Self.configuration(fixture["configuration"], name: name))
    }

    static func configuration(_ spec: JSONValue?, name: String) throws -> EdgeConfiguration {
        var configuration = EdgeConfiguration()
        guard let members = spec?.objectValue else { return configuration }
        for (key, value) in members {
            if key == "relink_delays_ms" {
                guard let delays = value.arrayValue?.compactMap(\.intValue), delays.count == value.arrayValue?.count else {
                    throw FixtureError("\(name): configuration.relink_delays_ms must be a list of integers")
                }
                configuration.relinkDelays = delays.map { .milliseconds($0) }
                continue
            }
            guard let n = value.intValue else { throw FixtureError("\(name): configuration.\(key) must be an integer") }
            switch key {
            case "command_buffer_limit": configuration.commandBufferLimit = n
            case "per_client_command_limit": configuration.perClientCommandLimit = n
            case "chat_history_limit": configuration.chatHistoryLimit = n
            case "screen_cache_limit": configuration.screenCacheLimit = n
            case "keyframe_request_interval_ms": configuration.keyframeRequestInterval = .milliseconds(n)
            case "idle_linger_ms": configuration.idleLinger = .milliseconds(n)
            case "orphan_timeout_ms": configuration.orphanTimeout = .milliseconds(n)
            default: throw FixtureError("\(name): unknown configuration key \(key)")
            }
        }
        return configuration
    }

    /// Every output since the last call, minus the ignored ones. A message whose typed `type`
    /// differs from its JSON's, or an uplink that does not read back as itself, is an issue.
    mutating func drain(sourceLocation: SourceLocation) -> [JSONValue] {
        var outputs: [JSONValue] = []
        while let output = edge.pollOutput() {
            if case .send(let message, _) = output,
                message.json["type"]?.stringValue != message.type.rawValue || message.json["code"]?.stringValue != message.errorCode?.rawValue {
                Issue.record("\(name): message typed \(message.type.rawValue) is \(message.json.jsonText)", sourceLocation: sourceLocation)
            }
            if case .uplink(let message) = output, (try? EdgeLinkMessage.Up(message.frame)) != message {
                Issue.record("\(name): uplink \(message) does not read back from its frame", sourceLocation: sourceLocation)
            }
            if !EdgeOutputJSON.isIgnored(output, by: ignore) { outputs.append(EdgeOutputJSON.json(output)) }
        }
        return outputs
    }

    /// Runs every step; throws on a malformed fixture, records an issue per mismatch.
    mutating func run(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let created = drain(sourceLocation: sourceLocation)
        if created != createdExpected {
            Issue.record(Comment(rawValue: FixtureRunner.mismatch(name, "creation", createdExpected, created)), sourceLocation: sourceLocation)
        }
        guard let steps = fixture["steps"]?.arrayValue, !steps.isEmpty else { throw FixtureError("\(name): no steps") }
        for (index, step) in steps.enumerated() {
            let (input, at, expected) = try FixtureKeys.step(
                step, inputs: Self.stepInputs, stepKeys: Self.stepKeys,
                nested: ["user": ["user_id", "username", "verified"], "frame": MediaFixtures.frameKeys, "origin_media": MediaFixtures.frameKeys],
                "\(name): step \(index)")
            let now = Timestamp(milliseconds: Int64(at))
            func connection() throws -> ConnectionID {
                guard let c = step[input]?.intValue, c >= 0 else { throw FixtureError("\(name): step \(index) \(input) needs a connection number") }
                return ConnectionID(UInt64(c))
            }
            var decodeError: JSONValue?
            let label: String
            switch input {
            case "join":
                let c = try connection()
                guard let user = step["user"], let userID = user["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) join needs user.user_id")
                }
                label = "join \(c.rawValue) as \(userID)"
                edge.handle(.join(c, UserIdentity(userID: userID, username: user["username"]?.stringValue ?? userID,
                                                  verified: user["verified"]?.boolValue ?? false)), now: now)
            case "player":
                let c = try connection()
                guard let user = step["user"], let userID = user["user_id"]?.stringValue else {
                    throw FixtureError("\(name): step \(index) player needs user.user_id")
                }
                let video = step["video"]?.boolValue ?? false, speakers = step["speakers"]?.boolValue ?? false
                label = "player \(c.rawValue) as \(userID)"
                edge.handle(.mediaListenerJoined(c, UserIdentity(userID: userID, username: user["username"]?.stringValue ?? userID,
                                                                 verified: user["verified"]?.boolValue ?? false),
                                                 video: video, speakers: speakers), now: now)
            case "segmenter":
                let c = try connection()
                label = "segmenter \(c.rawValue)"
                edge.handle(.segmenterSubscription(c), now: now)
            case "disconnected":
                let c = try connection()
                label = "disconnected \(c.rawValue)"
                edge.handle(.disconnected(c), now: now)
            case "mix":
                let c = try connection()
                label = "mix \(c.rawValue)"
                edge.handle(.mixSubscription(c), now: now)
            case "from":
                let c = try connection()
                let text = try FixtureStep.clientText(step, fixture: name, index: index)
                label = "from \(c.rawValue): \(text.prefix(120))"
                do {
                    edge.handle(.command(c, try LiveCommand.decode(Array(text.utf8))), now: now)
                } catch {
                    decodeError = ["send": error.json, "to": [.int(Int(c.rawValue))]]
                }
            case "media":
                let c = try connection()
                let frame = try MediaFixtures.frame(step["frame"], name: name, step: index)
                label = "media from \(c.rawValue): kind \(frame.header.kind.rawValue) seq \(frame.header.sequence)"
                edge.handle(.media(c, frame), now: now)
            case "origin":
                // The origin's message in its wire form, read as the transport reads it.
                guard let message = step["origin"] else { throw FixtureError("\(name): step \(index) origin needs a message") }
                label = "origin: \(message.jsonText.prefix(120))"
                do {
                    edge.handle(.fromOrigin(try EdgeLinkMessage.Down(.text(message.jsonText))), now: now)
                } catch {
                    throw FixtureError("\(name): step \(index) origin: \(error)")
                }
            case "origin_media":
                let frame = try MediaFixtures.frame(step["origin_media"], name: name, step: index)
                label = "origin media: kind \(frame.header.kind.rawValue) source \(frame.header.sourceID) seq \(frame.header.sequence)"
                edge.handle(.fromOrigin(try EdgeLinkMessage.Down(.binary(frame))), now: now)
            case "link_down", "no_origin", "tick", "shutdown":
                guard step[input]?.boolValue == true else { throw FixtureError("\(name): step \(index) \(input) must be true") }
                label = input
                let inputs: [String: EdgeEvent.Input] = ["link_down": .linkDown, "no_origin": .noOrigin, "tick": .tick, "shutdown": .shutdown]
                edge.handle(inputs[input]!, now: now)
            default:
                throw FixtureError("\(name): step \(index) has no input")
            }
            var actual = decodeError.map { [$0] } ?? []
            actual += drain(sourceLocation: sourceLocation)
            let place = "step \(index) (at \(at), \(label))"
            if actual != expected {
                Issue.record(Comment(rawValue: FixtureRunner.mismatch(name, place, expected, actual)), sourceLocation: sourceLocation)
            }
            let wakeUp: JSONValue = edge.nextWakeUp.map { .int($0.milliseconds) } ?? .null
            if let expectedWakeUp = step["wake_up"], expectedWakeUp != wakeUp {
                Issue.record(Comment(rawValue: "\(name) \(place): wake_up expected \(expectedWakeUp.jsonText), actual \(wakeUp.jsonText)"),
                             sourceLocation: sourceLocation)
            }
            if let clients = step["clients"], clients.intValue != edge.clientCount {
                Issue.record(Comment(rawValue: "\(name) \(place): clients expected \(clients.jsonText), actual \(edge.clientCount)"),
                             sourceLocation: sourceLocation)
            }
        }
    }
}
