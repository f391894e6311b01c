import Testing
import AirwaveStore
import AirwaveTestSupport

@Suite struct TransactionTests {
    @Test(arguments: Backend.allCases) func duplicateEventRollsBackTheWholeBatch(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("e1"), chatRecord("e1", "kept")])

            let error = await thrownError {
                try await store.write([
                    started("e2"),
                    .participantJoined(
                        eventID: "e2", connectionID: 1, userID: "u", username: "U",
                        role: .host, verified: true, at: 1_100),
                    chatRecord("e1", "lost"),
                    .modeChanged(eventID: "e1", mode: "changed", at: 1_200),
                    started("e1"),  // primary key violation
                ])
            }
            #expect(error != nil)

            #expect(try await store.event(id: "e2") == nil)
            #expect(try await store.event(id: "e1")?.mode == "open")
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["kept"])

            // The connection is not left inside a transaction: the next batch commits.
            try await store.write([started("e3"), chatRecord("e1", "after")])
            #expect(try await store.event(id: "e3") != nil)
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["kept", "after"])
        }
    }

    @Test(arguments: Backend.allCases) func recordForUnknownEventRollsBackTheBatch(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("e1")])
            let joinError = await thrownError {
                try await store.write([
                    chatRecord("e1", "lost"),
                    .participantJoined(
                        eventID: "missing", connectionID: 1, userID: "u", username: "U",
                        role: .listener, verified: false, at: 1),
                ])
            }
            #expect(joinError != nil)
            let chatError = await thrownError {
                try await store.write([
                    .participantJoined(
                        eventID: "e1", connectionID: 1, userID: "u", username: "U",
                        role: .listener, verified: false, at: 1),
                    chatRecord("missing", "orphan"),
                ])
            }
            #expect(chatError != nil)
            #expect(try await store.recentChat(eventID: "e1", limit: 10).isEmpty)
            #expect(try await store.event(id: "e1")?.participants.isEmpty == true)
            #expect(try await store.recentChat(eventID: "missing", limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func concurrentBatchesAreEachAtomicAndWhole(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("e1")])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<20 {
                    group.addTask {
                        let records = (0..<10).map { n in chatRecord("e1", "\(batch):\(n)") }
                        try await store.write(records)
                    }
                    group.addTask {
                        _ = try await store.recentChat(eventID: "e1", limit: 5)
                    }
                }
                try await group.waitForAll()
            }
            let chat = try await store.recentChat(eventID: "e1", limit: 500)
            #expect(chat.count == 200)
            // Batches did not interleave: each batch's ten messages are consecutive and in order.
            for start in stride(from: 0, to: 200, by: 10) {
                let slice = chat[start..<start + 10].map(\.message)
                let batch = try #require(slice.first?.split(separator: ":").first)
                #expect(slice == (0..<10).map { "\(batch):\($0)" })
            }
        }
    }

    @Test(arguments: Backend.allCases) func emptyBatchIsANoOp(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([])
            #expect(try await store.endInterruptedEvents(reason: "none", at: 1) == 0)
        }
    }

    @Test(arguments: Backend.allCases) func shutdownStopsTheStoreAndIsIdempotent(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let store = try await database.open()
            try await store.migrate()
            try await store.ping()
            try await store.shutdown()
            try await store.shutdown()
            #expect(await thrownError { try await store.ping() } as? EventStoreError == .closed)
            #expect(await thrownError { try await store.write([started("x")]) } as? EventStoreError == .closed)
            #expect(await thrownError { _ = try await store.event(id: "x") } as? EventStoreError == .closed)
        }
    }
}
