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
