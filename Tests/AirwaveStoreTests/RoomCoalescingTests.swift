import Testing
@testable import AirwaveStore

/// How ``SQLEventStore/writeRooms(_:)`` turns a batch into statements.
@Suite struct RoomCoalescingTests {
    /// A compact picture of a step, for comparing.
    private func describe(_ steps: [SQLEventStore.RoomWriteStep]) -> [String] {
        steps.map { step in
            switch step {
            case let .ensureRoom(roomID, at): "ensure \(roomID)@\(at)"
            case let .state(roomID, _, _, at): "state \(roomID)@\(at)"
            case let .change(record, roomID, at, _): "change \(roomID)@\(at) \(Self.kind(record))"
            case let .chat(message): "chat \(message.roomID):\(message.message)"
            case let .closed(roomID, at): "closed \(roomID)@\(at)"
            }
        }
    }

    private static func kind(_ record: RoomRecord) -> String {
        switch record {
        case .songQueued: "song_queued"
        case .voted: "voted"
        case .songChanged: "song_changed"
        case .playback: "playback"
        case .state, .chat, .closed: "other"
        }
    }

    @Test func onlyTheLastStateOfARoomIsWrittenAndClosesSplitTheRuns() throws {
        let s = StoredRoomState()
        let steps = try SQLEventStore.roomWriteSteps(for: [
            .state(roomID: "a", s, at: 1),
            .state(roomID: "b", s, at: 2),
            .chat(StoredRoomChat(roomID: "a", userID: "u", name: "U", message: "hi", sentAt: 3)),
            .state(roomID: "a", s, at: 4),
            .closed(roomID: "a", at: 5),
            .state(roomID: "a", s, at: 6),
            .state(roomID: "a", s, at: 7),
            .closed(roomID: "b", at: 8),
        ])
        #expect(describe(steps) == [
            "ensure a@1", "state b@2", "chat a:hi", "state a@4", "closed a@5", "ensure a@6", "state a@7", "closed b@8",
        ])
    }

    @Test func supersededStateIsNotEvenEncoded() throws {
        // A NaN state that a later state of the same room replaces never reaches the encoder.
        let nan = StoredRoomState(playback: StoredPlayback(percentage: .nan, paused: false, at: 1))
        let steps = try SQLEventStore.roomWriteSteps(for: [
            .state(roomID: "a", nan, at: 1),
            .state(roomID: "a", StoredRoomState(currentSong: "ok"), at: 2),
        ])
        #expect(describe(steps) == ["ensure a@1", "state a@2"])
        guard case let .state(_, state, playbackJSON, _) = steps[1] else {
            Issue.record("expected a state step")
            return
        }
        #expect(state == StoredRoomState(currentSong: "ok"))
        #expect(playbackJSON == nil)
    }

    @Test func eachChangeIsOneStepAndAWholeStateLaterInTheBatchSupersedesTheChangesBeforeIt() throws {
        let song = StoredSong(songID: "s1", voters: ["user:u"], timeAdded: 1)
        let steps = try SQLEventStore.roomWriteSteps(for: [
            .songQueued(roomID: "a", song, at: 1),
            .voted(roomID: "b", songID: "s1", voter: "user:v", at: 2),
            .songChanged(roomID: "a", songID: "s1", at: 3),
            .state(roomID: "a", StoredRoomState(), at: 4),
            .playback(roomID: "a", StoredPlayback(paused: true, at: 5), at: 5),
            .closed(roomID: "b", at: 6),
            .songQueued(roomID: "b", song, at: 7),
        ])
        #expect(describe(steps) == [
            "ensure a@1", "change b@2 voted", "ensure a@3", "state a@4", "change a@5 playback", "closed b@6", "change b@7 song_queued",
        ])
    }

    @Test func aPlaybackThatCannotBeEncodedFailsTheBatchBeforeTheDatabase() {
        #expect(throws: (any Error).self) {
            _ = try SQLEventStore.roomWriteSteps(for: [.playback(roomID: "a", StoredPlayback(percentage: .nan, paused: false, at: 1), at: 1)])
        }
    }
}
