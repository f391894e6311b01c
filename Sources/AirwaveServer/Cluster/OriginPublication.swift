import AirwaveProtocol
import AirwaveStore

/// What this node has yet to write of its events' origin rows, which are also their directory
/// entries on the other nodes (PROTOCOL.md 8). Changes wait here between two publications, so a
/// burst of joins costs one write per event; a failed write goes back in unless a newer change
/// of the same event came meanwhile.
struct OriginPublication {
    /// Per event: its newest summary, or nil when it ended.
    private(set) var pending: [String: LiveServerMessage.StreamSummary?] = [:]
    let nodeID: String

    init(nodeID: String) {
        self.nodeID = nodeID
    }

    var isEmpty: Bool { pending.isEmpty }

    mutating func changed(_ eventID: String, _ summary: LiveServerMessage.StreamSummary?) {
        pending[eventID] = .some(summary)
    }

    /// Takes every pending change: rows to write, ids to delete.
    mutating func take() -> (origins: [OriginRecord], removed: [String]) {
        defer { pending.removeAll() }
        var origins: [OriginRecord] = []
        var removed: [String] = []
        for (eventID, summary) in pending.sorted(by: { $0.key < $1.key }) {
            if let summary {
                origins.append(OriginRecord(
                    eventID: eventID, nodeID: nodeID, hostUserID: summary.hostUserID, hostUsername: summary.hostUsername,
                    mode: summary.mode, participantCount: summary.participantCount, startedAt: summary.startedAt.milliseconds))
            } else {
                removed.append(eventID)
            }
        }
        return (origins, removed)
    }

    /// A publication failed: its changes are pending again, except where a newer one waits.
    mutating func restore(origins: [OriginRecord], removed: [String]) {
        for origin in origins where pending[origin.eventID] == nil {
            pending[origin.eventID] = .some(origin.summary)
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
