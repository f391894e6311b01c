import AirwaveCore
import AirwaveProtocol
import Testing

@Suite("Edge fixtures")
struct EdgeFixtureTests {
    @Test("Fixtures/edge is found and not empty")
    func fixturesFound() {
        #expect(EdgeFixtureLibrary.directory != nil)
        #expect(EdgeFixtureLibrary.names.count >= 8, "found: \(EdgeFixtureLibrary.names)")
    }

    @Test("edge scenario", arguments: EdgeFixtureLibrary.names)
    func scenario(_ name: String) throws {
        var runner = try EdgeFixtureRunner(name: name, fixture: try EdgeFixtureLibrary.load(name))
        try runner.run()
    }

    static let header = #""description": "d", "edge": {"event_id": "e", "at": 0, "expect": ["open_link"]}"#

    /// Runs an inline edge fixture; returns the thrown error's text, or nil if it ran.
    static func failure(_ text: String) throws -> String? {
        do {
            var runner = try EdgeFixtureRunner(name: "inline", fixture: try JSONParser.parse(Array(text.utf8)))
            try runner.run()
            return nil
        } catch let error as FixtureError {
            return error.description
        }
    }

    @Test("the edge runner rejects unknown keys, two inputs and bad link messages")
    func strictness() throws {
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "tick": true, "expect": []}]}"#) == nil)
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "tick": true, "expect": [], "clinets": 0}]}"#)?.contains("clinets") == true)
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "tick": true, "link_down": true, "expect": []}]}"#)?
            .contains("exactly one input") == true)
        #expect(try Self.failure(#"{\#(Self.header), "ignroe": [], "steps": [{"at": 1, "tick": true, "expect": []}]}"#)?.contains("ignroe") == true)
        #expect(try Self.failure(#"{\#(Self.header), "ignore": ["uplink"], "steps": [{"at": 1, "tick": true, "expect": []}]}"#)?
            .contains("uplink") == true)
        #expect(try Self.failure(#"{\#(Self.header), "configuration": {"idle_lingr_ms": 1}, "steps": [{"at": 1, "tick": true, "expect": []}]}"#)?
            .contains("idle_lingr_ms") == true)
        #expect(try Self.failure(#"{\#(Self.header), "steps": [{"at": 1, "origin": {"type": "welcom", "client": 1}, "expect": []}]}"#)?
            .contains("unknown down type") == true)
    }
}
