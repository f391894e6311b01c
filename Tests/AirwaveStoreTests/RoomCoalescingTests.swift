import Testing
@testable import AirwaveStore

/// How ``SQLEventStore/writeRooms(_:)`` turns a batch into statements.
@Suite struct RoomCoalescingTests {
    /// A compact picture of a step, for comparing.
    private func describe(_ steps: [SQLEventStore.RoomWriteStep]) -> [String] {
        steps.map { step in
            switch step {
            case let .ensureRoom(roomID, at): "ensure \(roomID)@\(at)"
            case let .state(roomID, _, at): "state \(roomID)@\(at)"
            case let .chat(message): "chat \(message.roomID):\(message.message)"
            case let .closed(roomID, at): "closed \(roomID)@\(at)"
            }
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
        guard case let .state(_, json, _) = steps[1] else {
            Issue.record("expected a state step")
            return
        }
        #expect(try SQLEventStore.decodeRoomState(json) == StoredRoomState(currentSong: "ok"))
    }
}
