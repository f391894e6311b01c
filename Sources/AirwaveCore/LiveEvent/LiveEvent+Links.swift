import AirwaveProtocol

extension LiveEvent {
    /// What an edge's link gets first (PROTOCOL.md 8): the event as a joiner of this node would
    /// see it now, then, in screen mode, the config frame and the GOP since the last keyframe.
    public var linkSnapshot: (snapshot: EdgeLinkMessage.Snapshot, screen: [MediaFrame]) {
        let snapshot = EdgeLinkMessage.Snapshot(
            streamState: streamState, chatHistory: LiveServerMessage.chatHistory(chat), participantList: participantList,
            participantCount: LiveServerMessage.participantCount(participantCount))
        guard mode == .screen else { return (snapshot, []) }
        return (snapshot, (screenPipeline.config.map { [$0] } ?? []) + screenPipeline.gop)
    }
}
