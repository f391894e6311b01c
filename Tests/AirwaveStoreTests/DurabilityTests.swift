import Testing
import AirwaveStore
import AirwaveTestSupport

@Suite struct DurabilityTests {
    /// When `write` returns, the rows are in the database file (its WAL), not only in this
    /// connection: a second connection to the same file, opened while the first is still open and
    /// never shut down cleanly, reads them. That is what a SIGKILL right after `write` leaves behind.
    @Test(arguments: Backend.allCases) func committedRowsAreInTheFileBeforeShutdown(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let writer = try await database.open()
            try await writer.migrate()
            try await writer.write([
                started("e1"),
                .participantJoined(
                    eventID: "e1", connectionID: 9, userID: "u", username: "U",
                    role: .host, verified: true, at: 1_100),
                chatRecord("e1", "durable"),
            ])

            let reader = try await database.open()
            let event = try await reader.event(id: "e1")
            let chat = try await reader.recentChat(eventID: "e1", limit: 10)
            // The other connection writes too (WAL allows one writer at a time, readers alongside).
            try await reader.write([chatRecord("e1", "from reader")])
            let seenByWriter = try await writer.recentChat(eventID: "e1", limit: 10)
            try await reader.shutdown()
            try await writer.shutdown()

            #expect(event?.participants.map(\.userID) == ["u"])
            #expect(chat.map(\.message) == ["durable"])
            #expect(seenByWriter.map(\.message) == ["durable", "from reader"])
        }
    }
}
