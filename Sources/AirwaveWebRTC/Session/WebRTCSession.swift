/// One WHEP listener's or WHIP speaker's WebRTC session, sans-IO: ICE-lite, DTLS-SRTP and RTP
/// on top of the answered SDP. The owner feeds it datagrams from the shared UDP port, timer
/// ticks and media to send; it returns `Event`s (datagrams to send, received audio, keyframe
/// requests, closure). Time is an input; the one exception is OpenSSL's DTLS retransmission
/// timer, whose remaining time `nextTimer` includes.
///
/// Confined to one owner (the driver's event loop); not thread-safe.
public final class WebRTCSession {
    /// Limits of one session (issue 13): how long DTLS may take, and what NACKs may cost.
    public struct Configuration: Sendable {
        /// A session whose DTLS handshake has not completed this long after it was made (the
        /// answer) is closed: a peer that answers consent checks but never finishes DTLS
        /// would otherwise hold its slot for good.
        public var handshakeDeadline: Duration = .seconds(10)
        /// Packets resent on NACK per second (and at once).
        public var retransmitPacketsPerSecond = 250
        /// Bytes resent on NACK per second (and at once).
        public var retransmitBytesPerSecond = 256 * 1024
        /// One packet is resent at most once within this, however often it is NACKed.
        public var retransmitInterval: Duration = .milliseconds(100)
        /// The DTLS connection is freed (`DTLSEndpoint.release`, about 43 KB) once connected
        /// and this long without a DTLS datagram from the peer: a peer that missed the last
        /// flight retransmits its own within a few seconds (1 s, then 2 s, 4 s), and must get an
        /// answer.
        public var dtlsReleaseDelay: Duration = .seconds(10)
        public var ice = ICELiteAgent.Configuration()
        public init() {}
    }

    public enum Event: Equatable, Sendable {
        /// A datagram to send.
        case send([UInt8], to: TransportAddress)
        /// ICE nominated an address and DTLS finished: media can flow.
        case connected
        /// Audio from a WHIP speaker, decrypted, with the negotiated Opus payload type.
        case audio(RTPPacket)
        /// A listener asked for a keyframe (PLI or FIR on the video SSRC). Every request is
        /// reported: the event's engine holds the one keyframe throttle, and the server's
        /// ingress budget bounds how many reach it.
        case keyframeRequest
        case closed(CloseReason)
    }

    /// One datagram to send: what `Event.send` carries, on its own for the media path.
    public struct Datagram: Equatable, Sendable {
        public let bytes: [UInt8]
        public let destination: TransportAddress
    }

    public enum CloseReason: Equatable, Sendable {
        /// No verified connectivity check for the consent timeout (or never).
        case consentExpired
        /// DTLS had not completed `handshakeDeadline` after the session was made.
        case handshakeTimeout
        case dtlsFailed(DTLSError)
        /// The peer sent close_notify.
        case dtlsClosed
    }

    public let role: WebRTCPeerRole
    public let negotiated: NegotiatedSession
    public let localUfrag: String
    public let localPassword: String
    /// How often sender reports go out while media flows.
    public var senderReportInterval: Duration = .seconds(1)
    public let configuration: Configuration

    public private(set) var isConnected = false
    public private(set) var isClosed = false
    private var ice: ICELiteAgent
    private let dtls: DTLSEndpoint
    private var srtp: SRTPSession?
    private var audio: OutboundStream?
    private var video: OutboundStream?
    /// Per-speaker audio (`?audio=speakers`): one stream per accepted audio section, each with
    /// its own SSRC for the whole session, and which speaker each carries. Empty for the mix.
    private var speakerStreams: [OutboundStream] = []
    private var speakerTracks: SpeakerTrackAssignment?
    private var videoPacketizer = VP8Packetizer()
    private let localSSRC: UInt32
    private var nextSenderReport: ContinuousClock.Instant?
    private let handshakeDeadline: ContinuousClock.Instant
    private var retransmissions: RetransmissionBudget
    /// The consented address DTLS last came from: where handshake retransmissions go before
    /// ICE has nominated (the session as DTLS server).
    private var dtlsPeer: TransportAddress?
    /// DTLS datagrams from an address that passed the peer's check but has not yet answered
    /// the agent's own: processed if it does (a ClientHello may overtake that answer).
    private var heldDTLS: [(source: TransportAddress, datagram: [UInt8])] = []
    /// When the peer last sent DTLS (or the session was made): the release waits for quiet.
    private var lastDTLSAt: ContinuousClock.Instant
    private static let maximumHeldDTLS = 4

    /// `localUfrag` and `localPassword` must be the ones in the answer (`AnswerParameters`), and
    /// `speakerSSRCs` its `speakerSSRCs` (empty for the mix).
    public init(negotiated: NegotiatedSession, role: WebRTCPeerRole, localUfrag: String, localPassword: String,
                audioSSRC: UInt32, videoSSRC: UInt32, speakerSSRCs: [UInt32] = [], dtlsContext: DTLSContext,
                configuration: Configuration = .init(), now: ContinuousClock.Instant) throws(DTLSError) {
        self.role = role
        self.negotiated = negotiated
        self.localUfrag = localUfrag
        self.localPassword = localPassword
        self.localSSRC = audioSSRC
        self.configuration = configuration
        handshakeDeadline = now + configuration.handshakeDeadline
        lastDTLSAt = now
        retransmissions = RetransmissionBudget(packetsPerSecond: configuration.retransmitPacketsPerSecond,
                                               bytesPerSecond: configuration.retransmitBytesPerSecond, now: now)
        ice = ICELiteAgent(localUfrag: localUfrag, localPassword: localPassword, remoteUfrag: negotiated.remoteUfrag,
                           remotePassword: negotiated.remotePassword, configuration: configuration.ice, now: now)
        dtls = try DTLSEndpoint(context: dtlsContext, role: negotiated.dtlsRole,
                                remoteFingerprint: negotiated.remoteFingerprint)
        if role == .listener, !negotiated.speakerAudio.isEmpty {
            precondition(speakerSSRCs.count >= negotiated.speakerAudio.count, "an SSRC per speaker section")
            speakerStreams = negotiated.speakerAudio.enumerated().map { index, media in
                OutboundStream(ssrc: speakerSSRCs[index], payloadType: media.payloadType, clockRate: 48000, historyCapacity: 128)
            }
            speakerTracks = SpeakerTrackAssignment(tracks: speakerStreams.count)
        } else if role == .listener, let media = negotiated.audio {
            // 50 packets a second of 20 ms audio: 128 cover the 1 s a NACK is answered for.
            audio = OutboundStream(ssrc: audioSSRC, payloadType: media.payloadType, clockRate: 48000, historyCapacity: 128)
        }
        if role == .listener, let media = negotiated.video {
            video = OutboundStream(ssrc: videoSSRC, payloadType: media.payloadType, clockRate: 90000, historyCapacity: 512)
        }
    }

    /// Whether the DTLS connection was freed (see `Configuration.dtlsReleaseDelay`).
    public var isDTLSReleased: Bool { dtls.isReleased }

    /// The address media goes to, once ICE has nominated one.
    public var remoteAddress: TransportAddress? { ice.selected }

    /// Whether `address` sent a verified connectivity check: the driver routes its datagrams
    /// (including answers to the session's own checks, which carry no USERNAME) here from then
    /// on. The session itself takes DTLS, RTP and RTCP only from consented addresses.
    public func accepts(_ address: TransportAddress) -> Bool { ice.validatedAddresses.contains(address) }

    /// Whether `address` answered the session's own check (RFC 7675 consent): the only
    /// addresses it sends to and takes DTLS, RTP and RTCP from.
    public func hasConsent(from address: TransportAddress) -> Bool { ice.accepts(mediaFrom: address) }

    /// Handles a datagram from `source` that the driver routed to this session.
    public func handle(datagram: [UInt8], from source: TransportAddress, now: ContinuousClock.Instant) -> [Event] {
        guard !isClosed else { return [] }
        var events: [Event] = []
        switch PacketKind(datagram: datagram) {
        case .stun:
            let wasSelected = ice.selected
            for action in ice.handleSTUN(datagram, from: source, now: now) {
                switch action {
                case let .send(bytes, to):
                    events.append(.send(bytes, to: to))
                case let .consented(address):
                    events += releaseHeldDTLS(from: address, now: now)
                }
            }
            if wasSelected == nil, let selected = ice.selected, dtls.role == .client, !isClosed {
                events += dtls.start().map { .send($0, to: selected) }
            }
        case .dtls:
            if ice.accepts(mediaFrom: source) {
                events += handleDTLS(datagram, from: source, now: now)
            } else if ice.isProbing(source), heldDTLS.count < Self.maximumHeldDTLS {
                heldDTLS.append((source, datagram))
            }
        case .rtp:
            guard ice.accepts(mediaFrom: source), let srtp, role == .speaker else { return [] }
            var packet = datagram
            guard (try? srtp.unprotectRTP(&packet)) != nil, let rtp = try? RTPPacket.parse(packet),
                  rtp.payloadType == negotiated.audio?.payloadType
            else { return [] }
            events.append(.audio(rtp))
        case .rtcp:
            guard ice.accepts(mediaFrom: source), let srtp else { return [] }
            var packet = datagram
            guard (try? srtp.unprotectRTCP(&packet)) != nil, let rtcp = try? RTCPPacket.parseCompound(packet) else {
                return []
            }
            events += handle(rtcp, now: now)
        case .unknown:
            break
        }
        return events
    }

    private func handleDTLS(_ datagram: [UInt8], from source: TransportAddress, now: ContinuousClock.Instant) -> [Event] {
        guard !isClosed else { return [] }
        dtlsPeer = source
        lastDTLSAt = now
        return dtls.handleDatagram(datagram).map { .send($0, to: source) } + checkDTLS(now: now)
    }

    private func releaseHeldDTLS(from address: TransportAddress, now: ContinuousClock.Instant) -> [Event] {
        let released = heldDTLS.filter { $0.source == address }
        heldDTLS.removeAll { $0.source == address }
        return released.flatMap { handleDTLS($0.datagram, from: address, now: now) }
    }

    private func checkDTLS(now: ContinuousClock.Instant) -> [Event] {
        switch dtls.state {
        case .handshaking:
            return []
        case let .connected(keys):
            guard srtp == nil else { return [] }
            do {
                srtp = try SRTPSession(keyingMaterial: keys, role: dtls.role)
            } catch {
                return close(.dtlsFailed(.noSRTPProfile))
            }
            isConnected = true
            heldDTLS = []
            nextSenderReport = now + senderReportInterval
            return [.connected]
        case let .failed(error):
            return close(.dtlsFailed(error))
        case .closed:
            return close(.dtlsClosed)
        }
    }

    private func handle(_ packets: [RTCPPacket], now: ContinuousClock.Instant) -> [Event] {
        var events: [Event] = []
        for packet in packets {
            switch packet {
            case let .nack(_, mediaSSRC, lost):
                events += retransmit(mediaSSRC: mediaSSRC, lost: lost, now: now)
            case let .pli(_, mediaSSRC) where mediaSSRC == video?.statistics.ssrc:
                events.append(.keyframeRequest)
            case let .fir(_, entries) where entries.contains(where: { $0.ssrc == video?.statistics.ssrc }):
                events.append(.keyframeRequest)
            case let .receiverReport(report):
                for block in report.reports { handle(block, now: now) }
            case let .senderReport(report):
                for block in report.reports { handle(block, now: now) }
            default:
                continue
            }
        }
        return events
    }

    private func handle(_ block: RTCPPacket.ReportBlock, now: ContinuousClock.Instant) {
        audio?.statistics.handle(block, now: now)
        video?.statistics.handle(block, now: now)
        for index in speakerStreams.indices { speakerStreams[index].statistics.handle(block, now: now) }
    }

    /// Resends NACKed packets: each at most once per `retransmitInterval` (a compound may
    /// list one packet many times), within the session's per-second budget of packets and bytes.
    private func retransmit(mediaSSRC: UInt32, lost: [UInt16], now: ContinuousClock.Instant) -> [Event] {
        guard let srtp, let destination = ice.selected else { return [] }
        let streams = [audio, video].compactMap { $0 } + speakerStreams
        guard let stream = streams.first(where: { $0.statistics.ssrc == mediaSSRC }) else { return [] }
        return retransmit(lost: lost, stream: stream, srtp: srtp, destination: destination, now: now)
    }

    private func retransmit(lost: [UInt16], stream: OutboundStream, srtp: SRTPSession, destination: TransportAddress,
                            now: ContinuousClock.Instant) -> [Event] {
        var events: [Event] = []
        for sequence in lost.prefix(stream.history.capacity) {
            guard let stored = stream.history.retransmission(sequenceNumber: sequence, now: now,
                                                             minimumInterval: configuration.retransmitInterval)
            else { continue }
            var packet = stored.serialized(reservingCapacity: SRTPSession.trailerCapacity)
            guard (try? srtp.protectRTP(&packet)) != nil else { continue }
            // Counted as sent: the budget is spent on the datagram as it goes out.
            guard retransmissions.spend(bytes: packet.count, now: now) else { break }
            stream.history.markResent(sequenceNumber: sequence, now: now)
            events.append(.send(packet, to: destination))
        }
        return events
    }

    /// Sends one Opus packet of the mix to a listener. The source's SSRC, sequence number and
    /// timestamp are rewritten onto the listener's continuous stream.
    public func sendAudio(payload: [UInt8], sourceSSRC: UInt32, sequenceNumber: UInt16, timestamp: UInt32,
                          now: ContinuousClock.Instant) -> [Event] {
        audioDatagram(payload: payload, sourceSSRC: sourceSSRC, sequenceNumber: sequenceNumber, timestamp: timestamp,
                      now: now).events
    }

    /// `sendAudio`'s one datagram on its own: the fan-out's path, which makes no array per
    /// packet and listener.
    public func audioDatagram(payload: [UInt8], sourceSSRC: UInt32, sequenceNumber: UInt16, timestamp: UInt32,
                              now: ContinuousClock.Instant) -> Datagram? {
        guard isConnected, !isClosed, let audio else { return nil }
        return send(payload: payload, marker: false, stream: audio, sourceSSRC: sourceSSRC,
                    sequenceNumber: sequenceNumber, timestamp: timestamp, now: now)
    }

    /// Sends one Opus packet of speaker `source` (its event source id) to a per-speaker
    /// listener, on the track `SpeakerTrackAssignment` gives it, with `source` as the packet's
    /// one CSRC (RFC 3550 5.1: the contributing source; browsers expose it as
    /// `RTCRtpReceiver.getContributingSources()`). Nothing when every track is busy with
    /// other speakers. Header fields are rewritten onto the track's stream as for the mix: a
    /// new speaker on a track starts a run (marker bit, timestamp advanced by wall-clock time).
    public func sendSpeakerAudio(payload: [UInt8], source: UInt32, sequenceNumber: UInt16, timestamp: UInt32,
                                 now: ContinuousClock.Instant) -> [Event] {
        speakerAudioDatagram(payload: payload, source: source, sequenceNumber: sequenceNumber, timestamp: timestamp,
                             now: now).events
    }

    /// `sendSpeakerAudio`'s one datagram on its own, for the fan-out.
    public func speakerAudioDatagram(payload: [UInt8], source: UInt32, sequenceNumber: UInt16, timestamp: UInt32,
                                     now: ContinuousClock.Instant) -> Datagram? {
        guard isConnected, !isClosed, let track = speakerTracks?.track(for: source, now: now) else { return nil }
        return send(payload: payload, marker: false, stream: speakerStreams[track], sourceSSRC: source,
                    sequenceNumber: sequenceNumber, timestamp: timestamp, csrcs: [source], now: now)
    }

    /// Speaker `source` stopped speaking (muted, demoted, gone): its track is free for another.
    public func releaseSpeaker(_ source: UInt32) {
        speakerTracks?.release(source)
    }

    /// The SSRC of each per-speaker track, in section order (empty for the mix).
    public var speakerTrackSSRCs: [UInt32] { speakerStreams.map(\.statistics.ssrc) }

    /// Sends one VP8 frame of the screen to a listener (RFC 7741 packetization, marker on the
    /// last packet). `timestamp` is the frame's 90 kHz time.
    public func sendVideo(frame: [UInt8], timestamp: UInt32, now: ContinuousClock.Instant) -> [Event] {
        guard isConnected, !isClosed, let stream = video else { return [] }
        var events: [Event] = []
        let payloads = videoPacketizer.packetize(frame: frame)
        for (index, payload) in payloads.enumerated() {
            // The screen is one source: its sequence is the packet count, rewritten like audio.
            let sequence = UInt16(truncatingIfNeeded: stream.statistics.packetCount)
            events += send(payload: payload, marker: index == payloads.count - 1, stream: stream, sourceSSRC: 0,
                           sequenceNumber: sequence, timestamp: timestamp, now: now).events
        }
        return events
    }

    private func send(payload: [UInt8], marker: Bool, stream: OutboundStream, sourceSSRC: UInt32,
                      sequenceNumber: UInt16, timestamp: UInt32, csrcs: [UInt32] = [], now: ContinuousClock.Instant) -> Datagram? {
        guard let srtp, let destination = ice.selected,
              let rewritten = stream.rewriter.rewrite(sourceSSRC: sourceSSRC, sequenceNumber: sequenceNumber,
                                                      timestamp: timestamp, now: now)
        else { return nil }
        let header = RTPPacket(marker: marker || (rewritten.startsRun && stream.rewriter.clockRate == 48000),
                               payloadType: stream.payloadType, sequenceNumber: rewritten.sequenceNumber,
                               timestamp: rewritten.timestamp, ssrc: rewritten.ssrc, csrcs: csrcs, payload: payload)
        stream.history.store(header, now: now)
        var packet = header.serialized(reservingCapacity: SRTPSession.trailerCapacity)
        stream.statistics.recordSent(timestamp: rewritten.timestamp, payloadBytes: payload.count, now: now)
        guard (try? srtp.protectRTP(&packet)) != nil else { return nil }
        return Datagram(bytes: packet, destination: destination)
    }

    /// When `handleTimer` should next run: consent and ICE checks, the DTLS deadline and
    /// retransmission, sender reports.
    public func nextTimer(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard !isClosed else { return nil }
        let deadline = isConnected ? nil : handshakeDeadline
        let release = isConnected && !dtls.isReleased ? lastDTLSAt + configuration.dtlsReleaseDelay : nil
        let candidates = [ice.nextTimer, deadline, dtls.timeout.map { now + $0 }, nextSenderReport, release].compactMap { $0 }
        return candidates.min()
    }

    /// Advances time. `ntpTime` is the wall clock at `now`, for sender reports.
    public func handleTimer(now: ContinuousClock.Instant, ntpTime: UInt64) -> [Event] {
        guard !isClosed else { return [] }
        var events: [Event] = ice.handleTimer(now: now).compactMap { action in
            guard case let .send(bytes, to) = action else { return nil }
            return .send(bytes, to: to)
        }
        if ice.state == .expired { return close(.consentExpired) }
        if !isConnected, now >= handshakeDeadline { return close(.handshakeTimeout) }
        if let destination = ice.selected ?? dtlsPeer, dtls.timeout.map({ $0 <= .zero }) == true {
            events += dtls.handleTimeout().map { .send($0, to: destination) }
            events += checkDTLS(now: now)
        }
        if isConnected, !dtls.isReleased, now >= lastDTLSAt + configuration.dtlsReleaseDelay {
            dtls.release()
        }
        if let due = nextSenderReport, now >= due, let srtp, let destination = ice.selected {
            nextSenderReport = now + senderReportInterval
            var reports: [RTCPPacket] = []
            if let report = audio?.statistics.senderReport(now: now, ntpTime: ntpTime) { reports.append(report) }
            if let report = video?.statistics.senderReport(now: now, ntpTime: ntpTime) { reports.append(report) }
            for index in speakerStreams.indices {
                if let report = speakerStreams[index].statistics.senderReport(now: now, ntpTime: ntpTime) { reports.append(report) }
            }
            if role == .speaker {
                // Keeps RTCP flowing from the server side; per-stream reception statistics
                // (loss, jitter) are not tracked for speakers yet.
                reports.append(.receiverReport(.init(ssrc: localSSRC, reports: [])))
            }
            if !reports.isEmpty {
                var packet = RTCPPacket.serializeCompound(reports)
                if (try? srtp.protectRTCP(&packet)) != nil { events.append(.send(packet, to: destination)) }
            }
        }
        return events
    }

    /// Ends the session: close_notify to the peer if DTLS is up.
    public func close() -> [Event] {
        guard !isClosed else { return [] }
        let destination = ice.selected
        let alert = dtls.close()
        isClosed = true
        guard let destination else { return [] }
        return alert.map { .send($0, to: destination) }
    }

    private func close(_ reason: CloseReason) -> [Event] {
        isClosed = true
        return [.closed(reason)]
    }
}

extension WebRTCSession.Datagram? {
    /// The datagram as the session's events: one `send`, or none.
    var events: [WebRTCSession.Event] {
        map { [.send($0.bytes, to: $0.destination)] } ?? []
    }
}
