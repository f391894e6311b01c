import AirwaveProtocol
import AirwaveStore
import AirwaveTestSupport
import Foundation
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import AirwaveServer

/// Listening rooms across nodes (issue 15): two servers on one PostgreSQL database, each
/// following the other's room notifications, with members of one room on both.
@Suite struct ClusterRoomTests {
    /// One member's socket: what it received, in order, and a way to send.
    final class Member {
        let name: String
        private let received = NIOLockedValueBox<[JSONValue]>([])
        private let arrivals: AsyncStream<Void>.Continuation
        private var arrived: AsyncStream<Void>.Iterator
        private let outgoing: AsyncStream<String>.Continuation
        private let task: Task<Void, any Error>

        init(_ name: String, url: String) {
            self.name = name
            let (arrivalStream, arrivals) = AsyncStream.makeStream(of: Void.self)
            let (outgoingStream, outgoing) = AsyncStream.makeStream(of: String.self)
            self.arrivals = arrivals
            self.outgoing = outgoing
            arrived = arrivalStream.makeAsyncIterator()
            let received = self.received
            task = Task {
                _ = try await WebSocketClient.connect(url: url, logger: Logger(label: "member")) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: 1 << 20) {
                                guard case .text(let text) = message, let json = try? JSONParser.parse(text) else { continue }
                                received.withLockedValue { $0.append(json) }
                                arrivals.yield()
                            }
                        }
                        group.addTask {
                            for await text in outgoingStream { try await outbound.write(.text(text)) }
                        }
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
                arrivals.finish()
            }
        }

        func send(_ message: JSONValue) { outgoing.yield(message.jsonText) }

        /// Everything received so far.
        var messages: [JSONValue] { received.withLockedValue { $0 } }

        /// What every member of the room receives: the relays, without room_state and errors.
        var relays: [JSONValue] { messages.filter { $0["type"] != "room_state" && $0["type"] != "error" } }

        /// Waits until `done` holds for what was received (or the socket ends).
        func wait(_ what: String, until done: ([JSONValue]) -> Bool) async throws {
            while !done(messages) {
                let next: Void? = await arrived.next()
                if next == nil, !done(messages) { throw TestFailure("\(name): the socket ended before \(what); got \(messages)") }
            }
        }

        func close() async {
            outgoing.finish()
            task.cancel()
            _ = try? await task.value
        }
    }

    static func fresh(_ base: String) async throws -> String {
        let name = "airwave_rooms_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresEventStore.open(url: base, logger: Logger(label: "admin"), maxConnections: 1)
        do {
            try await admin.store.database.raw("CREATE DATABASE \(ident: name)").run()
            try await admin.shutdown()
        } catch {
            try? await admin.shutdown()
            throw error
        }
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + name
    }

    /// What a test may do to the notifications of node B.
    struct Notifications: Sendable {
        /// While set, node B receives none (it misses them, as after a lost LISTEN connection).
        let holdB = NIOLockedValueBox(false)
        /// Hands node B a payload directly.
        let feedB: AsyncStream<String>.Continuation
    }

    /// Two servers on one fresh database, each following the room notifications (what a node of
    /// a cluster does with its LISTEN connection), then `body`.
    static func withTwoNodes(_ body: (TestServer, TestServer) async throws -> Void) async throws {
        try await withTwoNodes { a, b, _, _ in try await body(a, b) }
    }

    static func withTwoNodes(_ body: (TestServer, TestServer, Notifications, PostgresEventStore) async throws -> Void) async throws {
        guard let base = ProcessInfo.processInfo.environment["AIRWAVE_TEST_POSTGRES_URL"], !base.isEmpty else {
            try Test.cancel("needs AIRWAVE_TEST_POSTGRES_URL (tools/test sets it)")
        }
        let url = try await fresh(base)
        var quiet = Logger(label: "listener")
        quiet.logLevel = .warning
        let listenerStore = try await PostgresEventStore.open(url: url, logger: quiet, maxConnections: 1)
        defer { Task { try? await listenerStore.shutdown() } }
        try await TestServer.with(configure: { $0.databaseURL = url }) { a in
            try await TestServer.with(configure: { $0.databaseURL = url }) { b in
                let listener = listenerStore.makeNotificationListener(channels: [SQLEventStore.roomLogChannel], logger: quiet)
                let (toA, feedA) = AsyncStream.makeStream(of: String.self)
                let (toB, feedB) = AsyncStream.makeStream(of: String.self)
                let (listening, listened) = AsyncStream.makeStream(of: Void.self)
                let notifications = Notifications(feedB: feedB)
                let tasks = [
                    Task { await listener.run() },
                    Task {
                        for await notification in listener.notifications {
                            switch notification {
                            case .message(_, let payload):
                                feedA.yield(payload)
                                if !notifications.holdB.withLockedValue({ $0 }) { feedB.yield(payload) }
                            case .listening:
                                listened.yield()
                            }
                        }
                    },
                    Task { await a.server.rooms.follow(toA) },
                    Task { await b.server.rooms.follow(toB) },
                ]
                var iterator = listening.makeAsyncIterator()
                await iterator.next()
                do {
                    try await body(a, b, notifications, listenerStore)
                } catch {
                    for task in tasks { task.cancel() }
                    feedA.finish()
                    feedB.finish()
                    throw error
                }
                for task in tasks { task.cancel() }
                feedA.finish()
                feedB.finish()
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func aNodeBehindWhatTheLogKeepsReloadsTheRoomAndSendsItsMembersRoomState() async throws {
        try await Self.withTwoNodes { a, b, notifications, database in
            let a1 = try await Self.join(a, "a1", token: try a.token("u1", username: "Uma"))
            let b1 = try await Self.join(b, "b1", token: try b.token("u2", username: "Ugo"))
            notifications.holdB.withLockedValue { $0 = true }
            a1.send(["type": "song_queued", "song_id": "s1"])
            a1.send(["type": "chat_message", "message": "while b was away"])
            try await a1.wait("its two relays") { $0.filter { $0["type"] == "song_queued" || $0["type"] == "chat_message" }.count == 2 }
            // The log no longer reaches back to node B's last entry (as once pruned past it).
            try await database.store.database.raw("DELETE FROM room_log").run()
            notifications.holdB.withLockedValue { $0 = false }
            // After a lost LISTEN connection, the node re-reads every room it holds.
            notifications.feedB.yield(ClusterNode.everyRoom)
            try await b1.wait("a second room_state") { $0.filter { $0["type"] == "room_state" }.count == 2 }
            let state = try #require(b1.messages.last { $0["type"] == "room_state" })
            #expect(Self.items(state["queue"]).compactMap { $0["song_id"]?.stringValue } == ["s1"])
            #expect(Self.items(state["chat_history"]).compactMap { $0["message"]?.stringValue } == ["while b was away"])
            // What it missed came as the new state, not as relays.
            #expect(b1.relays.isEmpty)
            // And the room goes on from there for both.
            b1.send(["type": "song_vote", "song_id": "s1"])
            for member in [a1, b1] { try await member.wait("the vote") { $0.contains { $0["type"] == "song_vote" } } }
            #expect(b1.relays.last?["votes"] == 2)
            await a1.close()
            await b1.close()
        }
    }

    @Test(.timeLimit(.minutes(2))) func aTurnTheStoreRefusesReachesNoMemberAndTellsTheSender() async throws {
        try await Self.withTwoNodes { a, b, _, database in
            let a1 = try await Self.join(a, "a1", token: try a.token("u1", username: "Uma"))
            let b1 = try await Self.join(b, "b1")
            a1.send(["type": "song_queued", "song_id": "s1"])
            for member in [a1, b1] { try await member.wait("the first song") { $0.contains { $0["type"] == "song_queued" } } }
            // The log's table is gone: no turn can commit.
            try await database.store.database.raw("DROP TABLE room_log").run()
            a1.send(["type": "chat_message", "message": "never stored"])
            try await a1.wait("server_busy") { $0.contains { $0["code"] == "server_busy" } }
            let refusal = try #require(a1.messages.first { $0["code"] == "server_busy" })
            #expect(refusal["details"] == ["type": "chat_message", "reason": "store"])
            // Nothing of it reached anyone: a member joining on the other node still gets its
            // room_state (joins need no turn to succeed), and no chat was relayed.
            let late = try await Self.join(b, "late")
            #expect(late.messages.count == 1)
            #expect(a1.relays.map { $0["type"] } == ["song_queued"])
            #expect(b1.relays.map { $0["type"] } == ["song_queued"])
            for member in [a1, b1, late] { await member.close() }
        }
    }

    @Test(.timeLimit(.minutes(2))) func aRoomDeletedAndUsedAgainElsewhereIsReloadedOnceThenFollowed() async throws {
        try await Self.withTwoNodes { a, b, _, database in
            let b1 = try await Self.join(b, "b1")
            b1.send(["type": "user_joined"])
            try await b1.wait("its user_joined") { $0.contains { $0["type"] == "user_joined" } }
            // Another node deleted the room, holding nothing (as its last member there left).
            try await database.store.database.raw("DELETE FROM rooms WHERE room_id = 'r1'").run()
            // Used again on node A: its numbers start again at 1.
            let a1 = try await Self.join(a, "a1", token: try a.token("u1", username: "Uma"))
            a1.send(["type": "user_joined"])
            try await b1.wait("a second room_state") { $0.filter { $0["type"] == "room_state" }.count == 2 }
            a1.send(["type": "song_queued", "song_id": "s1"])
            try await b1.wait("the song") { $0.contains { $0["type"] == "song_queued" } }
            // Reloaded once, then followed entry by entry. A1's join is either in the reloaded
            // state or, when B reloaded before reading it (a loaded box), the first entry followed.
            let types = b1.messages.map { $0["type"]?.stringValue ?? "" }
            #expect(types == ["room_state", "user_joined", "room_state", "song_queued"]
                || types == ["room_state", "user_joined", "room_state", "user_joined", "song_queued"], "\(types)")
            await a1.close()
            await b1.close()
        }
    }

    /// The elements of a JSON array (none for anything else).
    static func items(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let elements)? = value { elements } else { [] }
    }

    static func join(_ server: TestServer, _ name: String, token: String? = nil) async throws -> Member {
        let member = Member(name, url: server.url("/ws/session/r1/") + (token.map { "?token=\($0)" } ?? ""))
        try await member.wait("room_state") { $0.contains { $0["type"] == "room_state" } }
        return member
    }

    @Test(.timeLimit(.minutes(2))) func membersOnTwoNodesSeeEveryChangeInOneOrderAndOneUserVotesOnce() async throws {
        try await Self.withTwoNodes { a, b in
            let a1 = try await Self.join(a, "a1", token: try a.token("u1", username: "Uma"))
            let a2 = try await Self.join(a, "a2")
            let b1 = try await Self.join(b, "b1", token: try b.token("u2", username: "Ugo"))
            let b2 = try await Self.join(b, "b2", token: try b.token("u1", username: "Uma"))
            let members = [a1, a2, b1, b2]

            // Interleaved from both nodes at once: 14 changes whose success does not depend on order.
            a1.send(["type": "song_queued", "song_id": "s1"])
            b1.send(["type": "song_queued", "song_id": "s2"])
            b2.send(["type": "song_queued", "song_id": "s3"])
            for i in 1...3 {
                a1.send(["type": "chat_message", "message": .string("a1 says \(i)")])
                b1.send(["type": "chat_message", "message": .string("b1 says \(i)")])
            }
            a2.send(["type": "user_joined"])
            a2.send(["type": "chat_message", "message": "a2 says 1"])
            b2.send(["type": "playback_changed", "paused": false, "song_progress": 5])
            a2.send(["type": "chat_message", "message": "a2 says 2"])
            b2.send(["type": "chat_message", "message": "b2 says 1"])
            for member in members { try await member.wait("14 relays") { $0.filter { $0["type"] != "room_state" && $0["type"] != "error" }.count >= 14 } }

            // The same verified user votes for s2 on both nodes at once: one vote counts.
            a1.send(["type": "song_vote", "song_id": "s2"])
            b2.send(["type": "song_vote", "song_id": "s2"])
            a2.send(["type": "song_vote", "song_id": "s2"])
            for member in members { try await member.wait("16 relays") { $0.filter { $0["type"] != "room_state" && $0["type"] != "error" }.count >= 16 } }
            try await a1.wait("an answer to its vote") { messages in
                messages.contains { $0["type"] == "song_vote" && $0["user_id"] == "u1" } || messages.contains { $0["code"] == "already_voted" }
            }
            try await b2.wait("an answer to its vote") { messages in
                messages.contains { $0["code"] == "already_voted" } || messages.filter { $0["type"] == "song_vote" && $0["user_id"] == "u1" }.count > 0
            }

            let order = a1.relays
            for member in members { #expect(member.relays == order, "\(member.name) saw another order") }
            #expect(order.count == 16)
            // Each sender's messages keep their order, and the votes come out as one count.
            #expect(order.compactMap { $0["message"]?.stringValue }.filter { $0.hasPrefix("a1") } == ["a1 says 1", "a1 says 2", "a1 says 3"])
            #expect(order.compactMap { $0["message"]?.stringValue }.filter { $0.hasPrefix("b1") } == ["b1 says 1", "b1 says 2", "b1 says 3"])
            let votes = order.filter { $0["type"] == "song_vote" }
            #expect(votes.filter { $0["user_id"] == "u1" }.count == 1)
            #expect(votes.compactMap { $0["votes"]?.intValue } == [2, 3])
            let refusals = [a1, b2].flatMap { $0.messages.filter { $0["code"] == "already_voted" } }
            #expect(refusals.count == 1)

            // A joiner on either node sees the state all of it left.
            let late = try await Self.join(b, "late")
            let state = try #require(late.messages.first { $0["type"] == "room_state" })
            let queue = try #require(state["queue"].flatMap { if case .array(let songs) = $0 { songs } else { nil } })
            #expect(queue.first?["song_id"] == "s2")
            #expect(queue.first?["votes"] == 3)
            #expect(queue.count == 3)
            let history = try #require(state["chat_history"].flatMap { if case .array(let chat) = $0 { chat } else { nil } })
            #expect(history.map { $0["message"] } == order.filter { $0["type"] == "chat_message" }.map { $0["message"] })
            for member in members + [late] { await member.close() }
        }
    }
}
