import AirwaveProtocol
import AirwaveStore

/// What this node has yet to write of its events' origin rows, which are also their directory
/// entries on the other nodes (PROTOCOL.md 8). Changes wait here between two publications, so a
/// burst of joins costs one write per event; a failed write goes back in unless a newer change
/// of the same event came meanwhile.
struct OriginPublication {
    /// Per event: its newest summary, or nil when it ended.
    private(set) var pending: [String: LiveServerMessage.StreamSummary?] = [:]
    /// The newest summary of each local event until its end is taken: an event that starts and
    /// ends between two publications still gets its row (it says where the event ran).
    private var known: [String: LiveServerMessage.StreamSummary] = [:]
    let nodeID: String

    init(nodeID: String) {
        self.nodeID = nodeID
    }

    var isEmpty: Bool { pending.isEmpty }

    mutating func changed(_ eventID: String, _ summary: LiveServerMessage.StreamSummary?) {
        pending[eventID] = .some(summary)
        if let summary { known[eventID] = summary }
    }

    /// Takes every pending change: rows to write (ended events' too, with their last summary),
    /// and the ids of the events that ended.
    mutating func take() -> (origins: [OriginRecord], removed: [String]) {
        defer { pending.removeAll() }
        var origins: [OriginRecord] = []
        var removed: [String] = []
        for (eventID, summary) in pending.sorted(by: { $0.key < $1.key }) {
            if let last = summary ?? known[eventID] { origins.append(record(eventID, last)) }
            if summary == nil {
                removed.append(eventID)
                known[eventID] = nil
            }
        }
        return (origins, removed)
    }

    func record(_ eventID: String, _ summary: LiveServerMessage.StreamSummary) -> OriginRecord {
        OriginRecord(eventID: eventID, nodeID: nodeID, hostUserID: summary.hostUserID, hostUsername: summary.hostUsername,
                     mode: summary.mode, participantCount: summary.participantCount, startedAt: summary.startedAt.milliseconds)
    }

    /// A publication failed: its changes are pending again, except where a newer one waits.
    mutating func restore(origins: [OriginRecord], removed: [String]) {
        let ended = Set(removed)
        for origin in origins where pending[origin.eventID] == nil {
            if ended.contains(origin.eventID) {
                known[origin.eventID] = origin.summary
                pending[origin.eventID] = .some(nil)
            } else {
                pending[origin.eventID] = .some(origin.summary)
            }
        }
        for eventID in removed where pending[eventID] == nil {
            pending[eventID] = .some(nil)
        }
    }
}

extension OriginRecord {
    /// The directory entry the row stands for.
    var summary: LiveServerMessage.StreamSummary {
        LiveServerMessage.StreamSummary(eventID: eventID, hostUserID: hostUserID, hostUsername: hostUsername, mode: mode,
                                        participantCount: participantCount, startedAt: Timestamp(milliseconds: startedAt))
    }
}
