import AirwaveProtocol
import Testing

@Suite("RoomCommand.decode")
struct RoomCommandTests {
    static func decode(_ text: String) throws(ProtocolError) -> RoomCommand {
        try RoomCommand.decode(Array(text.utf8))
    }

    static func decode(_ json: JSONValue) throws(ProtocolError) -> RoomCommand {
        try decode(json.jsonText)
    }

    static func failure(_ text: String) -> ProtocolError? {
        decodingFailure(text) { bytes throws(ProtocolError) in try RoomCommand.decode(bytes) }
    }

    static func failure(_ json: JSONValue) -> ProtocolError? { failure(json.jsonText) }

    @Test("every message type", arguments: [
        (#"{"type":"song_queued","song_id":"s1"}"#, RoomCommand.Action.queueSong(songID: "s1", timeAdded: nil)),
        (#"{"type":"song_queued","song_id":"s1","time_added":1700000000123}"#, .queueSong(songID: "s1", timeAdded: 1_700_000_000_123)),
        (#"{"type":"song_queued","song_id":"s1","time_added":0}"#, .queueSong(songID: "s1", timeAdded: 0)),
        (#"{"type":"song_queued","song_id":"s1","time_added":null}"#, .queueSong(songID: "s1", timeAdded: nil)),
        (#"{"type":"autoplay_song_queued","song_id":"a1"}"#, .queueAutoplaySong(songID: "a1")),
        (#"{"type":"song_vote","song_id":"s1"}"#, .vote(songID: "s1")),
        (#"{"type":"song_changed","song_id":"s2"}"#, .changeSong(songID: "s2")),
        (#"{"type":"song_changed"}"#, .changeSong(songID: nil)),
        (#"{"type":"song_changed","song_id":null}"#, .changeSong(songID: nil)),
        (#"{"type":"playback_changed","percentage":42.5}"#, .changePlayback(PlaybackChange(percentage: 42.5))),
        (#"{"type":"playback_changed","percentage":0}"#, .changePlayback(PlaybackChange(percentage: 0))),
        (#"{"type":"playback_changed","percentage":100}"#, .changePlayback(PlaybackChange(percentage: 100))),
        (#"{"type":"playback_changed","paused":true}"#, .changePlayback(PlaybackChange(paused: true))),
        (#"{"type":"playback_changed","paused":false}"#, .changePlayback(PlaybackChange(paused: false))),
        (#"{"type":"playback_changed","song_progress":0}"#, .changePlayback(PlaybackChange(songProgress: 0))),
        (#"{"type":"playback_changed","song_length":180000}"#, .changePlayback(PlaybackChange(songLength: 180_000))),
        (#"{"type":"playback_changed","percentage":10,"paused":false,"song_progress":18000,"song_length":180000,"percentage_extra":1}"#,
         .changePlayback(PlaybackChange(percentage: 10, paused: false, songProgress: 18_000, songLength: 180_000))),
        (#"{"type":"playback_changed","percentage":null,"paused":true}"#, .changePlayback(PlaybackChange(paused: true))),
        (#"{"type":"chat_message","message":"hello"}"#, .chat(name: nil, message: "hello")),
        (#"{"type":"chat_message","message":" spaced ","name":"  Uma  "}"#, .chat(name: "Uma", message: " spaced ")),
        (#"{"type":"chat_message","message":"hi","name":null}"#, .chat(name: nil, message: "hi")),
        (#"{"type":"room_closed"}"#, .closeRoom),
        (#"{"type":"room_closed","reason":"bye"}"#, .closeRoom),
        (#"{"type":"user_joined"}"#, .userJoined),
        (#"{"type":"user_joined","name":"Uma"}"#, .userJoined),
    ])
    func everyType(_ text: String, _ expected: RoomCommand.Action) throws {
        #expect(try Self.decode(text).action == expected)
    }

    @Test("an integer song_id is read as text", arguments: [
        (#"{"type":"song_queued","song_id":42}"#, RoomCommand.Action.queueSong(songID: "42", timeAdded: nil)),
        (#"{"type":"song_queued","song_id":42.0}"#, .queueSong(songID: "42", timeAdded: nil)),
        (#"{"type":"song_queued","song_id":0}"#, .queueSong(songID: "0", timeAdded: nil)),
        (#"{"type":"song_queued","song_id":-7}"#, .queueSong(songID: "-7", timeAdded: nil)),
        (#"{"type":"song_queued","song_id":1234567890123}"#, .queueSong(songID: "1234567890123", timeAdded: nil)),
        (#"{"type":"autoplay_song_queued","song_id":5}"#, .queueAutoplaySong(songID: "5")),
        (#"{"type":"song_vote","song_id":6}"#, .vote(songID: "6")),
        (#"{"type":"song_changed","song_id":7}"#, .changeSong(songID: "7")),
    ])
    func numericSongIDs(_ text: String, _ expected: RoomCommand.Action) throws {
        #expect(try Self.decode(text).action == expected)
    }

    @Test("song_id length is counted in characters, 1–256")
    func songIDLength() throws {
        let longest = String(repeating: "x", count: RoomCommand.maxSongIDLength)
        #expect(try Self.decode(["type": "song_vote", "song_id": .string(longest)]).action == .vote(songID: longest))
        let emoji = String(repeating: "🎵", count: 256)  // 1,024 bytes, 256 characters
        #expect(try Self.decode(["type": "song_vote", "song_id": .string(emoji)]).action == .vote(songID: emoji))
        let error = Self.failure(["type": "song_vote", "song_id": .string(longest + "x")])
        #expect(error?.code == .badMessage)
        #expect(error?.details == ["field": "song_id"])
    }

    @Test("the client's whole object is kept as original, unknown fields included")
    func original() throws {
        let json: JSONValue = ["type": "song_queued", "song_id": 42, "title": "Blue in Green",
                               "album": ["name": "Kind of Blue", "year": 1959], "tags": ["jazz", nil, true]]
        let command = try Self.decode(json)
        #expect(JSONValue.object(command.original) == json)
        #expect(command.type == "song_queued")
        #expect(command.action == .queueSong(songID: "42", timeAdded: nil))
        // The original keeps what the client sent, not the normalized value.
        #expect(command.original["song_id"] == 42)

        let chat = try Self.decode(#"{"type":"chat_message","message":"hi","name":"  Uma  ","color":"red"}"#)
        #expect(chat.original["name"] == "  Uma  ")
        #expect(chat.original["color"] == "red")
        #expect(chat.action == .chat(name: "Uma", message: "hi"))
    }

    @Test("only chat_message draws from the chat bucket")
    func isChat() throws {
        #expect(try Self.decode(#"{"type":"chat_message","message":"a"}"#).isChat)
        for text in [#"{"type":"song_vote","song_id":"s"}"#, #"{"type":"user_joined"}"#, #"{"type":"room_closed"}"#,
                     #"{"type":"playback_changed","paused":true}"#] {
            #expect(try !Self.decode(text).isChat)
        }
    }

    static let range = "0.0…9000000000000000.0"

    @Test("bad_message", arguments: [
        // Framing (TypedMessage).
        ("not json", "The message is not valid JSON (invalid JSON at byte 0: invalid literal).", [String: JSONValue]()),
        ("", "The message is not valid JSON (invalid JSON at byte 0: unexpected end of input).", [:]),
        ("[1,2]", "The message must be a JSON object.", [:]),
        (#""song_queued""#, "The message must be a JSON object.", [:]),
        ("{}", "The message has no type.", ["field": "type"]),
        (#"{"song_id":"s1"}"#, "The message has no type.", ["field": "type"]),
        (#"{"type":5}"#, "type must be a string.", ["field": "type"]),
        (#"{"type":null}"#, "type must be a string.", ["field": "type"]),
        // song_id, required.
        (#"{"type":"song_queued"}"#, "song_id is required.", ["field": "song_id"]),
        (#"{"type":"song_queued","song_id":null}"#, "song_id is required.", ["field": "song_id"]),
        (#"{"type":"autoplay_song_queued"}"#, "song_id is required.", ["field": "song_id"]),
        (#"{"type":"song_vote"}"#, "song_id is required.", ["field": "song_id"]),
        (#"{"type":"song_vote","song_id":null}"#, "song_id is required.", ["field": "song_id"]),
        // song_id, malformed.
        (#"{"type":"song_queued","song_id":""}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_queued","song_id":1.5}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_queued","song_id":1e20}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_queued","song_id":true}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"autoplay_song_queued","song_id":["a"]}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_vote","song_id":{"id":1}}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_changed","song_id":""}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        (#"{"type":"song_changed","song_id":false}"#, "song_id must be a string of 1–256 characters or an integer.", ["field": "song_id"]),
        // time_added.
        (#"{"type":"song_queued","song_id":"s","time_added":-1}"#, "time_added must be a number in \(range).", ["field": "time_added"]),
        (#"{"type":"song_queued","song_id":"s","time_added":"now"}"#, "time_added must be a number in \(range).", ["field": "time_added"]),
        (#"{"type":"song_queued","song_id":"s","time_added":1e16}"#, "time_added must be a number in \(range).", ["field": "time_added"]),
        // playback_changed.
        (#"{"type":"playback_changed","percentage":120}"#, "percentage must be a number in 0.0…100.0.", ["field": "percentage"]),
        (#"{"type":"playback_changed","percentage":-0.1}"#, "percentage must be a number in 0.0…100.0.", ["field": "percentage"]),
        (#"{"type":"playback_changed","percentage":"50"}"#, "percentage must be a number in 0.0…100.0.", ["field": "percentage"]),
        (#"{"type":"playback_changed","paused":"true"}"#, "paused must be true or false.", ["field": "paused"]),
        (#"{"type":"playback_changed","paused":1}"#, "paused must be true or false.", ["field": "paused"]),
        (#"{"type":"playback_changed","song_progress":-1}"#, "song_progress must be a number in \(range).", ["field": "song_progress"]),
        (#"{"type":"playback_changed","song_progress":"1:00"}"#, "song_progress must be a number in \(range).", ["field": "song_progress"]),
        (#"{"type":"playback_changed","song_length":-1000}"#, "song_length must be a number in \(range).", ["field": "song_length"]),
        (#"{"type":"playback_changed"}"#, "playback_changed needs percentage, song_progress, song_length or paused.", ["field": "percentage"]),
        (#"{"type":"playback_changed","percentage":null,"paused":null,"song_progress":null,"song_length":null}"#,
         "playback_changed needs percentage, song_progress, song_length or paused.", ["field": "percentage"]),
        (#"{"type":"playback_changed","at":5}"#, "playback_changed needs percentage, song_progress, song_length or paused.", ["field": "percentage"]),
        // chat_message.
        (#"{"type":"chat_message"}"#, "A chat message needs a message of 1–2000 characters.", ["field": "message"]),
        (#"{"type":"chat_message","message":null}"#, "A chat message needs a message of 1–2000 characters.", ["field": "message"]),
        (#"{"type":"chat_message","message":"   "}"#, "A chat message needs a message of 1–2000 characters.", ["field": "message"]),
        (#"{"type":"chat_message","message":""}"#, "message must be 1–2000 characters.", ["field": "message"]),
        (#"{"type":"chat_message","message":42}"#, "message must be a string.", ["field": "message"]),
        (#"{"type":"chat_message","text":"the live alias is not read"}"#, "A chat message needs a message of 1–2000 characters.", ["field": "message"]),
        (#"{"type":"chat_message","message":"hi","name":""}"#, "name must be 1–256 characters.", ["field": "name"]),
        (#"{"type":"chat_message","message":"hi","name":"   "}"#, "name must be 1–64 characters.", ["field": "name"]),
        (#"{"type":"chat_message","message":"hi","name":"a\u0007b"}"#, "name must be 1–64 characters.", ["field": "name"]),
        (#"{"type":"chat_message","message":"hi","name":7}"#, "name must be a string.", ["field": "name"]),
    ])
    func badMessage(_ text: String, _ message: String, _ details: [String: JSONValue]) throws {
        let error = try #require(Self.failure(text), "\(text) was accepted")
        #expect(error.code == .badMessage)
        #expect(error.message == message)
        #expect(error.details == details)
        #expect(error.code.closeCode == nil, "a bad message leaves the connection open")
    }

    @Test("chat message and name lengths are counted in characters")
    func chatLengths() throws {
        let longest = String(repeating: "😀", count: 2000)  // 8,000 bytes
        #expect(try Self.decode(["type": "chat_message", "message": .string(longest)]).action == .chat(name: nil, message: longest))
        #expect(Self.failure(["type": "chat_message", "message": .string(String(repeating: "x", count: 2001))])?.message
                == "message must be 1–2000 characters.")
        let name64 = String(repeating: "é", count: 64)
        #expect(try Self.decode(["type": "chat_message", "message": "m", "name": .string(name64)]).action == .chat(name: name64, message: "m"))
        let name65 = Self.failure(["type": "chat_message", "message": "m", "name": .string(name64 + "e")])
        #expect(name65?.message == "name must be 1–64 characters.")
        let name257 = Self.failure(["type": "chat_message", "message": "m", "name": .string(String(repeating: "n", count: 257))])
        #expect(name257?.message == "name must be 1–256 characters.")
    }

    @Test("unknown_type names the type, cut to 64 characters", arguments: [
        ("dance", "dance"),
        ("broadcast_message", "broadcast_message"),
        ("Song_Queued", "Song_Queued"),
        ("", ""),
        (String(repeating: "t", count: 100), String(repeating: "t", count: 64)),
    ])
    func unknownType(_ type: String, _ shown: String) throws {
        let error = try #require(Self.failure(["type": .string(type), "song_id": "s1"]))
        #expect(error.code == .unknownType)
        #expect(error.message == "Unknown message type \(shown).")
        #expect(error.details == ["type": .string(shown)])
        #expect(error.code.closeCode == nil)
    }

    @Test("the type is checked before the fields")
    func typeFirst() {
        #expect(Self.failure(#"{"type":"dance","song_id":true}"#)?.code == .unknownType)
        #expect(Self.failure(#"{"type":"room_closed","song_id":true,"percentage":500}"#) == nil)
    }
}
