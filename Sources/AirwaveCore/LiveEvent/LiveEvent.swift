import AirwaveProtocol

/// The state machine of one live event (PROTOCOL.md section 2): host, co-hosts, listeners,
/// invites, modes, chat and the coalesced notices of large events.
///
/// Sans-IO: `handle(_:now:)` takes what happened, `pollOutput()` hands back what to do, and
/// `nextWakeUp` says when to call `handle(.tick, now:)` again. It reads no clock and owns no
/// socket, so tests replay fixtures against it with a fake clock.
public struct LiveEvent: Sendable {
    /// A connected listener or co-host.
    struct Participant: Sendable {
        var connection: ConnectionID
        var user: UserIdentity
        var role: Role
        /// Join order, for "the most recent listeners" of a truncated list.
        var joinSequence: UInt64
        /// A listener without a control channel (WHEP): it hears the mix and sees the screen,
        /// and never replaces nor is replaced by the user's WebSocket connection.
        var mediaOnly = false
    }

    /// A speaking role held by a user (not a connection): it survives a reconnect within the grace period.
    struct SpeakerState: Sendable {
        var sourceID: UInt32
        /// The co-host's name, kept for notices about it while it is disconnected.
        var username: String
        var muted = false
        /// Set while the co-host is disconnected; the role lapses at `lapsesAt`.
        var lapsesAt: Timestamp?
    }

    public let eventID: String
    public let host: UserIdentity
    public let startedAt: Timestamp
    public let configuration: LiveEventConfiguration
    public internal(set) var mode: StreamMode = .audio
    public internal(set) var screen: ScreenConfig?
    public internal(set) var isEnded = false

    var hostConnection: ConnectionID?
    var hostStartedOnce = false
    /// When the event ends unless the host comes back.
    var hostGraceEndsAt: Timestamp?
    var hostMuted = false
    var participants: [ConnectionID: Participant] = [:]
    var connectionByUser: [String: ConnectionID] = [:]
    /// Co-hosts by user id.
    var speakers: [String: SpeakerState] = [:]
    /// Open invites: invitee user id → expiry.
    var invites: [String: Timestamp] = [:]
    /// Source ids stay with a user for the whole event.
    var sourceIDs: [String: UInt32] = [:]
    var nextSourceID: UInt32 = 2
    var joinCounter: UInt64 = 0
    var chat: [LiveServerMessage.ChatEntry] = []
    /// Users who joined this event with a valid token; a guest may not take their ids.
    var verifiedUserIDs: Set<String> = []
    var listThrottle: Throttle
    var countThrottle: Throttle
    var keyframeGate: IntervalGate
    var screenPipeline: ScreenPipeline
    /// At most one media error a second per sender.
    var mediaErrorGates: [ConnectionID: IntervalGate] = [:]
    var outputs = OutputQueue<Output>()
    /// Connections that asked for the mixed stream (`?audio=mixed`) instead of one stream per speaker.
    var mixSubscribers: Set<ConnectionID> = []
    /// The recording running now, if any.
    var recording: Recording?
    /// Recordings started so far; the next one is number `recordingCount + 1`.
    var recordingCount = 0
    /// What each mixed subscriber was last told it hears (`mixSubscriber`): the source left out, or nil.
    var mixAssignments: [ConnectionID: UInt32?] = [:]
    /// Loudness per source for `active_speakers`.
    var speakerLevels = ActiveSpeakerDetector()
    /// Sources whose client sends levels in the frame header; the mixer's measurements are not used for them.
    var clientLevelSources: Set<UInt32> = []
    /// Media-only listeners (WHEP) by user id: they hear the mix without that user's own voice.
    var mediaListeners: [String: Set<ConnectionID>] = [:]
    /// Verified media-only listeners whose user is present otherwise (the host, or a WebSocket
    /// connection of the same user): one person, so they are neither listed nor counted.
    var shadowedMediaListeners = 0
    /// Media-only listeners whose answer took a VP8 track: they get the screen while its codec is VP8.
    var videoSessions: Set<ConnectionID> = []
    /// Media-only listeners that take one track per speaker (`?audio=speakers`) instead of the mix.
    var speakerSessions: Set<ConnectionID> = []
    /// The per-speaker sessions a source's audio reaches (all but its own user's), ascending:
    /// made once per source and change of `speakerSessions`, not once per frame.
    var speakerSessionRoutes: [UInt32: [ConnectionID]] = [:]
    /// Publishers (WHIP): media-only connections that speak for a user (the host or a co-host).
    var publishers: [ConnectionID: String] = [:]
    /// The time of the latest input (for `nextWakeUp`).
    var lastNow: Timestamp

    /// The host's source id for audio.
    public static let hostSourceID: UInt32 = 1

    /// Creates the event; its first output records the start.
    public init(eventID: String, host: UserIdentity, now: Timestamp, configuration: LiveEventConfiguration = .init()) {
        self.init(eventID: eventID, host: host, startedAt: now, now: now, configuration: configuration)
        emit(.persist(.eventStarted(eventID: eventID, host: host, mode: .audio, at: now)))
    }

    /// The state every event starts from (`LiveEvent+Resumption` continues one).
    init(eventID: String, host: UserIdentity, startedAt: Timestamp, now: Timestamp, configuration: LiveEventConfiguration) {
        self.eventID = eventID
        self.host = host
        self.startedAt = startedAt
        self.lastNow = now
        self.configuration = configuration
        self.listThrottle = Throttle(interval: configuration.noticeInterval)
        self.countThrottle = Throttle(interval: configuration.noticeInterval)
        self.keyframeGate = IntervalGate(interval: configuration.keyframeRequestInterval)
        self.screenPipeline = ScreenPipeline(cacheLimit: configuration.screenCacheLimit)
    }

    /// Feeds one input at time `now`.
    public mutating func handle(_ input: Input, now: Timestamp) {
        // Deadlines that passed before this input take effect first, even if no tick came in
        // between: a host back after the grace period finds the event ended, a co-host back
        // after it is a listener.
        lastNow = now
        if !isEnded { expireTimers(now: now) }
        if isEnded {
            rejectAfterEnd(input)
            return
        }
        switch input {
        case .hostConnected(let connection, let joinURL): hostConnected(connection, joinURL: joinURL, now: now)
        case .join(let connection, let user): join(connection, user: user, now: now)
        case .disconnected(let connection): disconnected(connection, now: now)
        case .command(let connection, let command): handle(command, from: connection, now: now)
        case .media(let connection, let frame): media(frame, from: connection, now: now)
        case .encodedAudio(let speaker, let frame): encodedAudio(frame, speaker: speaker, now: now)
        case .tick: expireTimers(now: now)
        case .mixSubscription(let connection, let subscribed): setMixSubscription(connection, subscribed: subscribed)
        case .measuredLevels(let levels): measuredLevels(levels, now: now)
        case .mediaListenerJoined(let connection, let user, let video, let speakers):
            joinMediaOnly(connection, user: user, video: video, speakers: speakers, now: now)
        case .publisherConnected(let connection, let user): connectPublisher(connection, user: user)
        case .segmenterSubscription(let connection, let subscribed): setSegmenterSubscription(connection, subscribed: subscribed)
        case .shutdown:
            end(reason: "server_shutdown", notice: Message(.serverShutdown, LiveServerMessage.serverShutdown), closeCode: .goingAway, now: now)
        case .handOver(let keeping): handOver(keeping: keeping, now: now)
        }
        if !isEnded { flushNotices(now: now) }
    }

    /// The next thing to do, or nil when everything has been handed out.
    public mutating func pollOutput() -> Output? { outputs.poll() }

    /// When the engine wants a `.tick`: grace and invite expiries, coalesced notices.
    public var nextWakeUp: Timestamp? {
        guard !isEnded else { return nil }
        var candidates: [Timestamp] = []
        if let hostGraceEndsAt { candidates.append(hostGraceEndsAt) }
        if let invite = invites.values.min() { candidates.append(invite) }
        if let lapse = speakers.values.compactMap(\.lapsesAt).min() { candidates.append(lapse) }
        if let due = listThrottle.dueAt { candidates.append(due) }
        if let due = countThrottle.dueAt { candidates.append(due) }
        if let due = speakerLevels.nextDue(now: lastNow) { candidates.append(due) }
        return candidates.min()
    }

    /// Listeners and co-hosts connected now, host excluded (`participant_count`).
    public var participantCount: Int { participants.count - shadowedMediaListeners }

    /// This event's line in the active-streams directory.
    public var summary: LiveServerMessage.StreamSummary {
        .init(eventID: eventID, hostUserID: host.userID, hostUsername: host.username, mode: mode.rawValue,
              participantCount: participantCount, startedAt: startedAt)
    }

    /// Every connection the event holds now, host first, publishers last.
    public var connections: [ConnectionID] {
        (hostConnection.map { [$0] } ?? []) + participants.keys.sorted() + publishers.keys.sorted()
    }

    mutating func emit(_ output: Output) {
        outputs.append(output)
    }

    mutating func sendError(_ error: ProtocolError, to connection: ConnectionID) {
        emit(.send(Message(error), .control(.one(connection))))
    }

    /// Sends the error and closes with its close code.
    mutating func refuse(_ connection: ConnectionID, _ error: ProtocolError) {
        sendError(error, to: connection)
        emit(.close(connection, error.code.closeCode ?? .normal))
    }

    private mutating func rejectAfterEnd(_ input: Input) {
        switch input {
        case .hostConnected(let connection, _), .join(let connection, _), .mediaListenerJoined(let connection, _, _, _),
             .publisherConnected(let connection, _):
            refuse(connection, ProtocolError(.eventEnded, "This event has ended."))
        case .command, .disconnected, .tick, .media, .encodedAudio, .mixSubscription, .measuredLevels, .segmenterSubscription, .shutdown,
             .handOver:
            break
        }
    }
}
