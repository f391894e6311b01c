import AirwaveProtocol

/// What comes down the link: delivered as the origin decided, and mirrored where a late joiner
/// or a re-link needs it (`stream_state`, chat, the screen GOP, whose voice each source is).
extension EdgeEvent {
    mutating func fromOrigin(_ message: EdgeLinkMessage.Down, now: Timestamp) {
        if case .snapshot(let snapshot) = message { return linkUp(snapshot, now: now) }
        if case .refused(let code) = message { return refused(code) }
        // Only what follows a snapshot on the current link means anything.
        guard link == .up else { return }
        switch message {
        case .snapshot: break
        case .welcome(let number): welcome(number, now: now)
        case .message(let message, let audience): relay(message, to: audience)
        case .close(let number, let code):
            guard let connection = connectionByNumber[number], forget(connection) != nil else { return }
            buffer.remove(client: connection)
            emit(.close(connection, code))
            if clients.isEmpty { idleSince = now }
        case .media(let frame): relayMedia(frame, now: now)
        case .ended(let code): ended(code)
        case .mixSubscriber(let number, let minus):
            guard let connection = connectionByNumber[number] else { return }
            mixOf[connection] = .some(minus)
            if clients[connection]?.mediaOnly != nil { emit(.mixSubscriber(connection, minus: minus)) }
        case .mixUnsubscriber(let number):
            guard let connection = connectionByNumber[number], mixOf.removeValue(forKey: connection) != nil else { return }
            if clients[connection]?.mediaOnly != nil { emit(.mixUnsubscriber(connection)) }
        case .sessionsDropSource(let source):
            if !speakerSessions.isEmpty { emit(.sessionsDropSource(source)) }
        case .refused:
            break
        }
    }

    /// The origin refused the link. An event it says is over is over here too: members that
    /// missed its end (the link was down) get `stream_ended`, waiting joiners `event_ended`.
    /// Anything else is a failed attempt; the link's end follows and the edge tries again.
    mutating func refused(_ code: ErrorCode) {
        guard link == .connecting, code == .eventEnded || code == .eventNotFound else { return }
        send(LiveEvent.Message(.streamEnded, LiveServerMessage.streamEnded(eventID: eventID, message: "The event has ended")), to: .all)
        ended(.normal)
    }

    /// The origin accepted the client: it becomes a member and gets the edge's replay.
    mutating func welcome(_ number: EdgeLinkMessage.EdgeClient, now: Timestamp) {
        // A re-link announces members again; they have their state already.
        guard let connection = connectionByNumber[number], let client = clients[connection], !client.admitted else { return }
        clients[connection]?.admitted = true
        memberByUser[client.user.userID] = connection
        emit(.admit(connection))
        if let streamState { send(LiveEvent.Message(.streamState, streamState), to: .one(connection)) }
        send(LiveEvent.Message(.chatHistory, ["type": "chat_history", "messages": .array(chat)]), to: .one(connection))
        if isScreenMode { catchUpOnScreen(connection, now: now) }
    }

    mutating func relay(_ message: LiveEvent.Message, to audience: EdgeLinkMessage.Audience) {
        mirror(message)
        switch audience {
        case .all:
            send(message, to: .all)
        case .one(let number):
            guard let connection = connectionByNumber[number] else { return }  // it left meanwhile
            send(message, to: .one(connection))
        case .allExcept(let number):
            send(message, to: connectionByNumber[number].map { .allExcept($0) } ?? .all)
        }
    }

    /// Keeps what a joiner or a re-link needs from the message. The origin builds
    /// `stream_state` from the same mode and codec fields as `stream_mode_changed`, so the
    /// mirror follows the notice exactly.
    mutating func mirror(_ message: LiveEvent.Message) {
        switch message.type {
        case .streamModeChanged:
            let screen = message.json["mode"]?.stringValue == StreamMode.screen.rawValue
            if case .object(var state) = streamState {
                state["mode"] = message.json["mode"]
                state["screen"] = screen ? message.json.removing(["type", "mode", "message"]) : .null
                streamState = .object(state)
            }
            // Every member's first frame of the new share is a keyframe (PROTOCOL.md 2.4).
            if screen {
                screenPipeline.reset(viewers: viewers)
            } else {
                screenPipeline.clear()
            }
        case .messageBroadcast:
            chat.append(message.json.removing(["type"]))
            if chat.count > configuration.chatHistoryLimit { chat.removeFirst(chat.count - configuration.chatHistoryLimit) }
        case .cohostJoined:
            if let source = message.json["source_id"]?.intValue.flatMap(UInt32.init(exactly:)), let userID = message.json["user_id"]?.stringValue {
                learnSource(source, userID)
            }
        case .participantList:
            learnSources(message.json)
        default:
            break
        }
    }

    /// Source ids of the speakers a `participant_list` names.
    mutating func learnSources(_ list: JSONValue) {
        for entry in list["participants"]?.arrayItems ?? [] {
            if let source = entry["source_id"]?.intValue.flatMap(UInt32.init(exactly:)), let userID = entry["user_id"]?.stringValue {
                learnSource(source, userID)
            }
        }
    }

    mutating func learnSource(_ source: UInt32, _ userID: String) {
        guard sourceOwners[source] != userID else { return }
        sourceOwners[source] = userID
        speakerSessionRoutes[source] = nil
    }

    /// A frame the origin let through: audio to every member but its speaker, screen through
    /// the edge's own pipeline (keyframe first for every member, the GOP kept for joiners).
    mutating func relayMedia(_ frame: MediaFrame, now: Timestamp) {
        switch frame.header.kind {
        case .opus, .pcm:
            let source = frame.header.sourceID
            if source == 0 || source >= Self.mixMinusFlag {
                // One of the mix's outputs: to the mixed members the origin gave it, as source 0.
                let minus: UInt32? = source == 0 ? nil : source & ~Self.mixMinusFlag
                var mixed = frame
                mixed.header.sourceID = 0
                if let recipients = mixRecipients[minus], !recipients.isEmpty {
                    emit(.forward(mixed, LiveEvent.Route(sockets: .only(recipients), queue: .audio)))
                }
                if mixSessionOutputs.contains(minus) { emit(.mixPacket(mixed, minus: minus)) }
                return
            }
            // Nobody receives their own voice back, and its speaker may be a member here; mixed
            // members hear it in the mix instead.
            let sockets: LiveEvent.Audience
            if let speaker = sourceOwners[source].flatMap({ memberByUser[$0] }) {
                sockets = .allExcept(speaker, skipping: mixedMembers.contains(speaker) ? mixedMembers.subtracting([speaker]) : mixedMembers)
            } else {
                sockets = everyoneButMixed
            }
            emit(.forward(frame, LiveEvent.Route(sockets: sockets, sessions: speakerSessionAudience(for: source), queue: .audio)))
        case .screen:
            guard isScreenMode else { return emit(.mediaDropped(.inactivePipeline)) }
            switch screenPipeline.accept(frame) {
            case .forward(let skipping):
                emit(.forward(frame, screenRoute(frame, sockets: Self.allBut(skipping), sessions: videoSessions.subtracting(skipping))))
            case .forwardAndRequestKeyframe(let skipping):
                emit(.forward(frame, screenRoute(frame, sockets: Self.allBut(skipping), sessions: videoSessions.subtracting(skipping))))
                requestKeyframe(now: now)
            }
        }
    }

    /// The per-speaker players that `source`'s audio goes to: all but those of the user
    /// speaking as `source` (nobody hears themselves), kept per source until they change.
    mutating func speakerSessionAudience(for source: UInt32) -> LiveEvent.Audience {
        guard !speakerSessions.isEmpty else { return .none }
        if let cached = speakerSessionRoutes[source] { return cached }
        let speaker = sourceOwners[source]
        let recipients = speakerSessions.filter { clients[$0]?.user.userID != speaker }.sorted()
        let audience: LiveEvent.Audience = recipients.isEmpty ? .none : .only(recipients)
        speakerSessionRoutes[source] = audience
        return audience
    }

    /// On the link, a mix frame's source id is 0 (the full mix) or this flag with the source
    /// its output leaves out (`EdgeLinkMessage.Down.mixSubscriber`).
    static let mixMinusFlag: UInt32 = 0x8000_0000

    /// A joiner in screen mode gets the config frame and the cached GOP, or waits for the next
    /// keyframe, which is asked for up the link.
    mutating func catchUpOnScreen(_ connection: ConnectionID, now: Timestamp) {
        let (frames, needsKeyframe) = screenPipeline.join(connection)
        let session = clients[connection]?.mediaOnly != nil
        for frame in frames {
            emit(.forward(frame, session ? screenRoute(frame, sockets: .none, sessions: [connection])
                                         : screenRoute(frame, sockets: .one(connection))))
        }
        if needsKeyframe { requestKeyframe(now: now) }
    }

    mutating func requestKeyframe(now: Timestamp) {
        guard link == .up, keyframeGate.allow(now: now) else { return }
        emit(.uplink(.keyframeRequest))
    }

    /// The queue class of a screen frame, as the origin gives it (`LiveEvent.screenRoute`), and
    /// the players among `sessions` that take it: VP8 frames while the screen is VP8, never a
    /// config frame (VP8 has none in band).
    func screenRoute(_ frame: MediaFrame, sockets: LiveEvent.Audience, sessions: Set<ConnectionID> = []) -> LiveEvent.Route {
        let flags = frame.header.flags
        var video: LiveEvent.Audience = .none
        if !flags.contains(.config), !sessions.isEmpty, streamState?["screen"]?["codec"]?.stringValue?.lowercased() == "vp8" {
            video = .only(sessions.sorted())
        }
        return LiveEvent.Route(sockets: sockets, sessions: video,
                               queue: flags.contains(.config) ? .config : flags.contains(.keyframe) ? .screenKeyframe : .screen)
    }

    /// Every member but these: `Audience` has no sender-less form, so the lowest skipped
    /// connection stands in as the excepted one (the same set either way).
    static func allBut(_ skipped: Set<ConnectionID>) -> LiveEvent.Audience {
        guard let first = skipped.min() else { return .all }
        return .allExcept(first, skipping: skipped.subtracting([first]))
    }

    /// The origin ended the event: members closed with its code, clients it had not answered
    /// refused as a join after the end is.
    mutating func ended(_ code: CloseCode) {
        for (connection, client) in clients.sorted(by: { $0.value.number < $1.value.number }) {
            if client.admitted {
                emit(.close(connection, code))
            } else {
                refuse(connection, ProtocolError(.eventEnded, "This event has ended."))
            }
        }
        emit(.closeLink)
        finish(.ended)
    }

    var isScreenMode: Bool { streamState?["mode"]?.stringValue == StreamMode.screen.rawValue }

    /// The clients the origin welcomed, and the media-only clients it was told of.
    var members: [ConnectionID] { clients.filter { $0.value.admitted }.keys.sorted() }

    /// The members that screen frames reach: WebSockets and the players that take video.
    var viewers: [ConnectionID] { clients.filter { $0.value.admitted && ($0.value.mediaOnly?.video ?? true) }.keys.sorted() }
}
