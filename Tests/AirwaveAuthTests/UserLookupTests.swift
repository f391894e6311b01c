import AsyncHTTPClient
import Foundation
import Testing

@testable import AirwaveAuth

@Suite("User lookup service")
struct UserLookupTests {
    /// Serves `/users/<id>` from `names`; ids listed in `failures` answer 500, `hang` never answers.
    static func server(names: [String: String]) async throws -> TestHTTPServer {
        try await TestHTTPServer.start { path in
            guard path.hasPrefix("/users/") else { return .init(status: .notFound, body: "{}") }
            let id = String(path.dropFirst("/users/".count))
            switch id {
            case "hang": return nil
            case "broken": return .init(status: .internalServerError, body: #"{"error":"boom"}"#)
            case "notjson": return .init(body: "<html>")
            default:
                guard let body = names[id] else { return .init(status: .notFound, body: #"{"error":"no such user"}"#) }
                return .init(body: body)
            }
        }
    }

    static func lookupVerifier(_ server: TestHTTPServer, timeout: Duration = .seconds(2)) async throws -> TokenVerifier {
        try await AirwaveAuthTests.verifier(
            AuthConfiguration(hs256Secret: testSecret, userLookupURL: server.url("/users/{user_id}"), userLookupTimeout: timeout))
    }

    func username(_ verifier: TokenVerifier, _ id: String, extra: [String: Any] = [:], now: Date = testNow) async throws -> String {
        let user = try await verifier.verify(try hs256Token(claims(extra.merging(["user_id": id]) { a, _ in a })), now: now)
        #expect(user.userID == id)
        return user.username
    }

    @Test func nameComesFromTheLookupAndIsCached() async throws {
        let server = try await Self.server(names: ["carol": #"{"id":"carol","username":"Carol C."}"#])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "carol") == "Carol C.")
        #expect(try await username(verifier, "carol") == "Carol C.")
        #expect(server.count("/users/carol") == 1)
        // After the 5-minute TTL the service is asked again.
        #expect(try await username(verifier, "carol", now: testNow.addingTimeInterval(301)) == "Carol C.")
        #expect(server.count("/users/carol") == 2)
    }

    @Test func claimsWinOverTheLookup() async throws {
        let server = try await Self.server(names: ["dave": #"{"username":"From Lookup"}"#])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "dave", extra: ["preferred_username": "From Token"]) == "From Token")
        #expect(server.requests.isEmpty)
    }

    @Test func alternativeAnswerShapes() async throws {
        let server = try await Self.server(names: [
            "p": #"{"preferred_username":"Pref"}"#,
            "n": #"{"username":"","name":"  Named  "}"#,
            "u": #"{"user":{"id":"u","username":"Nested"}}"#,
            "x": #"{"user":{"id":"x"}}"#,
        ])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "p") == "Pref")
        #expect(try await username(verifier, "n") == "Named")
        #expect(try await username(verifier, "u") == "Nested")
        #expect(try await username(verifier, "x") == "x")
    }

    @Test func theUserIDIsPercentEncodedInTheURL() async throws {
        let server = try await Self.server(names: ["a%40b.example": #"{"username":"At Sign"}"#])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "a@b.example") == "At Sign")
        #expect(server.requests == ["/users/a%40b.example"])
        #expect(UserLookup.url(template: "http://h/u/{user_id}?x={user_id}", userID: "a@b-c_d.e") == "http://h/u/a%40b-c_d.e?x=a%40b-c_d.e")
    }

    @Test func missesAreCachedToo() async throws {
        let server = try await Self.server(names: [:])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "ghost") == "ghost")
        #expect(try await username(verifier, "ghost") == "ghost")
        #expect(server.count("/users/ghost") == 1)
    }

    @Test func serverErrorsFallBackToTheIDAndAreRetried() async throws {
        let server = try await Self.server(names: [:])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server)
        #expect(try await username(verifier, "broken") == "broken")
        #expect(try await username(verifier, "notjson") == "notjson")
        #expect(try await username(verifier, "broken") == "broken")
        #expect(server.count("/users/broken") == 2)
    }

    @Test func aTimeoutFallsBackToTheID() async throws {
        let server = try await Self.server(names: [:])
        defer { Task { await server.stop() } }
        let verifier = try await Self.lookupVerifier(server, timeout: .milliseconds(200))
        let started = ContinuousClock.now
        // `hang` never answers, so returning at all shows the timeout fired; the bound only
        // catches a timeout far beyond the 200 ms asked for (loose: the suite runs in parallel
        // on a 2-core box, where this test has taken 9 s under load).
        #expect(try await username(verifier, "hang") == "hang")
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(server.count("/users/hang") == 1)
    }

    @Test func anUnreachableServiceFallsBackToTheID() async throws {
        let server = try await Self.server(names: [:])
        let url = server.url("/users/{user_id}")
        await server.stop()
        let verifier = try await verifier(AuthConfiguration(hs256Secret: testSecret, userLookupURL: url))
        #expect(try await username(verifier, "erin") == "erin")
    }

    @Test func concurrentLookupsShareOneRequest() async throws {
        let server = try await Self.server(names: ["frank": #"{"username":"Frank"}"#])
        defer { Task { await server.stop() } }
        let lookup = UserLookup(
            template: server.url("/users/{user_id}"), client: .shared, timeout: .seconds(2), logger: quietLogger)
        let names = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { await lookup.username(for: "frank", now: testNow) } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(names == Array(repeating: "Frank", count: 8))
        #expect(server.count("/users/frank") == 1)
    }

    @Test func theCacheIsBoundedAndEvictsTheOldest() async throws {
        let server = try await Self.server(names: ["a": #"{"username":"A"}"#, "b": #"{"username":"B"}"#, "c": #"{"username":"C"}"#])
        defer { Task { await server.stop() } }
        let lookup = UserLookup(
            template: server.url("/users/{user_id}"), client: .shared, timeout: .seconds(2), capacity: 2, logger: quietLogger)
        for id in ["a", "b", "c", "c", "b"] {
            _ = await lookup.username(for: id, now: testNow)
        }
        #expect(await lookup.cachedCount == 2)
        #expect(server.requests == ["/users/a", "/users/b", "/users/c"])
        // "a" was evicted, so it is fetched again (and evicts "b", the oldest).
        #expect(await lookup.username(for: "a", now: testNow) == "A")
        #expect(server.count("/users/a") == 2)
        #expect(await lookup.username(for: "c", now: testNow) == "C")
        #expect(server.count("/users/c") == 1)
    }

    @Test func templateProblemsAreConfigurationErrors() async throws {
        let noPlaceholder = try #require(await configurationError(
            AuthConfiguration(hs256Secret: testSecret, userLookupURL: "https://id.example/users/me")))
        #expect(noPlaceholder.description.contains("{user_id}"))
        #expect(await configurationError(AuthConfiguration(hs256Secret: testSecret, userLookupURL: "ftp://x/{user_id}")) != nil)
        #expect(await configurationError(
            AuthConfiguration(hs256Secret: testSecret, userLookupURL: "https://x/{user_id}", userLookupTimeout: .zero)) != nil)
    }
}
