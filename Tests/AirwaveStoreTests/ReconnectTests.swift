import Foundation
import Logging
import SQLKit
import Testing
@testable import AirwaveStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The PostgreSQL store while its database is unreachable, and after its connections die.
@Suite struct ReconnectTests {
    /// Nothing listens on the port: every call throws at once (the server answers 503), and
    /// again on the next call: nothing waits for the (long) connection timeout.
    @Test func aRefusedConnectionThrowsAtOnce() async throws {
        let port = try closedPort()
        let store = try await PostgresEventStore.open(
            url: "postgres://postgres@127.0.0.1:\(port)/postgres", logger: quietLogger, connectionTimeout: .seconds(60)
        )
        do {
            for _ in 0..<2 {
                let begin = ContinuousClock.now
                #expect(await thrownError { try await store.ping() } != nil)
                #expect(await thrownError { try await store.write([started("e")]) } != nil)
                // Far below the timeout; loose because the whole suite shares two cores.
                #expect(ContinuousClock.now - begin < .seconds(15))
            }
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// The port accepts TCP connections but never answers (a hung or unreachable server): a call
    /// throws once the connection timeout has passed.
    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let store = try await PostgresEventStore.open(
            url: "postgres://postgres@127.0.0.1:\(listener.port)/postgres?tlsmode=disable", logger: quietLogger,
            connectionTimeout: .seconds(1)
        )
        do {
            let begin = ContinuousClock.now
            #expect(await thrownError { try await store.ping() } != nil)
            let elapsed = ContinuousClock.now - begin
            // Not before the timeout, and not forever (loose: the whole suite shares two cores).
            #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(15))
            try await store.shutdown()
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// A call that gets no answer within the operation deadline fails with `timedOut`, even
    /// when the connection timeout would wait far longer: no call hangs, and the store's
    /// transaction gate is free again for the next one.
    @Test func aCallThatGetsNoAnswerFailsAtTheOperationDeadline() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let store = try await PostgresEventStore.open(
            url: "postgres://postgres@127.0.0.1:\(listener.port)/postgres?tlsmode=disable", logger: quietLogger,
            connectionTimeout: .seconds(600), operationDeadline: .seconds(1)
        )
        for _ in 0..<2 {
            let error = await thrownError { try await store.write([started("e")]) }
            #expect(error as? EventStoreError == .timedOut(seconds: 1))
        }
        #expect(await thrownError { try await store.ping() } as? EventStoreError == .timedOut(seconds: 1))
        try? await store.shutdown()
    }

    /// A caller that is cancelled (a shutdown) gets `CancellationError` at once, not after the
    /// deadline.
    @Test func aCancelledCallReturnsAtOnce() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let store = try await PostgresEventStore.open(
            url: "postgres://postgres@127.0.0.1:\(listener.port)/postgres?tlsmode=disable", logger: quietLogger,
            connectionTimeout: .seconds(600), operationDeadline: .seconds(600)
        )
        let call = Task { await thrownError { try await store.write([started("e")]) } }
        call.cancel()
        #expect(await call.value is CancellationError)
        try? await store.shutdown()
    }

    @Test func aBadURLIsOneClearErrorWithoutThePassword() async throws {
        let error = await thrownError {
            _ = try await PostgresEventStore.open(url: "postgres://user:secret@", logger: quietLogger)
        }
        let description = String(describing: try #require(error as? EventStoreError))
        #expect(description.contains("postgres://"))
        #expect(!description.contains("secret"))
    }

    /// The database closes the store's connection (as a restart does): the next read and the
    /// next transaction each succeed on a new connection, and nothing committed is lost.
    @Test func terminatedConnectionsAreReplacedOnTheNextCall() async throws {
        try await withDatabase(.postgres) { database in
            let url = try #require(Backend.postgresURL)
            let store = try await PostgresEventStore.open(
                url: url, searchPath: [try #require(database.schema)], logger: quietLogger, maxConnections: 1
            )
            do {
                try await store.migrate()
                try await store.write([started("e1"), chatRecord("e1", "before")])

                try await terminateConnection(of: store)
                #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["before"])

                try await terminateConnection(of: store)
                try await store.write([chatRecord("e1", "after")])
                #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["before", "after"])

                try await terminateConnection(of: store)
                try await store.ping()
                try await store.shutdown()
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
    }

    /// Ends the store's one pooled connection from another session, and waits until it is gone.
    private func terminateConnection(of store: PostgresEventStore) async throws {
        let pid = try #require(try await store.store.database.raw("SELECT pg_backend_pid() AS pid").first(decodingColumn: "pid", as: Int.self))
        // A literal: the function takes an integer, and a bound Int is sent as a bigint.
        try await postgresAdmin("SELECT pg_terminate_backend(\(unsafeRaw: String(pid)), 5000)")
    }
}

/// The pool reports failed connection attempts as errors; these tests cause them on purpose.
private let quietLogger: Logger = {
    var logger = Logger(label: "airwave.store.tests.reconnect")
    logger.logLevel = .critical
    return logger
}()

/// A local port nothing listens on (bound, then closed).
private func closedPort() throws -> Int {
    let listener = try SilentListener()
    let port = listener.port
    listener.close()
    return port
}

/// A TCP socket on 127.0.0.1 that the kernel accepts connections on (its backlog) but that never
/// reads or writes: a server that does not answer.
private final class SilentListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            closeSocket(fd)
            throw POSIXError(.EADDRINUSE)
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            closeSocket(fd)
            throw POSIXError(.EINVAL)
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        closeSocket(fd)
    }
}

private func closeSocket(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}
