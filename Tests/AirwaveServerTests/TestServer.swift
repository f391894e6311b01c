import AirwaveAuth
import AirwaveProtocol
import AirwaveTestSupport
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import AirwaveServer

/// Runs a real `AirwaveServer` on 127.0.0.1 with a free port and a temporary data folder.
struct TestServer {
    static let secret = "test-secret-that-is-long-enough-for-hs256!"
    let server: AirwaveServer
    let port: Int
    let dataDirectory: URL

    /// Starts a server, runs `body` against it, then shuts it down gracefully and waits.
    static func with<T: Sendable>(
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: (TestServer) async throws -> T
    ) async throws -> T {
        let folder = try TemporaryDirectory(prefix: "airwave-server")
        defer { folder.remove() }
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = folder.path
        configuration.auth.hs256Secret = secret
        configure(&configuration)
        var logger = Logger(label: "airwave-test")
        logger.logLevel = .warning
        let server = try await AirwaveServer.make(configuration: configuration, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let running = Task {
            try await server.run(signals: []) { port in portContinuation.yield(port) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the server did not start") }
        let test = TestServer(server: server, port: port, dataDirectory: folder.url)
        do {
            let result = try await body(test)
            await server.shutdown()
            try await running.value
            return result
        } catch {
            await server.shutdown()
            try? await running.value
            throw error
        }
    }

    func token(_ userID: String, username: String? = nil) throws -> String {
        try TokenMinter.hs256(userID: userID, username: username, ttl: .seconds(600), secret: Self.secret)
    }

    func url(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
