import AirwaveCore
import AirwaveProtocol
import Testing

@Suite("Live event fixtures")
struct FixtureTests {
    @Test("Fixtures/live is found and not empty")
    func fixturesFound() {
        #expect(FixtureLibrary.directory != nil)
        #expect(FixtureLibrary.names.count >= 30, "found: \(FixtureLibrary.names)")
    }

    @Test("scenario", arguments: FixtureLibrary.names)
    func scenario(_ name: String) throws {
        var runner = try FixtureRunner(name: name, fixture: try FixtureLibrary.load(name))
        try runner.run()
    }
}

/// A fixture with a typo must fail loudly, not turn into a step that checks nothing.
@Suite("Fixture runner strictness")
struct FixtureStrictnessTests {
    static func live(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    static let header = #""description": "d", "event": {"event_id": "e", "host": {"user_id": "h"}, "at": 0, "expect": [{"persist": {"record": "event_started", "event_id": "e", "host": {"user_id": "h", "username": "h", "verified": true}, "mode": "audio", "at": 0}}]}"#

    /// Runs an inline live fixture; returns the thrown error's text, or nil if it ran.
    static func failure(_ text: String) throws -> String? {
        do {
            var runner = try FixtureRunner(name: "inline", fixture: try live(text))
            try runner.run()
            return nil
        } catch let error as FixtureError {
            return error.description
        }
    }

    @Test("a well-formed inline fixture runs")
    func wellFormed() throws {
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "tick": true, "expect": []}]}"#) == nil)
    }

    @Test("an unknown step key fails (a misspelt input)")
    func unknownStepKey() throws {
        let error = try #require(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "tick": true, "expect": [], "wakeup": 5}]}"#))
        #expect(error.contains("unknown key wakeup"), "\(error)")
        let misspelt = try #require(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "discconnected": 2, "expect": []}]}"#))
        #expect(misspelt.contains("needs exactly one input"), "\(misspelt)")
    }

    @Test("a step with two inputs fails")
    func twoInputs() throws {
        let error = try #require(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "join": 2, "user": {"user_id": "u"}, "disconnected": 2, "expect": []}]}"#))
        #expect(error.contains("has disconnected, join"), "\(error)")
    }

    @Test("unknown keys elsewhere fail: top level, user, frame, ignore entries")
    func unknownKeysElsewhere() throws {
        #expect(try Self.failure(#"{\#(Self.header), "ignroe": [], "steps": [{"at": 1, "tick": true, "expect": []}]}"#)?.contains("ignroe") == true)
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "join": 2, "user": {"user_id": "u", "verfied": true}, "expect": []}]}"#)?
            .contains("verfied") == true)
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "media": 2, "frame": {"kind": 1, "payload_sise": 3}, "expect": []}]}"#)?
            .contains("payload_sise") == true)
        #expect(try Self.failure(#"{\#(Self.header), "ignore": ["participant_lst"], "steps": [{"at": 1, "tick": true, "expect": []}]}"#)?
            .contains("participant_lst") == true)
    }

    @Test("the room runner rejects unknown keys and two inputs too")
    func roomRunner() throws {
        func failure(_ steps: String) throws -> String? {
            let fixture = try Self.live(#"{"description": "d", "room": {"room_id": "r"}, "steps": [\#(steps)]}"#)
            do {
                var runner = try RoomFixtureRunner(name: "inline", fixture: fixture)
                try runner.run()
                return nil
            } catch let error as FixtureError {
                return error.description
            }
        }
        #expect(try failure(#"{"at": 1, "leave": 1, "expect": []}"#) == nil)
        #expect(try failure(#"{"at": 1, "leave": 1, "expect": [], "member_cuont": 0}"#)?.contains("member_cuont") == true)
        #expect(try failure(#"{"at": 1, "leave": 1, "join": 2, "member": {"user_id": "u"}, "expect": []}"#)?.contains("exactly one input") == true)
    }
}
