import AirwaveProtocol
import Testing

@Suite("LiveCommand.decode")
struct LiveCommandTests {
    static func decode(_ text: String) throws(ProtocolError) -> LiveCommand {
        try LiveCommand.decode(Array(text.utf8))
    }

    static func decode(_ json: JSONValue) throws(ProtocolError) -> LiveCommand {
        try decode(json.jsonText)
    }

    static func failure(_ text: String) -> ProtocolError? {
        decodingFailure(text) { bytes throws(ProtocolError) in try LiveCommand.decode(bytes) }
    }

    static func failure(_ json: JSONValue) -> ProtocolError? { failure(json.jsonText) }

    @Test("every message type", arguments: [
        (#"{"type":"switching_to_audio"}"#, LiveCommand.switchToAudio),
        (#"{"type":"switching_to_audio","stream":"audio"}"#, .switchToAudio),
        (#"{"type":"switching_to_screen_sharing"}"#, .switchToScreen(ScreenConfig())),
        (#"{"type":"switching_to_screen_sharing","stream":"screen","codec":"vp8","width":1280,"height":720,"description":"AAECAw=="}"#,
         .switchToScreen(ScreenConfig(codec: "vp8", width: 1280, height: 720, description: "AAECAw=="))),
        (#"{"type":"switching_to_screen_sharing","stream":"screen","codec":"avc1.64001f","description":"a-b_c+/="}"#,
         .switchToScreen(ScreenConfig(codec: "avc1.64001f", description: "a-b_c+/="))),
        (#"{"type":"stream_ended"}"#, .endStream),
        (#"{"type":"stream_ended","event_id":"ev1"}"#, .endStream),
        (#"{"type":"invite_cohost","user_id":"u2"}"#, .inviteCohost(userID: "u2")),
        (#"{"type":"remove_cohost","participant_id":"u2"}"#, .removeCohost(userID: "u2", username: nil)),
        (#"{"type":"remove_cohost","participant_id":"u2","username":"Uma"}"#, .removeCohost(userID: "u2", username: "Uma")),
        (#"{"type":"remove_cohost","username":"Uma Thurman"}"#, .removeCohost(userID: nil, username: "Uma Thurman")),
        (#"{"type":"remove_cohost","user_id":"u2"}"#, .removeCohost(userID: "u2", username: nil)),
        (#"{"type":"remove_cohost","participant_id":"u2","user_id":"u9"}"#, .removeCohost(userID: "u2", username: nil)),
        (#"{"type":"accept_cohost"}"#, .acceptCohost),
        (#"{"type":"cohost_reject"}"#, .rejectCohost),
        (#"{"type":"cohost_leave"}"#, .leaveCohost),
        (#"{"type":"cohost_leave","participant_id":"anyone"}"#, .leaveCohost),
        (#"{"type":"broadcast_message","message":"hello"}"#, .chat("hello")),
        (#"{"type":"broadcast_message","message":" spaced "}"#, .chat(" spaced ")),
        (#"{"type":"leave_room"}"#, .leave),
        (#"{"type":"mute"}"#, .mute(userID: nil)),
        (#"{"type":"mute","user_id":"u4"}"#, .mute(userID: "u4")),
        (#"{"type":"mute","user_id":null}"#, .mute(userID: nil)),
        (#"{"type":"unmute"}"#, .unmute(userID: nil)),
        (#"{"type":"unmute","user_id":"u4"}"#, .unmute(userID: "u4")),
        (#"{"type":"keyframe_request"}"#, .keyframeRequest),
        (#"{"type":"recording_start"}"#, .recordingStart),
        (#"{"type":"recording_stop","extra":1}"#, .recordingStop),
    ])
    func everyType(_ text: String, _ expected: LiveCommand) throws {
        #expect(try Self.decode(text) == expected)
    }

    @Test func chatAliases() throws {
        #expect(try Self.decode(#"{"type":"text","message":"a"}"#) == .chat("a"))
        #expect(try Self.decode(#"{"type":"broadcast_message","text":"b"}"#) == .chat("b"))
        #expect(try Self.decode(#"{"type":"text","text":"c"}"#) == .chat("c"))
        // With both fields, `message` wins.
        #expect(try Self.decode(#"{"type":"broadcast_message","message":"m","text":"t"}"#) == .chat("m"))
        #expect(try Self.decode(#"{"type":"text","message":"m","text":"t"}"#) == .chat("m"))
    }

    @Test func chatLengthIsCountedInCharacters() throws {
        #expect(try Self.decode(["type": "broadcast_message", "message": .string(String(repeating: "x", count: 2000))])
                == .chat(String(repeating: "x", count: 2000)))
        let emoji = String(repeating: "😀", count: 2000)  // 8,000 bytes, 2,000 characters
        #expect(try Self.decode(["type": "broadcast_message", "message": .string(emoji)]) == .chat(emoji))
        #expect(Self.failure(["type": "broadcast_message", "message": .string(String(repeating: "x", count: 2001))])?.details
                == ["field": "message"])
        #expect(Self.failure(["type": "text", "text": .string(String(repeating: "x", count: 2001))])?.details == ["field": "text"])
    }

    @Test func isChat() throws {
        #expect(try Self.decode(#"{"type":"text","message":"a"}"#).isChat)
        #expect(try !Self.decode(#"{"type":"mute"}"#).isChat)
    }

    @Test("ids sent as integers are read as text", arguments: [
        (#"{"type":"invite_cohost","user_id":42}"#, LiveCommand.inviteCohost(userID: "42")),
        (#"{"type":"invite_cohost","user_id":-5}"#, .inviteCohost(userID: "-5")),
        (#"{"type":"invite_cohost","user_id":1e3}"#, .inviteCohost(userID: "1000")),
        (#"{"type":"invite_cohost","user_id":0}"#, .inviteCohost(userID: "0")),
        (#"{"type":"remove_cohost","participant_id":7}"#, .removeCohost(userID: "7", username: nil)),
        (#"{"type":"remove_cohost","user_id":8}"#, .removeCohost(userID: "8", username: nil)),
        (#"{"type":"mute","user_id":123456789012}"#, .mute(userID: "123456789012")),
        (#"{"type":"unmute","user_id":9}"#, .unmute(userID: "9")),
        (#"{"type":"stream_ended","event_id":77}"#, .endStream),
    ])
    func numericIDs(_ text: String, _ expected: LiveCommand) throws {
        #expect(try Self.decode(text) == expected)
    }

    @Test func unknownExtraFieldsAreIgnored() throws {
        #expect(try Self.decode(#"{"type":"keyframe_request","x":{"y":[1,2]},"z":null}"#) == .keyframeRequest)
        #expect(try Self.decode(#"{"extra":true,"type":"accept_cohost"}"#) == .acceptCohost)
    }

    /// (frame, expected `details`, or nil for an empty object).
    @Test("bad_message", arguments: [
        ("", nil), ("not json", nil), ("{", nil), (#"{"type":"mute"} x"#, nil),
        ("[]", nil), (#"["type","mute"]"#, nil), (#""mute""#, nil), ("42", nil), ("null", nil),
        ("{}", "type"), (#"{"typo":"mute"}"#, "type"),
        (#"{"type":5}"#, "type"), (#"{"type":null}"#, "type"), (#"{"type":["mute"]}"#, "type"), (#"{"type":true}"#, "type"),
        (#"{"type":"switching_to_audio","stream":"screen"}"#, "stream"),
        (#"{"type":"switching_to_audio","stream":1}"#, "stream"),
        (#"{"type":"switching_to_screen_sharing","stream":"audio"}"#, "stream"),
        (#"{"type":"switching_to_screen_sharing","codec":7}"#, "codec"),
        (#"{"type":"switching_to_screen_sharing","codec":""}"#, "codec"),
        (#"{"type":"switching_to_screen_sharing","codec":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#, "codec"),
        (#"{"type":"switching_to_screen_sharing","width":0}"#, "width"),
        (#"{"type":"switching_to_screen_sharing","width":16385}"#, "width"),
        (#"{"type":"switching_to_screen_sharing","width":1.5}"#, "width"),
        (#"{"type":"switching_to_screen_sharing","width":"1280"}"#, "width"),
        (#"{"type":"switching_to_screen_sharing","height":-1}"#, "height"),
        (#"{"type":"switching_to_screen_sharing","description":"not base64!"}"#, "description"),
        (#"{"type":"switching_to_screen_sharing","description":"AA AA"}"#, "description"),
        (#"{"type":"switching_to_screen_sharing","description":5}"#, "description"),
        (#"{"type":"stream_ended","event_id":"no spaces"}"#, "event_id"),
        (#"{"type":"stream_ended","event_id":false}"#, "event_id"),
        (#"{"type":"invite_cohost"}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":null}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":""}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":"a/b"}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":1.5}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":1e20}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":true}"#, "user_id"),
        (#"{"type":"invite_cohost","user_id":["u2"]}"#, "user_id"),
        (#"{"type":"remove_cohost"}"#, "participant_id"),
        (#"{"type":"remove_cohost","participant_id":null,"username":null}"#, "participant_id"),
        (#"{"type":"remove_cohost","participant_id":"bad id"}"#, "participant_id"),
        (#"{"type":"remove_cohost","user_id":{}}"#, "user_id"),
        (#"{"type":"remove_cohost","username":""}"#, "username"),
        (#"{"type":"remove_cohost","username":3}"#, "username"),
        (#"{"type":"remove_cohost","username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#, "username"),
        (#"{"type":"broadcast_message"}"#, "message"),
        (#"{"type":"text"}"#, "message"),
        (#"{"type":"broadcast_message","message":null}"#, "message"),
        (#"{"type":"broadcast_message","message":""}"#, "message"),
        (#"{"type":"broadcast_message","message":"  \n\t "}"#, "message"),
        (#"{"type":"broadcast_message","message":42}"#, "message"),
        (#"{"type":"broadcast_message","message":["a"]}"#, "message"),
        (#"{"type":"broadcast_message","text":""}"#, "text"),
        (#"{"type":"text","text":"   "}"#, "text"),
        (#"{"type":"text","text":7}"#, "text"),
        (#"{"type":"mute","user_id":"x y"}"#, "user_id"),
        (#"{"type":"unmute","user_id":false}"#, "user_id"),
    ] as [(String, String?)])
    func badMessage(_ text: String, _ field: String?) throws {
        let error = try #require(Self.failure(text), "accepted \(text)")
        #expect(error.code == .badMessage)
        #expect(error.details == (field.map { ["field": .string($0)] } ?? [:]))
        #expect(!error.message.isEmpty)
        #expect(error.code.closeCode == nil)
    }

    @Test func badUTF8IsBadMessage() throws {
        let error = try #require(Self.failureBytes([0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]))
        #expect(error.code == .badMessage)
    }

    @Test func deepNestingIsBadMessage() throws {
        let text = #"{"type":"mute","x":"# + String(repeating: "[", count: 100_000)
        #expect(Self.failure(text)?.code == .badMessage)
    }

    static func failureBytes(_ bytes: [UInt8]) -> ProtocolError? {
        do {
            _ = try LiveCommand.decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test("unknown_type", arguments: [
        "dance", "", "MUTE", "Mute", " mute", "chat_message", "song_queued", "stream_link", "participant_list", "error",
    ])
    func unknownType(_ type: String) throws {
        let error = try #require(Self.failure(["type": .string(type)]))
        #expect(error.code == .unknownType)
        #expect(error.details == ["type": .string(type)])
        #expect(error.code.closeCode == nil)
    }

    @Test func unknownTypeIsEchoedAtMost64Characters() throws {
        let long = String(repeating: "t", count: 500)
        let error = try #require(Self.failure(["type": .string(long)]))
        #expect(error.code == .unknownType)
        #expect(error.details == ["type": .string(String(repeating: "t", count: 64))])
        #expect(error.message.count < 120)
    }

    @Test func errorFrameShape() {
        let error = ProtocolError(.cannotInvite, "Nope.", details: ["reason": "not_present"])
        #expect(error.json == ["type": "error", "code": "cannot_invite", "message": "Nope.", "details": ["reason": "not_present"]])
        #expect(error.json.jsonText == #"{"type":"error","code":"cannot_invite","details":{"reason":"not_present"},"message":"Nope."}"#)
        #expect(ProtocolError(.notAllowed, "x").json["details"] == [:])
    }

    @Test("close codes of PROTOCOL.md section 1", arguments: [
        (ErrorCode.unauthorized, UInt16?.some(4401)), (.forbidden, 4403), (.eventNotFound, 4404), (.eventEnded, 4410),
        (.duplicateUser, 4409), (.replaced, 4000), (.tooSlow, 4408), (.roomClosed, 1000), (.badRequest, 4400),
        (.badMessage, nil), (.unknownType, nil), (.notAllowed, nil), (.noPendingInvite, nil), (.rateLimited, nil),
        (.cannotInvite, nil), (.alreadyVoted, nil), (.notCohost, nil),
    ])
    func closeCodes(_ code: ErrorCode, _ close: UInt16?) {
        #expect(code.closeCode?.rawValue == close)
    }

    @Test func errorCodeNames() {
        #expect(ErrorCode.eventNotFound.rawValue == "event_not_found")
        #expect(ErrorCode.noPendingInvite.rawValue == "no_pending_invite")
        #expect(ErrorCode.cannotInvite.rawValue == "cannot_invite")
        #expect(ErrorCode.duplicateUser.rawValue == "duplicate_user")
        #expect(ErrorCode.tooSlow.rawValue == "too_slow")
    }
}
