import Testing
import AirwaveStore

@Suite struct EventLifecycleTests {
    @Test(arguments: Backend.allCases) func fullLifecycleRoundTrips(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([
                .eventStarted(eventID: "ev-1", hostUserID: "alice", hostUsername: "Alice", mode: "open", at: 1_000),
                .participantJoined(
                    eventID: "ev-1", connectionID: 1, userID: "alice", username: "Alice",
                    role: .host, verified: true, at: 1_001),
                .participantJoined(
                    eventID: "ev-1", connectionID: 2, userID: "bob", username: "Bob",
                    role: .listener, verified: false, at: 1_100),
            ])
            let live = try #require(try await store.event(id: "ev-1"))
            #expect(live.isLive)
            #expect(live.endedAt == nil && live.endReason == nil)
            #expect(live.participants.map(\.userID) == ["alice", "bob"])
            #expect(live.participants.allSatisfy { $0.leftAt == nil })

            try await store.write([
                .roleChanged(eventID: "ev-1", connectionID: 2, role: .cohost, at: 1_200),
                .modeChanged(eventID: "ev-1", mode: "stage", at: 1_300),
                chatRecord("ev-1", "hello", user: "bob", at: 1_350),
                .participantLeft(eventID: "ev-1", connectionID: 2, at: 1_400),
                // Bob comes back on a new connection: a second session.
                .participantJoined(
                    eventID: "ev-1", connectionID: 3, userID: "bob", username: "Bob",
                    role: .listener, verified: true, at: 1_500),
                .participantJoined(
                    eventID: "ev-1", connectionID: 4, userID: "carol", username: "Carol",
                    role: .listener, verified: false, at: 1_600),
                .participantLeft(eventID: "ev-1", connectionID: 4, at: 1_700),
                .eventEnded(eventID: "ev-1", reason: "host ended", at: 2_000),
            ])

            let expected = StoredEvent(
                eventID: "ev-1",
                hostUserID: "alice",
                hostUsername: "Alice",
                mode: "stage",
                startedAt: 1_000,
                endedAt: 2_000,
                endReason: "host ended",
                participants: [
                    StoredParticipant(
                        userID: "alice", username: "Alice", role: .host, verified: true,
                        joinedAt: 1_001, leftAt: 2_000),
                    StoredParticipant(
                        userID: "bob", username: "Bob", role: .cohost, verified: false,
                        joinedAt: 1_100, leftAt: 1_400),
                    StoredParticipant(
                        userID: "bob", username: "Bob", role: .listener, verified: true,
                        joinedAt: 1_500, leftAt: 2_000),
                    StoredParticipant(
                        userID: "carol", username: "Carol", role: .listener, verified: false,
                        joinedAt: 1_600, leftAt: 1_700),
                ]
            )
            let ended = try await store.event(id: "ev-1")
            #expect(ended == expected)
            #expect(ended?.isLive == false)
            #expect(try await store.recentChat(eventID: "ev-1", limit: 5).map(\.message) == ["hello"])
        }
    }

    @Test(arguments: Backend.allCases) func endingTwiceKeepsTheFirstEnd(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([
                started("e1"),
                .eventEnded(eventID: "e1", reason: "first", at: 5_000),
                .eventEnded(eventID: "e1", reason: "second", at: 6_000),
            ])
            let event = try await store.event(id: "e1")
            #expect(event?.endedAt == 5_000)
            #expect(event?.endReason == "first")
        }
    }

    @Test(arguments: Backend.allCases) func reusedConnectionIDMatchesMostRecentSession(_ backend: Backend) async throws {
        // Connection ids are unique per server process only: after a restart the same id can
        // come back for the same event.
        try await withStore(backend) { store in
            try await store.write([
                started("e1"),
                .participantJoined(
                    eventID: "e1", connectionID: 7, userID: "u1", username: "One",
                    role: .listener, verified: false, at: 1_100),
                .participantJoined(
                    eventID: "e1", connectionID: 7, userID: "u2", username: "Two",
                    role: .listener, verified: false, at: 1_200),
                // Only the newest open session of (e1, 7) is affected.
                .roleChanged(eventID: "e1", connectionID: 7, role: .cohost, at: 1_250),
                .participantLeft(eventID: "e1", connectionID: 7, at: 1_300),
                // Now the newest open one is u1's session.
                .participantLeft(eventID: "e1", connectionID: 7, at: 1_400),
                // Nothing open is left: no change.
                .participantLeft(eventID: "e1", connectionID: 7, at: 1_500),
                // roleChanged picks the most recent session even though it has left.
                .roleChanged(eventID: "e1", connectionID: 7, role: .host, at: 1_600),
            ])
            let participants = try #require(try await store.event(id: "e1")).participants
            #expect(participants == [
                StoredParticipant(
                    userID: "u1", username: "One", role: .listener, verified: false,
                    joinedAt: 1_100, leftAt: 1_400),
                StoredParticipant(
                    userID: "u2", username: "Two", role: .host, verified: false,
                    joinedAt: 1_200, leftAt: 1_300),
            ])
        }
    }

    @Test(arguments: Backend.allCases) func sameConnectionIDInAnotherEventIsSeparate(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([
                started("a"), started("b"),
                .participantJoined(
                    eventID: "a", connectionID: 1, userID: "u", username: "U",
                    role: .listener, verified: false, at: 1_100),
                .participantJoined(
                    eventID: "b", connectionID: 1, userID: "u", username: "U",
                    role: .listener, verified: false, at: 1_100),
                .participantLeft(eventID: "a", connectionID: 1, at: 1_200),
            ])
            #expect(try await store.event(id: "a")?.participants.first?.leftAt == 1_200)
            #expect(try await store.event(id: "b")?.participants.first?.leftAt == nil)
        }
    }

    @Test(arguments: Backend.allCases) func largeConnectionIDsAreStored(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([
                started("e1"),
                .participantJoined(
                    eventID: "e1", connectionID: UInt64.max, userID: "u", username: "U",
                    role: .listener, verified: true, at: 1_100),
                .participantJoined(
                    eventID: "e1", connectionID: UInt64(Int64.max) + 1, userID: "v", username: "V",
                    role: .listener, verified: true, at: 1_100),
                .participantLeft(eventID: "e1", connectionID: UInt64.max, at: 1_200),
            ])
            let participants = try #require(try await store.event(id: "e1")).participants
            #expect(participants.map(\.leftAt) == [1_200, nil])
        }
    }

    @Test(arguments: Backend.allCases) func unknownIDReturnsNil(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.event(id: "nope") == nil)
            try await store.write([started("e1")])
            #expect(try await store.event(id: "nope") == nil)
            #expect(try await store.event(id: "E1") == nil)
            #expect(try await store.event(id: "e1") != nil)
            #expect(try await store.chat(eventID: "nope", before: nil, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func quotesUnicodeAndEmojiRoundTrip(_ backend: Backend) async throws {
        let awkward = [
            "Robert'); DROP TABLE events;--",
            "\"double\" and 'single' quotes, back\\slash, 100% _like_",
            "ünïcödé — Ελληνικά — 日本語 — עברית",
            "🎙️👩🏽‍🚀🏳️‍🌈 emoji with ZWJ",
            "line one\nline two\ttabbed\r\n",
            "",
        ]
        try await withStore(backend) { store in
            for (index, text) in awkward.enumerated() {
                let id = "ev-\(index)-\(text)"
                try await store.write([
                    .eventStarted(eventID: id, hostUserID: text, hostUsername: text, mode: text, at: 1),
                    .participantJoined(
                        eventID: id, connectionID: 1, userID: text, username: text,
                        role: .host, verified: true, at: 2),
                    .chat(StoredChatMessage(eventID: id, userID: text, username: text, message: text, sentAt: 3, verified: false)),
                    .eventEnded(eventID: id, reason: text, at: 4),
                ])
                let event = try #require(try await store.event(id: id))
                #expect(event.eventID == id)
                #expect(event.hostUserID == text && event.hostUsername == text && event.mode == text)
                #expect(event.endReason == text)
                #expect(event.participants.map(\.username) == [text])
                let chat = try await store.recentChat(eventID: id, limit: 10)
                #expect(chat.count == 1)
                #expect(chat.first?.message == text && chat.first?.username == text && chat.first?.userID == text)
            }
        }
    }
}
