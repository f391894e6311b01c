import AirwaveCore
import AirwaveProtocol
import NIOCore
import Testing

/// The link's wire form: every message reads back as itself from the bytes a WebSocket would
/// carry, and malformed frames are typed errors, never a crash.
@Suite("Edge link messages")
struct EdgeLinkMessageTests {
    /// Through the bytes: text as UTF-8, binary as an encoded media frame parsed again.
    static func overTheWire(_ frame: EdgeLinkMessage.Frame) throws -> EdgeLinkMessage.Frame {
        switch frame {
        case .text(let text): return .text(String(decoding: Array(text.utf8), as: UTF8.self))
        case .binary(let media): return .binary(try MediaFrame(parsing: media.encoded()))
        }
    }

    static func frame(_ kind: MediaFrameHeader.Kind, flags: MediaFrameHeader.Flags = [], source: UInt32 = 0, _ payload: [UInt8]) -> MediaFrame {
        MediaFrame(header: MediaFrameHeader(kind: kind, flags: flags, sourceID: source, sequence: 42, timestamp: 96_000), payload: ByteBuffer(bytes: payload))
    }

    static let commands: [LiveCommand] = [
        .switchToAudio, .switchToScreen(ScreenConfig()), .switchToScreen(ScreenConfig(codec: "vp8", width: 1280, height: 720, description: "AAECAw==")),
        .endStream, .inviteCohost(userID: "u2"), .removeCohost(userID: "u2", username: nil), .removeCohost(userID: nil, username: "Uma"),
        .removeCohost(userID: "u2", username: "Uma"), .acceptCohost, .rejectCohost, .leaveCohost, .chat("hello \"world\"\n✓"), .leave,
        .mute(userID: nil), .mute(userID: "u3"), .unmute(userID: nil), .unmute(userID: "123"), .keyframeRequest, .recordingStart, .recordingStop,
    ]

    @Test("every command's link form decodes to the same command", arguments: commands)
    func commandRoundTrip(_ command: LiveCommand) throws {
        #expect(try LiveCommand.decode(Array(command.linkJSON.jsonText.utf8)) == command)
    }

    @Test("every up message reads back from its frame")
    func upRoundTrip() throws {
        let messages: [EdgeLinkMessage.Up] = [
            .join(1, UserIdentity(userID: "u2", username: "Uma \"U\"", verified: true)), .join(.max, UserIdentity(userID: "g", username: "g", verified: false)),
            .leave(7), .keyframeRequest, .mixSubscription(6), .segmenterSubscription(12),
            .mediaListenerJoined(5, UserIdentity(userID: "whep-1", username: "WebRTC listener", verified: false), video: true, speakers: false),
            .mediaListenerJoined(8, UserIdentity(userID: "u5", username: "Una", verified: true), video: false, speakers: true),
            .media(3, Self.frame(.opus, flags: .marker, [0xfc, 1, 2])), .media(4, Self.frame(.pcm, flags: .stereo, [0, 0, 1, 0])),
        ] + Self.commands.map { .command(9, $0) }
        for message in messages {
            #expect(try EdgeLinkMessage.Up(Self.overTheWire(message.frame)) == message, "\(message)")
        }
    }

    @Test("a client's media goes up with its number in the source id field, the rest of the frame unchanged")
    func upMediaFrame() throws {
        let frame = Self.frame(.opus, [0xfc, 9])
        guard case .binary(let sent) = EdgeLinkMessage.Up.media(77, frame).frame else { Issue.record("not binary"); return }
        #expect(sent.header.sourceID == 77)
        #expect(sent.header.kind == .opus && sent.header.sequence == 42 && sent.header.timestamp == 96_000)
        #expect(sent.payload == frame.payload)
    }

    @Test("every down message reads back from its frame; a frame goes down unchanged")
    func downRoundTrip() throws {
        let snapshot = EdgeLinkMessage.Snapshot(
            streamState: LiveServerMessage.streamState(eventID: "ev1", mode: "audio", hostUserID: "h1", hostUsername: "Hana", screen: nil,
                                                       startedAt: Timestamp(milliseconds: 1000)),
            chatHistory: LiveServerMessage.chatHistory([.init(userID: "u2", username: "Uma", message: "hi", sentAt: Timestamp(milliseconds: 1500), verified: true)]),
            participantList: LiveServerMessage.participantList([], truncatedTotal: 5000), participantCount: LiveServerMessage.participantCount(4999))
        let messages: [EdgeLinkMessage.Down] = [
            .snapshot(snapshot), .welcome(3),
            .message(LiveEvent.Message(.messageBroadcast, ["type": "message_broadcast", "message": "hi"]), to: .all),
            .message(LiveEvent.Message(ProtocolError(.duplicateUser, "taken", details: ["user_id": "u2"])), to: .one(2)),
            .message(LiveEvent.Message(.cohostLeft, ["type": "cohost_left", "user_id": "u2"]), to: .allExcept(2)),
            .close(2, .replaced), .ended(.normal), .ended(.goingAway), .mixSubscriber(2, minus: nil), .mixSubscriber(3, minus: 5),
            .mixUnsubscriber(2), .sessionsDropSource(4), .refused(.eventEnded), .refused(.serverBusy),
            .media(Self.frame(.screen, flags: [.keyframe], source: 1, [1, 2, 3, 4])), .media(Self.frame(.opus, source: 5, [0xfc])),
        ]
        for message in messages {
            #expect(try EdgeLinkMessage.Down(Self.overTheWire(message.frame)) == message, "\(message)")
        }
    }

    @Test("malformed link frames are typed errors", arguments: [
        "not json", "[]", #"{"client": 1}"#, #"{"type": "join", "client": 1}"#, #"{"type": "join", "client": -1, "user": {"user_id": "u", "username": "u", "verified": true}}"#,
        #"{"type": "join", "client": 4294967296, "user": {"user_id": "u", "username": "u", "verified": true}}"#,
        #"{"type": "command", "client": 1, "command": {"type": "invite_cohost"}}"#, #"{"type": "command", "client": 1, "command": "chat"}"#,
        #"{"type": "leave"}"#, #"{"type": "welcome", "client": 1}"#,
    ])
    func malformedUp(_ text: String) {
        #expect(throws: EdgeLinkMessage.DecodingError.self) { try EdgeLinkMessage.Up(.text(text)) }
    }

    @Test("malformed down frames are typed errors", arguments: [
        #"{"type": "message", "to": "all", "message": {"type": "no_such_message"}}"#, #"{"type": "message", "to": "some", "message": {"type": "muted"}}"#,
        #"{"type": "message", "to": "all", "message": {"type": "error", "code": "nope"}}"#, #"{"type": "close", "client": 1}"#,
        #"{"type": "close", "client": 1, "code": 70000}"#, #"{"type": "ended"}"#, #"{"type": "mix_subscriber", "client": 1}"#,
        #"{"type": "mix_subscriber", "client": 1, "minus": -1}"#, #"{"type": "mix_unsubscriber"}"#,
        #"{"type": "snapshot", "stream_state": {"type": "stream_state"}, "chat_history": {"type": "chat_history"}, "participant_list": {"type": "participant_count"}, "participant_count": {"type": "participant_count"}}"#,
        #"{"type": "join", "client": 1, "user": {"user_id": "u", "username": "u", "verified": true}}"#,
    ])
    func malformedDown(_ text: String) {
        #expect(throws: EdgeLinkMessage.DecodingError.self) { try EdgeLinkMessage.Down(.text(text)) }
    }
}
