import AirwaveCore
import AirwaveProtocol
import AirwaveStore

extension AirwaveServer {
    /// The host's event whose origin node died, to resume here (PROTOCOL.md 8): nil when there
    /// is none, or when the host's grace period ran out since that node's last heartbeat (the
    /// event is then recorded as ended, and the host starts a new one).
    func interruptedEvent(hostUserID: String) async throws -> (eventID: String, LiveEvent.Resumption)? {
        guard let cluster else { return nil }
        let now = Timestamp.now()
        let seenSince = now.milliseconds - Int64(cluster.settings.nodeTimeout / .milliseconds(1))
        guard let (origin, departure) = try await store.interruptedOrigin(hostUserID: hostUserID, seenSince: seenSince) else { return nil }
        guard resumable(departure, now: now) else {
            writer.enqueue([StoreRecord(.eventEnded(eventID: origin.eventID, reason: "host_timeout", at: now))])
            return nil
        }
        guard let event = try await store.event(id: origin.eventID, withParticipants: true), event.isLive else { return nil }
        let chat = try await store.recentChat(eventID: event.eventID, limit: configuration.liveEvent.chatHistoryLimit)
        return (event.eventID, LiveEvent.Resumption(event, chat: chat))
    }

    /// Whether an event whose origin left as `departure` may still be resumed: within the host's
    /// grace period of the origin leaving, that is of its hand-over, or of its death being known
    /// (its last heartbeat and the node timeout, as the edges count it). One rule for the host's
    /// resume and for the answer to a join meanwhile.
    func resumable(_ departure: OriginDeparture, now: Timestamp) -> Bool {
        guard let cluster else { return false }
        let left: Timestamp
        if let handedOverAt = departure.handedOverAt {
            left = Timestamp(milliseconds: handedOverAt)
        } else if let lastSeen = departure.lastSeen {
            left = Timestamp(milliseconds: lastSeen) + cluster.settings.nodeTimeout
        } else {
            return false  // its node's row is long gone (a day, PROTOCOL.md 8 housekeeping)
        }
        return now <= left + configuration.liveEvent.hostGrace
    }
}

extension LiveEvent.Resumption {
    /// The resumption of a live event as the store kept it (PROTOCOL.md 8), with its latest chat.
    init(_ event: StoredEvent, chat: [StoredChatMessage]) {
        // Who was a co-host when the origin died: their latest row, still open, says so. Every
        // user's source id is on the rows of its sessions since it first became a co-host.
        var latest: [String: StoredParticipant] = [:]
        var sourceIDs: [String: UInt32] = [:]
        for participant in event.participants {
            latest[participant.userID] = participant
            if let sourceID = participant.sourceID { sourceIDs[participant.userID] = sourceID }
        }
        let cohosts = latest.values.filter { $0.role == .cohost && $0.leftAt == nil && $0.verified }.sorted { $0.joinedAt < $1.joinedAt }
        // A co-host stored without one (before schema version 8) gets a new id above every stored one.
        var nextSourceID = max(LiveEvent.hostSourceID, sourceIDs.values.max() ?? 0) + 1
        var resumed: [Cohost] = []
        for participant in cohosts {
            let user = UserIdentity(userID: participant.userID, username: participant.username, verified: true)
            if let sourceID = sourceIDs[participant.userID] {
                resumed.append(Cohost(user: user, sourceID: sourceID))
            } else {
                resumed.append(Cohost(user: user, sourceID: nextSourceID))
                nextSourceID += 1
            }
        }
        self.init(
            startedAt: Timestamp(milliseconds: event.startedAt), mode: StreamMode(rawValue: event.mode) ?? .audio,
            screen: event.screen.map(ScreenConfig.init),
            chat: chat.map {
                LiveServerMessage.ChatEntry(userID: $0.userID, username: $0.username, message: $0.message,
                                            sentAt: Timestamp(milliseconds: $0.sentAt), verified: $0.verified)
            },
            cohosts: resumed, sourceIDs: sourceIDs)
    }
}
