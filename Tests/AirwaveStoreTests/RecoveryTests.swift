import Testing
import AirwaveStore
import AirwaveTestSupport

@Suite struct RecoveryTests {
    @Test(arguments: Backend.allCases) func endInterruptedEventsEndsOnlyLiveOnes(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.endInterruptedEvents(reason: "crash", at: 1) == 0)
            try await store.write([
                started("live-1"), started("live-2"), started("done"),
                .participantJoined(
                    eventID: "live-1", connectionID: 1, userID: "a", username: "A",
                    role: .host, verified: true, at: 1_100),
                .participantJoined(
                    eventID: "live-1", connectionID: 2, userID: "b", username: "B",
                    role: .listener, verified: false, at: 1_200),
                .participantLeft(eventID: "live-1", connectionID: 2, at: 1_300),
                .participantJoined(
                    eventID: "done", connectionID: 3, userID: "c", username: "C",
                    role: .host, verified: true, at: 1_100),
                .eventEnded(eventID: "done", reason: "host ended", at: 3_000),
            ])

            #expect(try await store.endInterruptedEvents(reason: "server restarted", at: 9_000) == 2)

            for id in ["live-1", "live-2"] {
                let event = try #require(try await store.event(id: id))
                #expect(!event.isLive)
                #expect(event.endedAt == 9_000)
                #expect(event.endReason == "server restarted")
            }
            let live1 = try #require(try await store.event(id: "live-1"))
            #expect(live1.participants.map(\.leftAt) == [9_000, 1_300])
            let done = try #require(try await store.event(id: "done"))
            #expect(done.endedAt == 3_000 && done.endReason == "host ended")
            #expect(done.participants.map(\.leftAt) == [3_000])

            #expect(try await store.endInterruptedEvents(reason: "again", at: 10_000) == 0)
            #expect(try await store.event(id: "live-2")?.endReason == "server restarted")
        }
    }

    @Test(arguments: Backend.allCases) func reopeningTheFileReturnsTheSameData(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in

            let first = try await database.open()
            try await first.migrate()
            try await first.write([
                started("e1", at: 100),
                .participantJoined(
                    eventID: "e1", connectionID: 1, userID: "a", username: "Ä 🎧",
                    role: .host, verified: true, at: 101),
                chatRecord("e1", "one"), chatRecord("e1", "two"),
            ])
            let eventBefore = try #require(try await first.event(id: "e1"))
            let chatBefore = try await first.recentChat(eventID: "e1", limit: 10)
            try await first.shutdown()

            let second = try await database.open()
            do {
                try await second.migrate()
                #expect(try await second.schemaVersion() == SQLEventStore.latestSchemaVersion)
                #expect(try await second.event(id: "e1") == eventBefore)
                #expect(try await second.recentChat(eventID: "e1", limit: 10) == chatBefore)
                #expect(chatBefore.map(\.message) == ["one", "two"])

                // The process "crashed" with e1 live: recovery at start ends it.
                #expect(try await second.endInterruptedEvents(reason: "restart", at: 500) == 1)
                try await second.write([chatRecord("e1", "three")])
                let chatAfter = try await second.recentChat(eventID: "e1", limit: 10)
                #expect(chatAfter.map(\.message) == ["one", "two", "three"])
                let lastBefore = try #require(chatBefore.last?.id)
                #expect((chatAfter.last?.id ?? 0) > lastBefore)
                try await second.shutdown()
            } catch {
                try? await second.shutdown()
                throw error
            }

            let third = try await database.open()
            let ended = try await third.event(id: "e1")
            try await third.shutdown()
            #expect(ended?.endReason == "restart")
            #expect(ended?.participants.first?.leftAt == 500)
        }
    }

    @Test func inMemoryStoreWorks() async throws {
        let store = try await SQLiteEventStore.openInMemory(logger: testLogger)
        try await store.migrate()
        try await store.write([started("m"), chatRecord("m", "hi")])
        let event = try await store.event(id: "m")
        let chat = try await store.recentChat(eventID: "m", limit: 1)
        try await store.shutdown()
        #expect(store.path == nil)
        #expect(event?.hostUserID == "host-m")
        #expect(chat.map(\.message) == ["hi"])
    }
}
