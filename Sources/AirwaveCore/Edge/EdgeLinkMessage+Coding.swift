import AirwaveProtocol

/// The wire form of the link (`EdgeLinkMessage`):
///
/// | up (edge → origin) | frame |
/// |---|---|
/// | `join` | `{"type":"join","client":n,"user":{"user_id","username","verified"}}` |
/// | `leave` | `{"type":"leave","client":n}` |
/// | `command` | `{"type":"command","client":n,"command":{…the client's message, as LiveCommand.decode reads it…}}` |
/// | `keyframeRequest` | `{"type":"keyframe_request"}` |
/// | `mixSubscription` | `{"type":"mix","client":n}` |
/// | `segmenterSubscription` | `{"type":"segmenter","client":n}` |
/// | `mediaListenerJoined` | `{"type":"media_listener_joined","client":n,"user":{…},"video":bool,"speakers":bool}` |
/// | `media` | binary: the client's media frame with its source id field set to the client's number |
///
/// | down (origin → edge) | frame |
/// |---|---|
/// | `snapshot` | `{"type":"snapshot","stream_state":{…},"chat_history":{…},"participant_list":{…},"participant_count":{…}}` |
/// | `welcome` | `{"type":"welcome","client":n}` |
/// | `message` | `{"type":"message","to":"all" \| n \| {"all_except":n},"message":{…}}` |
/// | `close` | `{"type":"close","client":n,"code":4000}` |
/// | `ended` | `{"type":"ended","code":1000}` |
/// | `mixSubscriber` | `{"type":"mix_subscriber","client":n,"minus":null \| s}` |
/// | `mixUnsubscriber` | `{"type":"mix_unsubscriber","client":n}` |
/// | `sessionsDropSource` | `{"type":"sessions_drop_source","source":s}` |
/// | `refused` | the refusal a listener would get: `{"type":"error","code":"event_ended",…}` |
/// | `media` | binary: the media frame as clients receive it (source id set), the same bytes for every link |
extension EdgeLinkMessage.Up {
    /// The frame that carries this message.
    public var frame: EdgeLinkMessage.Frame {
        switch self {
        case .join(let client, let user):
            .text(EdgeLinkCoding.text(["type": "join", "client": .int(client), "user": EdgeLinkCoding.json(user)]))
        case .leave(let client):
            .text(EdgeLinkCoding.text(["type": "leave", "client": .int(client)]))
        case .command(let client, let command):
            .text(EdgeLinkCoding.text(["type": "command", "client": .int(client), "command": command.linkJSON]))
        case .keyframeRequest:
            .text(EdgeLinkCoding.text(["type": "keyframe_request"]))
        case .mixSubscription(let client):
            .text(EdgeLinkCoding.text(["type": "mix", "client": .int(client)]))
        case .segmenterSubscription(let client):
            .text(EdgeLinkCoding.text(["type": "segmenter", "client": .int(client)]))
        case .mediaListenerJoined(let client, let user, let video, let speakers):
            .text(EdgeLinkCoding.text(["type": "media_listener_joined", "client": .int(client), "user": EdgeLinkCoding.json(user),
                                       "video": .bool(video), "speakers": .bool(speakers)]))
        case .media(let client, let frame):
            // Clients send source id 0 and the origin sets it: on the way up the field names the client.
            .binary(MediaFrame(header: MediaFrameHeader(kind: frame.header.kind, flags: frame.header.flags, sourceID: client,
                                                        sequence: frame.header.sequence, timestamp: frame.header.timestamp,
                                                        audioLevel: frame.header.audioLevel),
                               payload: frame.payload))
        }
    }

    /// Reads a frame the edge sent.
    public init(_ frame: EdgeLinkMessage.Frame) throws(EdgeLinkMessage.DecodingError) {
        switch frame {
        case .binary(var media):
            let client = media.header.sourceID
            media.header.sourceID = 0
            self = .media(client, media)
        case .text(let text):
            let (type, json) = try EdgeLinkCoding.object(text)
            switch type {
            case "join": self = .join(try EdgeLinkCoding.client(json), try EdgeLinkCoding.user(json["user"]))
            case "leave": self = .leave(try EdgeLinkCoding.client(json))
            case "command":
                guard let command = json["command"], case .object = command else { throw .init("command needs a command object") }
                let client = try EdgeLinkCoding.client(json)
                do throws(ProtocolError) {
                    self = .command(client, try LiveCommand.decode(Array(command.jsonText.utf8)))
                } catch {
                    throw .init("command: \(error.message)")
                }
            case "keyframe_request": self = .keyframeRequest
            case "mix": self = .mixSubscription(try EdgeLinkCoding.client(json))
            case "segmenter": self = .segmenterSubscription(try EdgeLinkCoding.client(json))
            case "media_listener_joined":
                guard case .bool(let video)? = json["video"], case .bool(let speakers)? = json["speakers"] else {
                    throw .init("media_listener_joined needs video and speakers")
                }
                self = .mediaListenerJoined(try EdgeLinkCoding.client(json), try EdgeLinkCoding.user(json["user"]), video: video, speakers: speakers)
            default: throw .init("unknown up type \(type.prefix(64))")
            }
        }
    }
}

extension EdgeLinkMessage.Down {
    /// The frame that carries this message.
    public var frame: EdgeLinkMessage.Frame {
        switch self {
        case .snapshot(let snapshot):
            .text(EdgeLinkCoding.text([
                "type": "snapshot", "stream_state": snapshot.streamState, "chat_history": snapshot.chatHistory,
                "participant_list": snapshot.participantList, "participant_count": snapshot.participantCount,
            ]))
        case .welcome(let client):
            .text(EdgeLinkCoding.text(["type": "welcome", "client": .int(client)]))
        case .message(let message, let audience):
            .text(EdgeLinkCoding.text(["type": "message", "to": EdgeLinkCoding.json(audience), "message": message.json]))
        case .close(let client, let code):
            .text(EdgeLinkCoding.text(["type": "close", "client": .int(client), "code": .int(code.rawValue)]))
        case .ended(let code):
            .text(EdgeLinkCoding.text(["type": "ended", "code": .int(code.rawValue)]))
        case .mixSubscriber(let client, let minus):
            .text(EdgeLinkCoding.text(["type": "mix_subscriber", "client": .int(client), "minus": minus.map { .int(Int($0)) } ?? .null]))
        case .mixUnsubscriber(let client):
            .text(EdgeLinkCoding.text(["type": "mix_unsubscriber", "client": .int(client)]))
        case .sessionsDropSource(let source):
            .text(EdgeLinkCoding.text(["type": "sessions_drop_source", "source": .int(Int(source))]))
        case .refused(let code):
            .text(EdgeLinkCoding.text(["type": "error", "code": .string(code.rawValue)]))
        case .media(let frame):
            .binary(frame)
        }
    }

    /// Reads a frame the origin sent.
    public init(_ frame: EdgeLinkMessage.Frame) throws(EdgeLinkMessage.DecodingError) {
        switch frame {
        case .binary(let media):
            self = .media(media)
        case .text(let text):
            let (type, json) = try EdgeLinkCoding.object(text)
            switch type {
            case "snapshot":
                func member(_ key: String) throws(EdgeLinkMessage.DecodingError) -> JSONValue {
                    guard let value = json[key], value["type"]?.stringValue == key else { throw .init("snapshot needs \(key) with its type") }
                    return value
                }
                self = .snapshot(.init(streamState: try member("stream_state"), chatHistory: try member("chat_history"),
                                       participantList: try member("participant_list"), participantCount: try member("participant_count")))
            case "welcome": self = .welcome(try EdgeLinkCoding.client(json))
            case "message":
                self = .message(try EdgeLinkCoding.message(json["message"]), to: try EdgeLinkCoding.audience(json["to"]))
            case "close": self = .close(try EdgeLinkCoding.client(json), try EdgeLinkCoding.code(json))
            case "ended": self = .ended(try EdgeLinkCoding.code(json))
            case "mix_subscriber":
                let minus: UInt32?
                switch json["minus"] {
                case .null?: minus = nil
                case let value?:
                    guard let source = value.intValue.flatMap(UInt32.init(exactly:)) else { throw .init("minus must be a source id or null") }
                    minus = source
                case nil: throw .init("mix_subscriber needs minus")
                }
                self = .mixSubscriber(try EdgeLinkCoding.client(json), minus: minus)
            case "mix_unsubscriber": self = .mixUnsubscriber(try EdgeLinkCoding.client(json))
            case "error":
                guard let code = json["code"]?.stringValue.flatMap(ErrorCode.init(rawValue:)) else { throw .init("error needs a known code") }
                self = .refused(code)
            case "sessions_drop_source":
                guard let source = json["source"]?.intValue.flatMap(UInt32.init(exactly:)) else { throw .init("source must be a source id") }
                self = .sessionsDropSource(source)
            default: throw .init("unknown down type \(type.prefix(64))")
            }
        }
    }
}

extension LiveCommand {
    /// The client message this command was read from, in the canonical form
    /// (`LiveCommand.decode(linkJSON)` gives the command back): how a command crosses the link.
    public var linkJSON: JSONValue {
        func typed(_ type: String, _ fields: [String: JSONValue] = [:]) -> JSONValue {
            var fields = fields
            fields["type"] = .string(type)
            return .object(fields)
        }
        switch self {
        case .switchToAudio: return typed("switching_to_audio", ["stream": "audio"])
        case .switchToScreen(let config): return typed("switching_to_screen_sharing", config.jsonFields.merging(["stream": "screen"]) { $1 })
        case .endStream: return typed("stream_ended")
        case .inviteCohost(let userID): return typed("invite_cohost", ["user_id": .string(userID)])
        case .removeCohost(let userID, let username):
            var fields: [String: JSONValue] = [:]
            if let userID { fields["participant_id"] = .string(userID) }
            if let username { fields["username"] = .string(username) }
            return typed("remove_cohost", fields)
        case .acceptCohost: return typed("accept_cohost")
        case .rejectCohost: return typed("cohost_reject")
        case .leaveCohost: return typed("cohost_leave")
        case .chat(let text): return typed("broadcast_message", ["message": .string(text)])
        case .leave: return typed("leave_room")
        case .mute(let userID): return typed("mute", userID.map { ["user_id": .string($0)] } ?? [:])
        case .unmute(let userID): return typed("unmute", userID.map { ["user_id": .string($0)] } ?? [:])
        case .keyframeRequest: return typed("keyframe_request")
        case .recordingStart: return typed("recording_start")
        case .recordingStop: return typed("recording_stop")
        }
    }
}

/// The field readers and writers both directions share.
enum EdgeLinkCoding {
    static func text(_ json: JSONValue) -> String { json.jsonText }

    static func object(_ text: String) throws(EdgeLinkMessage.DecodingError) -> (String, JSONValue) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw .init(error.description)
        }
        guard let type = json["type"]?.stringValue else { throw .init("a link message is an object with a string type") }
        return (type, json)
    }

    static func client(_ json: JSONValue) throws(EdgeLinkMessage.DecodingError) -> EdgeLinkMessage.EdgeClient {
        guard let n = json["client"]?.intValue, let client = EdgeLinkMessage.EdgeClient(exactly: n) else {
            throw .init("client must be an integer in 0…\(UInt32.max)")
        }
        return client
    }

    static func code(_ json: JSONValue) throws(EdgeLinkMessage.DecodingError) -> CloseCode {
        guard let n = json["code"]?.intValue, let code = UInt16(exactly: n) else { throw .init("code must be a close code") }
        return CloseCode(rawValue: code)
    }

    static func json(_ user: UserIdentity) -> JSONValue {
        ["user_id": .string(user.userID), "username": .string(user.username), "verified": .bool(user.verified)]
    }

    static func user(_ json: JSONValue?) throws(EdgeLinkMessage.DecodingError) -> UserIdentity {
        guard let userID = json?["user_id"]?.stringValue, let username = json?["username"]?.stringValue,
            case .bool(let verified) = json?["verified"]
        else { throw .init("user needs user_id, username and verified") }
        return UserIdentity(userID: userID, username: username, verified: verified)
    }

    static func json(_ audience: EdgeLinkMessage.Audience) -> JSONValue {
        switch audience {
        case .all: "all"
        case .one(let client): .int(client)
        case .allExcept(let client): ["all_except": .int(client)]
        }
    }

    static func audience(_ json: JSONValue?) throws(EdgeLinkMessage.DecodingError) -> EdgeLinkMessage.Audience {
        if json?.stringValue == "all" { return .all }
        if let n = json?.intValue, let client = EdgeLinkMessage.EdgeClient(exactly: n) { return .one(client) }
        if let n = json?["all_except"]?.intValue, let client = EdgeLinkMessage.EdgeClient(exactly: n) { return .allExcept(client) }
        throw .init("to must be \"all\", a client or {\"all_except\": client}")
    }

    /// A server message with its typed `type` (and error `code`) read back from the JSON.
    static func message(_ json: JSONValue?) throws(EdgeLinkMessage.DecodingError) -> LiveEvent.Message {
        guard let json, let typeName = json["type"]?.stringValue, let type = LiveEvent.MessageType(rawValue: typeName) else {
            throw .init("message needs a type the engine sends")
        }
        var errorCode: ErrorCode?
        if type == .error {
            guard let code = json["code"]?.stringValue.flatMap(ErrorCode.init(rawValue:)) else { throw .init("error message needs a known code") }
            errorCode = code
        }
        return LiveEvent.Message(type, json, errorCode: errorCode)
    }
}
