import AirwaveProtocol

extension LiveEvent {
    /// `stream_state` as a joiner receives it.
    var streamState: JSONValue {
        LiveServerMessage.streamState(eventID: eventID, mode: mode.rawValue, hostUserID: host.userID, hostUsername: host.username,
                                      screen: screen, startedAt: startedAt)
    }

    /// The participant list: host first, then co-hosts, then listeners, newest last; above the
    /// limit only the most recent listeners, with the total.
    var participantList: JSONValue {
        var entries = [LiveServerMessage.ParticipantEntry(userID: host.userID, username: host.username, role: Role.host.rawValue,
                                                          verified: true, sourceID: Self.hostSourceID, muted: hostMuted)]
        let ordered = participants.values.sorted { $0.joinSequence < $1.joinSequence }
        var listeners: [Participant] = []
        for participant in ordered where !(participant.mediaOnly && isShadowed(participant.user)) {
            if participant.role == .cohost {
                let speaker = speakers[participant.user.userID]
                entries.append(entry(participant, sourceID: speaker?.sourceID, muted: speaker?.muted ?? false))
            } else {
                listeners.append(participant)
            }
        }
        let truncated = listeners.count > configuration.listListenerLimit
        for participant in listeners.suffix(configuration.listListenerLimit) {
            entries.append(entry(participant, sourceID: nil, muted: false))
        }
        return LiveServerMessage.participantList(entries, truncatedTotal: truncated ? participantCount + 1 : nil)
    }

    private func entry(_ participant: Participant, sourceID: UInt32?, muted: Bool) -> LiveServerMessage.ParticipantEntry {
        .init(userID: participant.user.userID, username: participant.user.username, role: participant.role.rawValue,
              verified: participant.user.verified, sourceID: sourceID, muted: muted)
    }

    mutating func membershipChanged() {
        listThrottle.markChanged()
        countThrottle.markChanged()
    }

    /// Sends the coalesced list and count when their window allows; otherwise `nextWakeUp` covers them.
    mutating func flushNotices(now: Timestamp) {
        listThrottle.interval = configuration.noticeInterval * max(1, (participantCount + 1) / max(1, configuration.listIntervalStep))
        if listThrottle.fire(now: now) {
            send(.participantList, participantList, to: .all)
        }
        // Sent even when the number is unchanged: a joiner (or a replacing connection) must get one.
        if countThrottle.fire(now: now) {
            send(.participantCount, LiveServerMessage.participantCount(participantCount), to: .all)
        }
        flushActiveSpeakers(now: now)
    }
}
