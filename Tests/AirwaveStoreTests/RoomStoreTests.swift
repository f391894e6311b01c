import Foundation
import Testing
import AirwaveStore
import AirwaveTestSupport

func song(_ id: String, _ voters: [String] = [], at: EpochMillis = 1_000) -> StoredSong {
    StoredSong(songID: id, voters: voters, timeAdded: at)
}

func roomChatRecord(_ roomID: String, _ text: String, user: String = "u1", at: EpochMillis = 2_000) -> RoomRecord {
    .chat(StoredRoomChat(roomID: roomID, userID: user, name: "Name \(user)", message: text, sentAt: at))
}

@Suite struct RoomStoreTests {
    @Test(arguments: Backend.allCases) func createRoomOnceThenRefusesTheId(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "r1", hostUserID: "alice", at: 100))
            #expect(try await store.createRoom(id: "r1", hostUserID: "bob", at: 200) == false)
            #expect(try await store.createRoom(id: "r1", hostUserID: nil, at: 300) == false)

            let room = try #require(try await store.room(id: "r1"))
            #expect(room == StoredRoom(roomID: "r1", hostUserID: "alice", createdAt: 100))
            #expect(room.state == StoredRoomState())
            #expect(room.closedAt == nil)

            // A room first made by a plain connection has no host and cannot be claimed later.
            try await store.writeRooms([roomChatRecord("plain", "hi", at: 50)])
            #expect(try await store.createRoom(id: "plain", hostUserID: "mallory", at: 60) == false)
            let plain = try #require(try await store.room(id: "plain"))
            #expect(plain.hostUserID == nil)
            #expect(plain.createdAt == 50)

            // A host-less room created through createRoom is possible too.
            #expect(try await store.createRoom(id: "r2", hostUserID: nil, at: 400))
            #expect(try await store.room(id: "r2")?.hostUserID == nil)
        }
    }

    @Test(arguments: Backend.allCases) func unknownRoomIsNil(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.room(id: "nope") == nil)
            #expect(try await store.roomChat(roomID: "nope", limit: 10).isEmpty)
            // Closing a room that was never stored does not create it.
            try await store.writeRooms([.closed(roomID: "nope", at: 5)])
            #expect(try await store.room(id: "nope") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func stateRoundTripsWithUnicodeSongIDs(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let state = StoredRoomState(
                queue: [
                    song("spotify:track:Ünïcødé-🎵", ["alice", "bob"], at: 1_001),
                    song("曲/歌 \"quoted\" \\ back\\slash", ["carol"], at: 1_002),
                    song("autoplay-😀", [], at: 1_003),
                ],
                currentSong: "ÅÄÖ — ナウ・プレイング",
                playback: StoredPlayback(
                    percentage: 42.125, paused: true, songProgress: 61_234, songLength: 215_000, at: 1_500)
            )
            #expect(try await store.createRoom(id: "r1", hostUserID: "alice", at: 100))
            try await store.writeRooms([.state(roomID: "r1", state, at: 1_500)])

            let room = try #require(try await store.room(id: "r1"))
            #expect(room.state == state)
            #expect(room.state.queue.map { $0.voters.count } == [2, 1, 0])
            #expect(room.hostUserID == "alice")
            #expect(room.createdAt == 100)

            // Optional playback fields stay nil; a state without playback has none.
            let sparse = StoredRoomState(
                queue: [], currentSong: nil, playback: StoredPlayback(paused: false, at: 7))
            try await store.writeRooms([.state(roomID: "r2", sparse, at: 7)])
            let r2 = try #require(try await store.room(id: "r2"))
            #expect(r2.state == sparse)
            #expect(r2.state.playback?.percentage == nil && r2.state.playback?.songProgress == nil)
            #expect(r2.hostUserID == nil)
            #expect(r2.createdAt == 7)
        }
    }

    @Test(arguments: Backend.allCases) func severalStatesInOneBatchLastWins(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let first = StoredRoomState(queue: [song("a", ["u1"])])
            let second = StoredRoomState(queue: [song("a", ["u1", "u2"]), song("b", ["u2"])])
            let third = StoredRoomState(queue: [song("b", ["u2"])], currentSong: "a")
            let other = StoredRoomState(currentSong: "x")
            try await store.writeRooms([
                .state(roomID: "r1", first, at: 10),
                roomChatRecord("r1", "between", at: 11),
                .state(roomID: "r1", second, at: 12),
                .state(roomID: "r2", other, at: 13),
                .state(roomID: "r1", third, at: 14),
            ])
            let r1 = try #require(try await store.room(id: "r1"))
            #expect(r1.state == third)
            // The room was created by its first record even though that state was superseded.
            #expect(r1.createdAt == 10)
            #expect(try await store.room(id: "r2")?.state == other)
            #expect(try await store.roomChat(roomID: "r1", limit: 10).map(\.message) == ["between"])

            // A later batch replaces the state again.
            try await store.writeRooms([.state(roomID: "r1", first, at: 20)])
            #expect(try await store.room(id: "r1")?.state == first)
        }
    }

    @Test(arguments: Backend.allCases) func stateAfterACloseInTheSameBatchIsTheNewState(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let before = StoredRoomState(queue: [song("old", ["u1"])], currentSong: "old")
            let after = StoredRoomState(queue: [song("new", ["u2"])])
            try await store.writeRooms([
                .state(roomID: "r1", before, at: 10),
                roomChatRecord("r1", "old chat", at: 11),
                .closed(roomID: "r1", at: 12),
                .state(roomID: "r1", after, at: 13),
                roomChatRecord("r1", "new chat", at: 14),
            ])
            let room = try #require(try await store.room(id: "r1"))
            #expect(room.state == after)
            #expect(room.closedAt == 12)
            #expect(room.createdAt == 10)
            #expect(try await store.roomChat(roomID: "r1", limit: 10).map(\.message) == ["new chat"])

            // And a close after the last state wins over it.
            try await store.writeRooms([
                .state(roomID: "r1", before, at: 20),
                .closed(roomID: "r1", at: 21),
            ])
            let closed = try #require(try await store.room(id: "r1"))
            #expect(closed.state == StoredRoomState())
            #expect(closed.closedAt == 21)
        }
    }

    @Test(arguments: Backend.allCases) func chatIsOldestFirstLimitedAndPerRoom(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "r1", hostUserID: "alice", at: 1))
            try await store.writeRooms((1...7).map { roomChatRecord("r1", "m\($0)", user: "u\($0 % 2)", at: EpochMillis(100 + $0)) })
            try await store.writeRooms([roomChatRecord("r2", "elsewhere"), roomChatRecord("r1", "m8", at: 108)])

            let all = try await store.roomChat(roomID: "r1", limit: 100)
            #expect(all.map(\.message) == (1...8).map { "m\($0)" })
            #expect(all.map(\.sentAt) == (1...8).map { EpochMillis(100 + $0) })
            let ids = all.compactMap(\.id)
            #expect(ids.count == 8 && ids == ids.sorted() && Set(ids).count == 8)
            #expect(all.allSatisfy { $0.roomID == "r1" })
            #expect(all[0] == StoredRoomChat(id: ids[0], roomID: "r1", userID: "u1", name: "Name u1", message: "m1", sentAt: 101))

            let last3 = try await store.roomChat(roomID: "r1", limit: 3)
            #expect(last3.map(\.message) == ["m6", "m7", "m8"])
            #expect(try await store.roomChat(roomID: "r1", limit: 0).isEmpty)
            #expect(try await store.roomChat(roomID: "r1", limit: -1).isEmpty)
            #expect(try await store.roomChat(roomID: "r2", limit: 10).map(\.message) == ["elsewhere"])
            // The chat record's room was created without a host.
            #expect(try await store.room(id: "r2")?.hostUserID == nil)
            // The host stays the host: chat never touches an existing room.
            #expect(try await store.room(id: "r1")?.hostUserID == "alice")
        }
    }

    @Test(arguments: Backend.allCases) func closeClearsStateAndChatAndTheRoomCanBeUsedAgain(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "r1", hostUserID: "alice", at: 1))
            let state = StoredRoomState(
                queue: [song("s1", ["alice"])], currentSong: "s0",
                playback: StoredPlayback(percentage: 10, paused: false, at: 5))
            try await store.writeRooms([
                .state(roomID: "r1", state, at: 5),
                roomChatRecord("r1", "one", at: 6),
                roomChatRecord("r1", "two", at: 7),
                roomChatRecord("r2", "other room", at: 8),
            ])
            try await store.writeRooms([.closed(roomID: "r1", at: 9)])

            let closed = try #require(try await store.room(id: "r1"))
            #expect(closed.state == StoredRoomState())
            #expect(closed.state.isEmpty)
            #expect(closed.closedAt == 9)
            #expect(closed.hostUserID == "alice")  // still the host's room
            #expect(closed.createdAt == 1)
            #expect(try await store.roomChat(roomID: "r1", limit: 100).isEmpty)
            #expect(try await store.roomChat(roomID: "r2", limit: 100).map(\.message) == ["other room"])
            #expect(try await store.createRoom(id: "r1", hostUserID: "bob", at: 10) == false)

            // Used again: new state and chat show, the old chat does not come back.
            let again = StoredRoomState(queue: [song("s9", ["bob"], at: 11)])
            try await store.writeRooms([.state(roomID: "r1", again, at: 11), roomChatRecord("r1", "three", at: 12)])
            let reused = try #require(try await store.room(id: "r1"))
            #expect(reused.state == again)
            #expect(reused.closedAt == 9)
            #expect(try await store.roomChat(roomID: "r1", limit: 100).map(\.message) == ["three"])

            // Closing again moves closedAt and clears the new chat too.
            try await store.writeRooms([.closed(roomID: "r1", at: 20)])
            #expect(try await store.room(id: "r1")?.closedAt == 20)
            #expect(try await store.roomChat(roomID: "r1", limit: 100).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func roomsSurviveARestart(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let state = StoredRoomState(
                queue: [song("ü-1", ["a", "b"], at: 3), song("ü-2", [], at: 4)], currentSong: "ü-0",
                playback: StoredPlayback(percentage: nil, paused: true, songProgress: 1_234, songLength: 9_999, at: 6))

            let first = try await database.open()
            try await first.migrate()
            #expect(try await first.createRoom(id: "hosted", hostUserID: "alice", at: 1))
            try await first.writeRooms([
                .state(roomID: "hosted", state, at: 6),
                roomChatRecord("hosted", "before restart", at: 7),
                roomChatRecord("plain", "hello", user: "anon", at: 8),
                roomChatRecord("gone", "cleared", at: 8),
                .closed(roomID: "gone", at: 9),
            ])
            let hostedBefore = try await first.room(id: "hosted")
            let plainBefore = try await first.room(id: "plain")
            let goneBefore = try await first.room(id: "gone")
            let chatBefore = try await first.roomChat(roomID: "hosted", limit: 100)
            try await first.shutdown()

            let second = try await database.open()
            do {
                try await second.migrate()
                let hosted = try #require(try await second.room(id: "hosted"))
                #expect(hosted == hostedBefore)
                #expect(hosted == StoredRoom(roomID: "hosted", hostUserID: "alice", createdAt: 1, state: state))
                #expect(try await second.room(id: "plain") == plainBefore)
                #expect(plainBefore?.hostUserID == nil)
                #expect(try await second.room(id: "gone") == goneBefore)
                #expect(goneBefore?.closedAt == 9)
                let chat = try await second.roomChat(roomID: "hosted", limit: 100)
                #expect(chat == chatBefore)
                #expect(chat.map(\.message) == ["before restart"])
                #expect(try await second.roomChat(roomID: "plain", limit: 100).map(\.userID) == ["anon"])
                #expect(try await second.roomChat(roomID: "gone", limit: 100).isEmpty)

                // Ids keep increasing after the restart.
                try await second.writeRooms([roomChatRecord("hosted", "after restart", at: 20)])
                let after = try await second.roomChat(roomID: "hosted", limit: 100)
                #expect(after.map(\.message) == ["before restart", "after restart"])
                #expect((after[1].id ?? 0) > (after[0].id ?? .max))
                try await second.shutdown()
            } catch {
                try? await second.shutdown()
                throw error
            }
        }
    }

    @Test(arguments: Backend.allCases) func failingRecordRollsBackTheWholeRoomBatch(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "r1", hostUserID: "alice", at: 1))
            let kept = StoredRoomState(queue: [song("kept", ["alice"])])
            try await store.writeRooms([.state(roomID: "r1", kept, at: 2), roomChatRecord("r1", "kept", at: 3)])

            // Room ids are 1–64 characters (the protocol's id rule, a CHECK in the schema);
            // a chat for a 65-character room id fails after the batch's earlier records ran.
            let tooLong = String(repeating: "x", count: 65)
            let error = await thrownError {
                try await store.writeRooms([
                    .state(roomID: "r1", StoredRoomState(currentSong: "lost"), at: 10),
                    roomChatRecord("r1", "lost", at: 11),
                    .state(roomID: "new-room", StoredRoomState(currentSong: "lost"), at: 12),
                    .closed(roomID: "r1", at: 13),
                    roomChatRecord(tooLong, "orphan", at: 14),
                ])
            }
            let failure = String(reflecting: try #require(error))
            #expect(failure.contains(backend == .sqlite ? "CHECK constraint failed" : "violates check constraint"), "\(failure)")

            let r1 = try #require(try await store.room(id: "r1"))
            #expect(r1.state == kept)
            #expect(r1.closedAt == nil)
            #expect(try await store.roomChat(roomID: "r1", limit: 10).map(\.message) == ["kept"])
            #expect(try await store.room(id: "new-room") == nil)
            #expect(try await store.room(id: tooLong) == nil)

            // createRoom refuses such an id too, and an empty one.
            #expect(await thrownError { _ = try await store.createRoom(id: tooLong, hostUserID: "a", at: 1) } != nil)
            #expect(await thrownError { _ = try await store.createRoom(id: "", hostUserID: "a", at: 1) } != nil)
            // Exactly 64 characters is fine.
            #expect(try await store.createRoom(id: String(repeating: "y", count: 64), hostUserID: nil, at: 1))

            // The connection is not left inside a transaction: the next batch commits.
            try await store.writeRooms([roomChatRecord("r1", "after", at: 20)])
            #expect(try await store.roomChat(roomID: "r1", limit: 10).map(\.message) == ["kept", "after"])
        }
    }

    @Test(arguments: Backend.allCases) func unencodableStateFailsTheBatchBeforeWriting(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let nan = StoredRoomState(playback: StoredPlayback(percentage: .nan, paused: false, at: 1))
            let error = await thrownError {
                try await store.writeRooms([roomChatRecord("r1", "lost", at: 1), .state(roomID: "r1", nan, at: 2)])
            }
            let isEncodingError = error is EncodingError
            #expect(isEncodingError)
            // Nothing was written, not even the chat before the bad state.
            let room = try await store.room(id: "r1")
            #expect(room == nil)
            #expect(try await store.roomChat(roomID: "r1", limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func roomsAndEventsShareTheStoreAndShutdownClosesBoth(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let store = try await database.open()
            try await store.migrate()
            try await store.write([started("e1"), chatRecord("e1", "event chat")])
            try await store.writeRooms([roomChatRecord("e1", "room chat")])
            // Same id in both worlds, kept apart.
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["event chat"])
            #expect(try await store.roomChat(roomID: "e1", limit: 10).map(\.message) == ["room chat"])
            try await store.writeRooms([])
            try await store.shutdown()
            #expect(await thrownError { _ = try await store.room(id: "e1") } as? EventStoreError == .closed)
            #expect(await thrownError { try await store.writeRooms([]) } as? EventStoreError == .closed)
            #expect(await thrownError { _ = try await store.roomChat(roomID: "e1", limit: 0) } as? EventStoreError == .closed)
            #expect(
                await thrownError { _ = try await store.createRoom(id: "r", hostUserID: nil, at: 1) } as? EventStoreError
                    == .closed)
        }
    }

    @Test(arguments: Backend.allCases) func concurrentRoomBatchesAreEachAtomicAndWhole(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<20 {
                    group.addTask {
                        let records = (0..<10).map { n in roomChatRecord("r1", "\(batch):\(n)") }
                        try await store.writeRooms(records + [.state(roomID: "r1", StoredRoomState(currentSong: "\(batch)"), at: 1)])
                    }
                    group.addTask {
                        _ = try await store.roomChat(roomID: "r1", limit: 5)
                        _ = try await store.room(id: "r1")
                    }
                }
                try await group.waitForAll()
            }
            let chat = try await store.roomChat(roomID: "r1", limit: 500)
            #expect(chat.count == 200)
            for start in stride(from: 0, to: 200, by: 10) {
                let slice = chat[start..<start + 10].map(\.message)
                let batch = try #require(slice.first?.split(separator: ":").first)
                #expect(slice == (0..<10).map { "\(batch):\($0)" })
            }
            // The state is that of the batch whose chat came last.
            let lastBatch = try #require(chat.last?.message.split(separator: ":").first)
            #expect(try await store.room(id: "r1")?.state.currentSong == String(lastBatch))
        }
    }
}
