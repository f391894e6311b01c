import Foundation
import Logging
import Testing
@testable import AirwaveStore

/// The rows nodes of a cluster share (PROTOCOL.md 8): heartbeats, event origins, and the
/// notifications that announce changes.
@Suite struct ClusterStoreTests {
    private func node(_ id: String, seen: EpochMillis, events: Int = 0) -> NodeRecord {
        NodeRecord(nodeID: id, url: "http://\(id).test:8000", startedAt: 1_000, lastSeen: seen, events: events, connections: 3)
    }

    private func origin(_ eventID: String, on nodeID: String, count: Int = 0, startedAt: EpochMillis = 2_000) -> OriginRecord {
        OriginRecord(eventID: eventID, nodeID: nodeID, hostUserID: "h-\(eventID)", hostUsername: "Host", mode: "audio",
                     participantCount: count, startedAt: startedAt)
    }

    /// A node is listed while its last heartbeat is inside the window; a later heartbeat
    /// replaces the row rather than adding one.
    @Test(arguments: Backend.allCases) func heartbeatsKeepANodeListedUntilTheyStop(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.heartbeat(node("a", seen: 10_000))
            try await store.heartbeat(node("b", seen: 10_000))
            try await store.heartbeat(node("a", seen: 16_000, events: 2))
            #expect(try await store.liveNodes(seenSince: 10_000).map(\.nodeID) == ["a", "b"])
            #expect(try await store.liveNodes(seenSince: 12_000) == [node("a", seen: 16_000, events: 2)])
            try await store.removeNode("a", at: 60_000)
            #expect(try await store.liveNodes(seenSince: 0).map(\.nodeID) == ["b"])
        }
    }

    /// Rows of nodes silent for a day go with the next heartbeat of any node, origins included.
    @Test(arguments: Backend.allCases) func nodesGoneForADayLeaveTheTable(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let day: EpochMillis = 86_400_000
            try await store.heartbeat(node("old", seen: 1_000))
            try await store.heartbeat(node("recent", seen: 2_000))
            try await store.publishOrigins([origin("e-old", on: "old"), origin("e-recent", on: "recent")], removed: [], nodeID: "old", at: 50_000)
            try await store.heartbeat(node("a", seen: 1_000 + day + 500))
            #expect(try await store.liveNodes(seenSince: 0).map(\.nodeID) == ["a", "recent"])
            #expect(try await store.liveNodes(seenSince: 0).map(\.nodeID) == ["a", "recent"])
            // The origin rows stay: they say where each event ran.
            #expect(try await store.originNode(of: "e-old")?.nodeID == "old")
            #expect(try await store.originNode(of: "e-old")?.node == nil)
        }
    }

    /// Origins are the directory across nodes: only those of live nodes count, a node replaces
    /// and removes only its own rows, and the origin of an event names its node.
    @Test(arguments: Backend.allCases) func originsOfLiveNodesMakeTheDirectory(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.heartbeat(node("a", seen: 10_000))
            try await store.heartbeat(node("dead", seen: 1_000))
            try await store.publishOrigins([origin("e1", on: "a"), origin("e2", on: "a", startedAt: 1_500)], removed: [], nodeID: "a", at: 50_000)
            try await store.publishOrigins([origin("e3", on: "dead")], removed: [], nodeID: "dead", at: 50_000)
            #expect(try await store.liveOrigins(seenSince: 5_000).map(\.eventID) == ["e2", "e1"])

            try await store.publishOrigins([origin("e1", on: "a", count: 7)], removed: ["e2", "e3"], nodeID: "a", at: 50_000)
            #expect(try await store.liveOrigins(seenSince: 5_000) == [origin("e1", on: "a", count: 7)])
            // "e3" belongs to another node: "a" cannot remove it.
            #expect(try await store.liveOrigins(seenSince: 0).map(\.eventID) == ["e1", "e3"])

            #expect(try await store.origin(of: "e1", seenSince: 5_000)?.nodeID == "a")
            #expect(try await store.origin(of: "e3", seenSince: 5_000) == nil)
            #expect(try await store.origin(of: "e9", seenSince: 0) == nil)

            // A host's live event, on live nodes only.
            #expect(try await store.liveOrigin(hostUserID: "h-e1", seenSince: 5_000)?.eventID == "e1")
            #expect(try await store.liveOrigin(hostUserID: "h-e3", seenSince: 5_000) == nil)
            #expect(try await store.liveOrigin(hostUserID: "h-e2", seenSince: 0) == nil)

            // An ended event has no origin any more, but its row says where it ran, and that it ended
            // (before its `events` row may say so).
            #expect(try await store.origin(of: "e2", seenSince: 0) == nil)
            #expect(try await store.originDeparture(of: "e2")?.endedAt != nil)
            #expect(try await store.originDeparture(of: "e1")?.endedAt == nil)
            #expect(try await store.originNode(of: "e2")?.nodeID == "a")
            #expect(try await store.originNode(of: "e2")?.node?.url == "http://a.test:8000")
            #expect(try await store.originNode(of: "e9") == nil)
            // A node that stops cleanly ends its events at once.
            try await store.removeNode("a", at: 60_000)
            #expect(try await store.liveOrigins(seenSince: 0).map(\.eventID) == ["e3"])
            #expect(try await store.originNode(of: "e1")?.nodeID == "a")
        }
    }

    /// A node that stops cleanly hands its live events over (PROTOCOL.md 8): their rows stay open
    /// on a node that is gone, so a host may resume them on another node; an ended event's row is
    /// ended. `interruptedOrigin` finds the handed-over one for its host.
    @Test(arguments: Backend.allCases) func aStoppedNodeLeavesItsLiveEventsToBeResumed(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("live"), started("over")])
            try await store.write([.eventEnded(eventID: "over", reason: "host_ended", at: 2_000)])
            try await store.heartbeat(node("a", seen: 10_000))
            try await store.publishOrigins([origin("live", on: "a"), origin("over", on: "a")], removed: [], nodeID: "a", at: 50_000)
            try await store.removeNode("a", at: 60_000)
            #expect(try await store.liveOrigins(seenSince: 0).map(\.eventID) == [])
            let resumable = try await store.interruptedOrigin(hostUserID: "h-live", seenSince: 0)
            // The node's row is gone; the row says when it was handed over, from which the grace runs.
            #expect(resumable?.origin.eventID == "live" && resumable?.origin.nodeID == "a")
            #expect(resumable?.departure == OriginDeparture(lastSeen: nil, handedOverAt: 60_000))
            #expect(try await store.originDeparture(of: "over") == OriginDeparture(lastSeen: nil, handedOverAt: nil, endedAt: 60_000))
            // Resumed on another node, the row is that node's and no longer handed over.
            try await store.heartbeat(node("b", seen: 70_000))
            try await store.publishOrigins([origin("live", on: "b")], removed: [], nodeID: "b", at: 70_000)
            #expect(try await store.originDeparture(of: "live") == OriginDeparture(lastSeen: 70_000, handedOverAt: nil))
            #expect(try await store.interruptedOrigin(hostUserID: "h-over", seenSince: 0) == nil)
        }
    }

    /// A node starting ends what a gone node left live, but not the events of live nodes.
    @Test(arguments: Backend.allCases) func startingEndsOnlyEventsOfGoneNodes(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("mine"), started("theirs"), started("orphan")])
            try await store.heartbeat(node("a", seen: 10_000))
            try await store.heartbeat(node("b", seen: 10_000))
            try await store.publishOrigins([origin("theirs", on: "b")], removed: [], nodeID: "b", at: 50_000)
            try await store.publishOrigins([origin("mine", on: "a")], removed: [], nodeID: "a", at: 50_000)

            #expect(try await store.endInterruptedEvents(reason: "node_restart", at: 9_000, sparing: ["b"]) == 2)
            #expect(try await store.event(id: "theirs")?.isLive == true)
            #expect(try await store.event(id: "mine")?.endReason == "node_restart")
            #expect(try await store.event(id: "orphan")?.endReason == "node_restart")
            #expect(try await store.liveOrigins(seenSince: 0).map(\.eventID) == ["theirs"])
        }
    }

    /// Notifications reach a listener on the same database, in order; after the database drops
    /// its connection, `.listening` says it listens again (what was sent meanwhile is lost).
    @Test func notificationsReachAListener() async throws {
        try await withDatabase(.postgres) { database in
            let store = try #require(try await database.open() as? PostgresEventStore)
            let listener = store.makeNotificationListener(channels: ["airwave_test_a", "airwave_test_b"], logger: Logger(label: "test"))
            let running = Task { await listener.run() }
            var received = listener.notifications.makeAsyncIterator()
            #expect(await received.next() == .listening)
            try await store.notify(channel: "airwave_test_a", payload: "ping")
            #expect(await received.next() == .message(channel: "airwave_test_a", payload: "ping"))
            try await store.notify(channel: "airwave_test_b", payload: "one")
            try await store.notify(channel: "airwave_test_a", payload: "two")
            #expect(await received.next() == .message(channel: "airwave_test_b", payload: "one"))
            #expect(await received.next() == .message(channel: "airwave_test_a", payload: "two"))

            // The database drops the listening connection (as a restart does).
            try await postgresAdmin("""
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN airwave_test_%'
                """)
            #expect(await received.next() == .listening)
            try await store.notify(channel: "airwave_test_a", payload: "after")
            #expect(await received.next() == .message(channel: "airwave_test_a", payload: "after"))
            running.cancel()
            await running.value
            try await store.shutdown()
        }
    }
}
