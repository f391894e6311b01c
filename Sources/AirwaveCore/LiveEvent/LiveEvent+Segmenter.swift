import AirwaveProtocol

/// The HLS segmenter of `GET /hls/` (PROTOCOL.md 9): one more sink of the full mix. HLS
/// listeners sit behind caches the server cannot see, so the segmenter is a mix subscriber that
/// is no participant: it keeps the mix running (and speakers' frames going to the mixer, and
/// `mixDropSource` before a mute) without being counted or listed.
extension LiveEvent {
    mutating func setSegmenterSubscription(_ connection: ConnectionID, subscribed: Bool) {
        // A participant's own subscription goes through `mixSubscription`; the ids never meet.
        guard participants[connection] == nil, connection != hostConnection, publishers[connection] == nil else { return }
        if subscribed {
            mixSubscribers.insert(connection)
        } else {
            mixSubscribers.remove(connection)
        }
        refreshMixAssignment(connection)
    }
}
