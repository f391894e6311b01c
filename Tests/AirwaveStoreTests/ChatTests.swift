import Testing
import AirwaveStore

@Suite struct ChatTests {
    @Test(arguments: Backend.allCases) func pagingThroughTwoHundredFiftyMessages(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("e1"), started("other")])
            // Interleave another event's chat so paging must filter by event.
            var records: [StoreRecord] = []
            for n in 1...250 {
                records.append(chatRecord("e1", "m\(n)", user: "u\(n % 7)", at: EpochMillis(10_000 + n)))
                if n % 10 == 0 {
                    records.append(chatRecord("other", "x\(n)"))
                }
            }
            try await store.write(records)

            let newest = try await store.chat(eventID: "e1", before: nil, limit: 100)
            #expect(newest.map(\.message) == (151...250).map { "m\($0)" })
            #expect(newest.map(\.sentAt) == (151...250).map { EpochMillis(10_000 + $0) })
            #expect(newest.allSatisfy { $0.eventID == "e1" })
            #expect(try await store.recentChat(eventID: "e1", limit: 100) == newest)

            // Walk backwards page by page until nothing is left.
            var pages: [[StoredChatMessage]] = [newest]
            var before = try #require(newest.first?.id)
            while true {
                let page = try await store.chat(eventID: "e1", before: before, limit: 100)
                if page.isEmpty { break }
                #expect(page.allSatisfy { ($0.id ?? .max) < before })
                pages.append(page)
                before = try #require(page.first?.id)
            }
            #expect(pages.map(\.count) == [100, 100, 50])
            let all = pages.reversed().flatMap { $0 }
            #expect(all.map(\.message) == (1...250).map { "m\($0)" })
            let ids = all.compactMap(\.id)
            #expect(ids.count == 250)
            #expect(ids == ids.sorted() && Set(ids).count == 250)

            // A page in the middle, and small limits.
            let middle = try await store.chat(eventID: "e1", before: ids[120], limit: 20)
            #expect(middle.map(\.message) == (101...120).map { "m\($0)" })
            #expect(try await store.chat(eventID: "e1", before: ids[0], limit: 10).isEmpty)
            #expect(try await store.chat(eventID: "e1", before: nil, limit: 1).map(\.message) == ["m250"])
            #expect(try await store.chat(eventID: "e1", before: nil, limit: 0).isEmpty)
            #expect(try await store.chat(eventID: "e1", before: nil, limit: -5).isEmpty)
            #expect(try await store.chat(eventID: "e1", before: nil, limit: 1_000).count == 250)
            #expect(try await store.recentChat(eventID: "other", limit: 100).map(\.message)
                == (1...25).map { "x\($0 * 10)" })
        }
    }

    @Test(arguments: Backend.allCases) func idsIncreaseAndIgnoreGivenID(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([started("e1")])
            try await store.write([
                .chat(StoredChatMessage(id: 999, eventID: "e1", userID: "u", username: "U", message: "a", sentAt: 1, verified: true)),
                .chat(StoredChatMessage(id: 5, eventID: "e1", userID: "u", username: "U", message: "b", sentAt: 2, verified: false)),
            ])
            let chat = try await store.recentChat(eventID: "e1", limit: 10)
            #expect(chat.map(\.message) == ["a", "b"])
            // Whether the sender was verified comes back as written.
            #expect(chat.map(\.verified) == [true, false])
            // A fresh database numbers from 1, whatever ids the caller put in.
            #expect(chat.map(\.id) == [1, 2])
        }
    }
}
