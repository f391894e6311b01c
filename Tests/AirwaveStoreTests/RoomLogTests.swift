import Foundation
import SQLKit
import Testing
@testable import AirwaveStore
import AirwaveTestSupport

/// Schema version 5: each listening room's log, the order of its changes across nodes sharing
/// one database (issue 15).
@Suite struct RoomLogTests {
    static let bound = RoomLogBound(entries: 1_000, age: 600_000)

    /// One turn that appends `entries` with `records`, recording what the log held before it.
    @discardableResult
    static func append(_ store: any RoomStore, _ roomID: String, after seq: Int64, createdAt: EpochMillis? = nil, _ entries: [String], records: [RoomRecord] = [],
                       at: EpochMillis = 1_000, bound: RoomLogBound = bound) async throws -> RoomTurn<RoomLogTail> {
        try await store.sequenceRoom(id: roomID, after: RoomLogPosition(seq: seq, createdAt: createdAt), at: at, bound: bound, chatLimit: 100) { tail in
            (RoomLogAppend(records: records, entries: entries), tail)
        }
    }

    /// A reader at `seq` that takes the room's row as it finds it.
    static func at(_ seq: Int64) -> RoomLogPosition { RoomLogPosition(seq: seq, createdAt: nil) }

    @Test(arguments: Backend.allCases) func turnsAppendNumberedEntriesWithTheirRecords(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // A new room: nothing yet, and a reader with nothing gets the (absent) room.
            let empty = try await store.roomLog(id: "r", after: .unknown, chatLimit: 100)
            #expect(empty == RoomLogTail(entries: [], position: RoomLogPosition(seq: 0, createdAt: nil), reload: RoomReload(room: nil, chat: [])))

            let first = try await Self.append(store, "r", after: 0, ["a", "b"], records: [.songQueued(roomID: "r", song("s1", ["user:u1"]), at: 1_000)])
            #expect(first.firstSeq == 1)
            #expect(first.decision == RoomLogTail(entries: [], position: Self.at(0), reload: nil))
            // The turn made the room's row: the position names it.
            #expect(first.position == RoomLogPosition(seq: 2, createdAt: 1_000))
            let second = try await Self.append(store, "r", after: 2, ["c"], records: [roomChatRecord("r", "hi", at: 1_100)], at: 1_100)
            #expect(second.firstSeq == 3)

            #expect(try await store.roomLog(id: "r", after: Self.at(0), chatLimit: 100)
                    == RoomLogTail(entries: [RoomLogEntry(seq: 1, entryJSON: "a", at: 1_000), RoomLogEntry(seq: 2, entryJSON: "b", at: 1_000),
                                             RoomLogEntry(seq: 3, entryJSON: "c", at: 1_100)],
                                   position: RoomLogPosition(seq: 3, createdAt: 1_000), reload: nil))
            #expect(try await store.roomLog(id: "r", after: Self.at(2), chatLimit: 100).entries.map(\.entryJSON) == ["c"])
            #expect(try await store.roomLog(id: "r", after: Self.at(3), chatLimit: 100)
                    == RoomLogTail(entries: [], position: RoomLogPosition(seq: 3, createdAt: 1_000), reload: nil))
            // The records went to the room's rows in the same transactions.
            #expect(try await store.room(id: "r")?.state.queue == [song("s1", ["user:u1"])])
            #expect(try await store.roomChat(roomID: "r", limit: 10).map(\.message) == ["hi"])

            // A reader with nothing gets the room as stored, with the number it is at.
            let loaded = try await store.roomLog(id: "r", after: .unknown, chatLimit: 100)
            #expect(loaded.position == RoomLogPosition(seq: 3, createdAt: 1_000))
            #expect(loaded.entries.isEmpty)
            #expect(loaded.reload?.room?.state.queue == [song("s1", ["user:u1"])])
            #expect(loaded.reload?.chat.map(\.message) == ["hi"])

            // An entry-only turn (user_joined) makes the room's row if needed; an empty turn stores nothing.
            #expect(try await Self.append(store, "joined", after: 0, ["j"]).firstSeq == 1)
            #expect(try await store.room(id: "joined")?.hostUserID == nil)
            #expect(try await Self.append(store, "untouched", after: 0, []).firstSeq == 1)
            #expect(try await store.room(id: "untouched") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func aTurnSeesWhatOthersAppendedAndCannotReuseTheirNumbers(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await Self.append(store, "r", after: 0, ["mine"])
            try await Self.append(store, "r", after: 1, ["theirs 1", "theirs 2"])
            // A turn of a reader still at 1 sees the two others first, and appends after them.
            let turn = try await Self.append(store, "r", after: 1, ["mine again"])
            #expect(turn.decision.entries.map(\.seq) == [2, 3])
            #expect(turn.decision.entries.map(\.entryJSON) == ["theirs 1", "theirs 2"])
            #expect(turn.firstSeq == 4)
        }
    }

    @Test(arguments: Backend.allCases) func theLogKeepsTheLastEntriesAndAReaderBehindThemReloads(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let bound = RoomLogBound(entries: 3, age: 600_000)
            for seq in 0..<5 {
                try await Self.append(store, "r", after: Int64(seq), ["e\(seq + 1)"],
                                      records: [.voted(roomID: "r", songID: "s", voter: "v\(seq)", at: 1_000)], bound: bound)
            }
            let db = (store as any SQLBackedStore).store.database
            let kept = try await db.select().column("seq").from("room_log").where("room_id", .equal, "r").orderBy("seq")
                .all(decodingColumn: "seq", as: Int64.self)
            #expect(kept == [3, 4, 5])
            // A reader at 2 still catches up entry by entry; one at 1 missed entry 2 and reloads.
            #expect(try await store.roomLog(id: "r", after: Self.at(2), chatLimit: 100).entries.map(\.entryJSON) == ["e3", "e4", "e5"])
            let behind = try await store.roomLog(id: "r", after: Self.at(1), chatLimit: 100)
            #expect(behind.entries.isEmpty)
            #expect(behind.position.seq == 5)
            #expect(behind.reload?.room?.roomID == "r")

            // Age: entries older than the bound go when the next turn appends.
            try await Self.append(store, "r", after: 5, ["late"], at: 1_000 + 600_001, bound: bound)
            let left = try await db.select().column("seq").from("room_log").where("room_id", .equal, "r")
                .all(decodingColumn: "seq", as: Int64.self)
            #expect(left == [6])
            // Pruning never lets a number come back: the count lives on the room's row.
            #expect(try await Self.append(store, "r", after: 6, ["next"], bound: RoomLogBound(entries: 0, age: 0)).firstSeq == 7)
            #expect(try await db.select().column("seq").from("room_log").where("room_id", .equal, "r").all().isEmpty)
            #expect(try await store.roomLog(id: "r", after: Self.at(7), chatLimit: 100).entries.isEmpty)
            #expect(try await store.roomLog(id: "r", after: Self.at(7), chatLimit: 100).reload == nil)
        }
    }

    @Test(arguments: Backend.allCases) func aRoomDeletedAndUsedAgainMakesReadersReload(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let old = try await Self.append(store, "r", after: 0, ["a", "b"], at: 1_000).position
            #expect(old == RoomLogPosition(seq: 2, createdAt: 1_000))
            // Nothing stored in it but the log: it is unused, and its log goes with it.
            #expect(try await store.deleteRoomIfUnused(id: "r"))
            #expect(try await store.roomLog(id: "r", after: old, chatLimit: 100).reload == RoomReload(room: nil, chat: []))
            // Used again: numbers start again, in a new incarnation.
            try await Self.append(store, "r", after: 0, ["new 1"], at: 2_000)
            let behind = try await store.roomLog(id: "r", after: old, chatLimit: 100)
            #expect(behind.position == RoomLogPosition(seq: 1, createdAt: 2_000))
            #expect(behind.reload?.room?.createdAt == 2_000)
            // Even where the numbers meet again, the old incarnation's reader reloads.
            try await Self.append(store, "r", after: 1, ["new 2"], at: 2_100)
            let same = try await store.roomLog(id: "r", after: old, chatLimit: 100)
            #expect(same.position == RoomLogPosition(seq: 2, createdAt: 2_000))
            #expect(same.entries.isEmpty)
            #expect(same.reload != nil)
            // A reader of this incarnation just catches up.
            #expect(try await store.roomLog(id: "r", after: RoomLogPosition(seq: 1, createdAt: 2_000), chatLimit: 100).entries.map(\.entryJSON)
                    == ["new 2"])
        }
    }

    @Test(arguments: Backend.allCases) func concurrentTurnsFromTwoStoresTakeTurnsAndNumberWithoutHoles(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            try await withOpened(database) { one in
                // PostgreSQL: two stores, as two nodes. SQLite: one store, as its one connection
                // serialises the process's transactions (a cluster needs PostgreSQL; two processes
                // on one SQLite file are not supported).
                try await withOpened(database, migrate: backend == .postgres) { other in
                    let two: any SQLBackedStore = backend == .postgres ? other : one
                    let turns = 16
                    let firsts = try await withThrowingTaskGroup(of: (Int64, Int64).self) { group in
                        for index in 0..<turns {
                            let store: any RoomStore = index % 2 == 0 ? one : two
                            group.addTask {
                                // Every turn starts from 0: it must see all turns committed before it.
                                let turn = try await Self.append(store, "r", after: 0, ["t\(index)"])
                                return (turn.firstSeq, turn.decision.position.seq)
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    #expect(firsts.map(\.0).sorted() == Array(1...Int64(turns)))
                    #expect(firsts.allSatisfy { $0.0 == $0.1 + 1 })
                    let tail = try await one.roomLog(id: "r", after: Self.at(0), chatLimit: 100)
                    #expect(tail.entries.map(\.seq) == Array(1...Int64(turns)))
                }
            }
        }
    }
}
