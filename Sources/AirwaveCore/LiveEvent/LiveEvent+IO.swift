import AirwaveProtocol

extension LiveEvent {
    /// Everything that can happen to a live event.
    public enum Input: Sendable, Hashable {
        /// The host's socket connected: the first one starts the event, later ones resume it.
        case hostConnected(ConnectionID, joinURL: String)
        /// A listener's socket connected with this identity.
        case join(ConnectionID, UserIdentity)
        /// A socket closed, for any reason.
        case disconnected(ConnectionID)
        /// A validated text message from a connection.
        case command(ConnectionID, LiveCommand)
        /// A media frame from a connection (header parsed, Opus payload already validated).
        case media(ConnectionID, MediaFrame)
        /// Opus the server encoded from a speaker's PCM (`encodePCM`), ready to forward.
        case encodedAudio(speaker: ConnectionID, MediaFrame)
        /// Time passed (a wake-up the engine asked for, or any other tick).
        case tick
        /// The connection wants the event's mixed audio (`?audio=mixed`) instead of one stream
        /// per speaker, or no longer does. The transport sends it right after the join.
        case mixSubscription(ConnectionID, subscribed: Bool)
        /// Levels the mixer measured in the decoded audio of each source, RFC 6464 style
        /// (0 = 0 dBov … 127 = silence), for `active_speakers`.
        case measuredLevels([UInt32: UInt8])
        /// A media-only listener connected (WHEP): it counts as a listener, hears the mix
        /// (without its user's own voice) and, when its answer took a VP8 track (`video`), sees
        /// a VP8 screen; it has no control channel. With `speakers` (`?audio=speakers`) it takes
        /// each speaker's own audio instead of the mix (never its own user's) and is not a mix
        /// subscriber: speaker frames name it in `route.sessions`.
        case mediaListenerJoined(ConnectionID, UserIdentity, video: Bool, speakers: Bool = false)
        /// A media-only publisher connected (WHIP) for a verified user: accepted while that user
        /// is the host or a current co-host; its `media` is that user's voice. Closed when the
        /// user's speaking role ends.
        case publisherConnected(ConnectionID, UserIdentity)
        /// The HLS segmenter (PROTOCOL.md 9) wants the full mix, under a connection id of its own,
        /// or no longer does. It is no participant: not counted, not listed, never closed.
        case segmenterSubscription(ConnectionID, subscribed: Bool)
        /// The server is going away: `server_shutdown` to everyone, every connection closed with
        /// 1001, the event ended (recorded with the reason `server_shutdown`).
        case shutdown
        /// This node is going away but the event goes on (PROTOCOL.md 8: its host may resume it
        /// on another node): `server_shutdown` and 1001 for this node's connections, every one but
        /// `keeping` (the edges' clients, who stay with their edges); no end is recorded. Then
        /// `handedOver`.
        case handOver(keeping: Set<ConnectionID>)
    }

    /// What the driver must do, in order.
    public enum Output: Sendable, Hashable {
        /// Encode once and send to the route's recipients.
        case send(Message, Route)
        /// Close the connection with this code (any error frame was sent just before).
        case close(ConnectionID, CloseCode)
        /// Persist this record (in order, off the relay path).
        case persist(EventRecord)
        /// Do not perform the outputs that follow until every record so far is durably stored.
        case awaitPersistence
        /// The event is over; the driver forgets it.
        case ended
        /// The event left this node without ending (`handOver`): the driver forgets it and leaves
        /// it live in the store for another node to resume; its edges' links close without an end.
        case handedOver
        /// Write this media frame (source id set) as the route says: one buffer for all its
        /// WebSocket recipients, one packetization for all its sessions, the mixer, the level meter.
        case forward(MediaFrame, Route)
        /// Encode this PCM frame of the speaker to Opus and hand the packets back as `encodedAudio`.
        case encodePCM(MediaFrame, speaker: ConnectionID)
        /// A media frame went nowhere (for the counters).
        case mediaDropped(MediaDropReason)
        /// This connection now receives the mix without `minus` (its own source; nil: the full
        /// mix). Sent when it subscribes and whenever its speaking role changes.
        case mixSubscriber(ConnectionID, minus: UInt32?)
        /// This connection no longer receives the mix (it unsubscribed or left).
        case mixUnsubscriber(ConnectionID)
        /// Drop this source from the mixer at once (its buffered audio too): it was muted,
        /// demoted or left. Comes before the notice that says so.
        case mixDropSource(UInt32)
        /// The source stopped speaking (muted, demoted, left): every per-speaker session frees
        /// the track it carried, for another speaker. Emitted while such sessions exist.
        case sessionsDropSource(UInt32)
        /// Start writing the full mix to the recording file with this name.
        case recordingStart(name: String)
        /// Finish the recording file.
        case recordingStop
    }

    /// A recording in progress.
    struct Recording: Sendable, Hashable {
        var name: String
        var startedAt: Timestamp
    }

    /// Why a media frame was not forwarded.
    public enum MediaDropReason: String, Sendable, Hashable {
        /// The sender's role may not publish this kind (PROTOCOL.md 2.4).
        case gate
        /// The speaker is muted.
        case muted
        /// Screen frames outside screen mode.
        case inactivePipeline = "inactive_pipeline"
    }
}

/// What the store keeps of a live event, in the order it happened: enough for another node
/// to resume it as it was (PROTOCOL.md 8, `LiveEvent.Resumption`).
public enum EventRecord: Sendable, Hashable {
    case eventStarted(eventID: String, host: UserIdentity, mode: StreamMode, at: Timestamp)
    case eventEnded(eventID: String, reason: String, at: Timestamp)
    /// The mode and the screen's codec fields (`stream_state.screen`; nil in audio mode).
    case modeChanged(eventID: String, mode: StreamMode, screen: ScreenConfig?, at: Timestamp)
    /// `sourceID`: the user's source id in the event, if it was ever a co-host.
    case participantJoined(eventID: String, connection: ConnectionID, user: UserIdentity, role: Role, sourceID: UInt32?, at: Timestamp)
    case participantLeft(eventID: String, connection: ConnectionID, at: Timestamp)
    /// `sourceID`: the user's source id in the event, if it was ever a co-host (given when it
    /// becomes one; kept when it steps down).
    case roleChanged(eventID: String, connection: ConnectionID, role: Role, sourceID: UInt32?, at: Timestamp)
    case chat(eventID: String, LiveServerMessage.ChatEntry)
}
