import AirwaveProtocol
import AirwaveStore
import NIOConcurrencyHelpers
import Testing

@testable import AirwaveServer

/// What a node has yet to publish of its events (the directory across nodes).
@Suite struct OriginPublicationTests {
    private func summary(_ id: String, count: Int) -> LiveServerMessage.StreamSummary {
        LiveServerMessage.StreamSummary(eventID: id, hostUserID: "h", hostUsername: "H", mode: "audio", participantCount: count,
                                        startedAt: Timestamp(milliseconds: 1_000))
    }

    /// A burst of changes is one row per event, the newest; an end is a removal.
    @Test func changesCoalescePerEvent() {
        var publication = OriginPublication(nodeID: "a")
        for count in 1...50 { publication.changed("e1", summary("e1", count: count)) }
        publication.changed("e2", summary("e2", count: 1))
        publication.changed("e2", nil)
        let (origins, removed) = publication.take()
        // "e2" started and ended in between: its row is written and ended.
        #expect(origins == [
            OriginRecord(eventID: "e1", nodeID: "a", hostUserID: "h", hostUsername: "H", mode: "audio", participantCount: 50, startedAt: 1_000),
            OriginRecord(eventID: "e2", nodeID: "a", hostUserID: "h", hostUsername: "H", mode: "audio", participantCount: 1, startedAt: 1_000),
        ])
        #expect(removed == ["e2"])
        #expect(publication.isEmpty)
    }

    /// A failed write goes back, except where a newer change of the same event waits.
    @Test func aFailedWriteIsRestoredUnderNewerChanges() {
        var publication = OriginPublication(nodeID: "a")
        publication.changed("e1", summary("e1", count: 1))
        publication.changed("e2", summary("e2", count: 1))
        publication.changed("e3", nil)
        let (origins, removed) = publication.take()
        publication.changed("e2", summary("e2", count: 9))
        publication.restore(origins: origins, removed: removed)
        let (again, removedAgain) = publication.take()
        #expect(again.map(\.eventID) == ["e1", "e2"])
        #expect(again.map(\.participantCount) == [1, 9])
        // "e3" ended without a summary this node knew: nothing to write but its end.
        #expect(removedAgain == ["e3"])
    }

    /// The directory lists local and remote events together, a local one winning, and tells
    /// the publisher of local changes only.
    @Test func theDirectoryMergesOtherNodesEvents() async {
        let directory = ActiveStreamsDirectory(interval: .seconds(1))
        let published = NIOLockedValueBox<[String]>([])
        await directory.publishLocalChanges { id, summary in published.withLockedValue { $0.append("\(id):\(summary?.participantCount ?? -1)") } }
        await directory.update(summary("local", count: 2))
        await directory.replaceRemote([summary("remote", count: 5), summary("local", count: 99)])
        #expect(await directory.streams.map(\.eventID).sorted() == ["local", "remote"])
        #expect(await directory.summary(of: "local")?.participantCount == 2)
        #expect(await directory.isLocal("local"))
        #expect(await directory.isLocal("remote") == false)
        await directory.remove("local")
        await directory.replaceRemote([])
        #expect(await directory.streams.isEmpty)
        #expect(published.withLockedValue { $0 } == ["local:2", "local:-1"])
        await directory.shutdown()
    }
}
