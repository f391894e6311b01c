import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import AirwaveWebRTC
import AirwaveWebRTCUDP
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The WebRTC transport beside the WebSocket one: the UDP port shared by every session
/// (``WebRTCUDPDriver``, one socket per event loop of the server's group), the threads DTLS
/// handshakes run on (fewer than the cores' worth and at a lower priority than everything else,
/// so that a join storm cannot starve media, consent checks or WebSockets), the DTLS
/// certificate made at start, and the table of WHEP and WHIP
/// sessions with the event each belongs to. What a session reports (connected, audio, keyframe
/// requests, closed) is told to its event (``WebRTCEvent``: the origin's driver, or an edge's); what the event sends goes out
/// through `sendAudio`/`sendVideo`, one batch of datagrams per packet. Who gets a session at
/// all is ``WebRTCAdmission``'s decision, under the table's lock.
final class WebRTCGateway: Sendable {
    /// A session and the event it belongs to.
    private struct Entry: Sendable {
        let peer: WebRTCPeer
        let event: any WebRTCEvent
        /// The media ingress check a WebSocket sender gets too: validation, budgets, counters.
        var media: MediaIngress
        /// Keyframe requests (PLI/FIR) a WHEP listener may send: the control budget of a
        /// WebSocket's messages, since each becomes a `keyframe_request` of the event.
        var control: TokenBucket
        /// The publisher's RTP sequence numbers as the 32-bit ones of media frames.
        var sequence = RTPSequenceExtender()
        /// What the session counts against (given back when it is removed).
        let holder: WebRTCAdmission.Holder
    }

    private struct Table: Sendable {
        var bySession: [String: Entry] = [:]
        var sessionByUfrag: [String: String] = [:]
        var admission: WebRTCAdmission

        mutating func remove(_ sessionID: String) -> Entry? {
            guard let entry = bySession.removeValue(forKey: sessionID) else { return nil }
            sessionByUfrag[entry.peer.ufrag] = nil
            admission.release(entry.holder)
            return entry
        }
    }

    /// Why an offer got no session (the route's HTTP answer).
    enum OpenError: Error {
        case badOffer(String)
        /// The event refused the peer (a WHIP user who is not the host or a co-host, an event that ended).
        case refused
        case busy
        /// Over a limit of ``WebRTCAdmission``.
        case limited(WebRTCAdmission.Refusal)
    }

    let dtls: DTLSContext
    /// Host candidates of every answer: each announced address with the UDP port.
    let candidates: [TransportAddress]
    let port: Int
    private let udp: WebRTCUDPDriver
    private let handshakes: MultiThreadedEventLoopGroup
    private let table: NIOLockedValueBox<Table>
    /// The DTLS deadline and NACK budget of every session.
    private let sessionConfiguration: WebRTCSession.Configuration
    private let mediaLimits: MediaLimits
    private let controlRate: RateLimit
    private let metrics: ServerMetrics
    private let logger: Logger

    private init(udp: WebRTCUDPDriver, handshakes: MultiThreadedEventLoopGroup, dtls: DTLSContext, candidates: [TransportAddress], settings: WebRTCSettings,
                 mediaLimits: MediaLimits, controlRate: RateLimit, metrics: ServerMetrics, logger: Logger) {
        self.udp = udp
        self.handshakes = handshakes
        table = NIOLockedValueBox(Table(admission: WebRTCAdmission(limits: .init(settings))))
        var configuration = WebRTCSession.Configuration()
        configuration.handshakeDeadline = settings.handshakeDeadline
        configuration.retransmitPacketsPerSecond = settings.retransmitPacketsPerSecond
        configuration.retransmitBytesPerSecond = settings.retransmitBytesPerSecond
        sessionConfiguration = configuration
        self.dtls = dtls
        self.candidates = candidates
        self.port = udp.port
        self.mediaLimits = mediaLimits
        self.controlRate = controlRate
        self.metrics = metrics
        self.logger = logger
    }

    /// Makes the certificate and binds the UDP port; a port in use is a start error.
    static func start(settings: WebRTCSettings, httpHost: String, httpPort: Int, mediaLimits: MediaLimits, controlRate: RateLimit,
                      metrics: ServerMetrics, logger: Logger) async throws(ServerStartError) -> WebRTCGateway {
        let bindHost = httpHost == "localhost" ? "127.0.0.1" : httpHost
        let port = settings.port ?? httpPort
        guard (0...65535).contains(port) else {
            throw ServerStartError("--webrtc-port must be between 0 and 65535, not \(port).")
        }
        let dtls: DTLSContext
        do {
            dtls = try DTLSContext()
        } catch {
            throw ServerStartError("Cannot make the WebRTC DTLS certificate: \(error).")
        }
        // The UDP driver reports to the gateway, which needs the driver: the relay breaks the knot.
        let relay = NIOLockedValueBox<WebRTCGateway?>(nil)
        let udp: WebRTCUDPDriver
        var udpConfiguration = WebRTCUDPConfiguration(host: bindHost, port: port, maximumSessions: settings.maximumSessions)
        udpConfiguration.onDroppedDatagrams = { [metrics] reason, count in metrics.webRTCDatagramsDropped(reason: reason, count: count) }
        let handshakes = WebRTCUDPDriver.makeHandshakeGroup(threads: System.coreCount)
        udpConfiguration.handshakeGroup = handshakes
        do {
            udp = try await WebRTCUDPDriver.start(
                configuration: udpConfiguration,
                group: MultiThreadedEventLoopGroup.singleton,
                onEvent: { ufrag, event in relay.withLockedValue { $0 }?.handle(ufrag: ufrag, event: event) })
        } catch {
            try? await handshakes.shutdownGracefully()
            let reason: String
            if case .portInUse = error as? WebRTCUDPStartError { reason = "is already in use" } else { reason = "cannot be bound (\(error))" }
            throw ServerStartError("UDP port \(port) on \(bindHost) for WebRTC \(reason); --webrtc-port picks another, --disable-webrtc turns WebRTC off.")
        }
        let addresses = try announcedAddresses(settings.announcedAddresses, bindHost: bindHost)
        let candidates = addresses.compactMap { TransportAddress(host: $0, port: UInt16(udp.port)) }
        let gateway = WebRTCGateway(udp: udp, handshakes: handshakes, dtls: dtls, candidates: candidates, settings: settings, mediaLimits: mediaLimits,
                                    controlRate: controlRate, metrics: metrics, logger: logger)
        relay.withLockedValue { $0 = gateway }
        logger.info("webrtc", metadata: ["udp_port": "\(udp.port)", "announced": "\(addresses.joined(separator: ","))"])
        return gateway
    }

    /// The addresses the answers announce: the configured ones, else the bound address, else
    /// (bound to every interface) each interface's IPv4 address, loopback last.
    static func announcedAddresses(_ configured: [String], bindHost: String) throws(ServerStartError) -> [String] {
        if !configured.isEmpty {
            for address in configured where TransportAddress(host: address, port: 0) == nil {
                throw ServerStartError("--webrtc-announce takes IP addresses, not \(address).")
            }
            return configured
        }
        if bindHost != "0.0.0.0", bindHost != "::", TransportAddress(host: bindHost, port: 0) != nil { return [bindHost] }
        let interfaces = (try? System.enumerateDevices()) ?? []
        var found: [String] = []
        for device in interfaces {
            guard case .v4 = device.address, let ip = device.address?.ipAddress, !found.contains(ip) else { continue }
            found.append(ip)
        }
        let outside = found.filter { !$0.hasPrefix("127.") }
        return outside + ["127.0.0.1"]
    }

    /// Answers `offer`, lets the event `admit` the peer, and starts its session. The peer's `id`
    /// is its connection id in the event; `address` is the offer's ``admissionKey(_:)``, what
    /// an anonymous (unverified) user's session counts against. `speakers` (WHEP with
    /// `?audio=speakers`): one audio track per speaker instead of the mix.
    func open(offer: SessionDescription, kind: WebRTCPeer.Kind, id: ConnectionID, user: UserIdentity, from address: String,
              speakers: Bool = false, event: any WebRTCEvent,
              admit: @Sendable (WebRTCPeer) async -> Bool) async throws(OpenError) -> (peer: WebRTCPeer, answer: String) {
        var random = SystemRandomNumberGenerator()
        let credentials = ICECredentials.random()
        let (ufrag, password) = (credentials.ufrag, credentials.password)
        let sessionID = RandomToken.make(length: 16, alphabet: RandomToken.lowercaseAlphanumerics)
        let audioSSRC = UInt32.random(in: 1...UInt32.max, using: &random)
        let videoSSRC = UInt32.random(in: 1...UInt32.max, using: &random)
        let speakerSSRCs = kind == .whep && speakers
            ? (0..<AnswerParameters.maximumSpeakerTracks).map { _ in UInt32.random(in: 1...UInt32.max, using: &random) } : []
        let negotiated: NegotiatedSession
        do {
            var parameters = AnswerParameters(
                role: kind == .whep ? .listener : .speaker, iceUfrag: ufrag, icePassword: password,
                fingerprint: dtls.fingerprint, candidates: candidates, sendsVideo: kind == .whep,
                audioSSRC: audioSSRC, videoSSRC: videoSSRC, cname: "airwave-\(sessionID)", sessionID: UInt64.random(in: 1...UInt64(Int64.max), using: &random))
            parameters.speakerSSRCs = speakerSSRCs
            negotiated = try offer.answer(parameters)
        } catch {
            throw .badOffer(Self.describe(error, kind: kind))
        }
        let peer = WebRTCPeer(id: id, kind: kind, user: user, sessionID: sessionID, ufrag: ufrag,
                              receivesVideo: negotiated.video != nil, speakerTracks: negotiated.speakerAudio.count)
        // In the table before the event admits it, so that a close from the event in between
        // (the user's role ended) finds it; admitted and entered under one lock.
        let admitted = table.withLockedValue { table -> Result<Void, WebRTCAdmission.Refusal> in
            switch table.admission.admit(anonymousFrom: user.verified ? nil : address, now: .now()) {
            case .success(let holder):
                table.bySession[sessionID] = Entry(peer: peer, event: event, media: MediaIngress(limits: mediaLimits, metrics: metrics),
                                                   control: TokenBucket(rate: controlRate.perSecond, burst: controlRate.burst),
                                                   holder: holder)
                table.sessionByUfrag[ufrag] = sessionID
                return .success(())
            case .failure(let refusal):
                return .failure(refusal)
            }
        }
        if case .failure(let refusal) = admitted {
            logger.debug("webrtc offer refused", metadata: ["reason": "\(refusal)", "address": "\(address)"])
            throw .limited(refusal)
        }
        metrics.connectionsChanged(endpoint: kind.rawValue, by: 1)
        guard await admit(peer) else {
            forget(peer)
            throw .refused
        }
        let dtls = self.dtls
        let configuration = sessionConfiguration
        do {
            try await udp.addSession {
                try WebRTCSession(negotiated: negotiated, role: kind == .whep ? .listener : .speaker, localUfrag: ufrag,
                                  localPassword: password, audioSSRC: audioSSRC, videoSSRC: videoSSRC,
                                  speakerSSRCs: speakerSSRCs, dtlsContext: dtls,
                                  configuration: configuration, now: .now)
            }
        } catch {
            forget(peer)
            if kind == .whip { event.peerDisconnected(id) }  // the event admitted it already
            // The answer checked the offer; DTLS refusing its fingerprint is still the offer's fault.
            if let error = error as? DTLSError { throw .badOffer("The offer's a=fingerprint cannot be used: \(error).") }
            logger.warning("webrtc session refused", metadata: ["error": "\(error)"])
            throw .busy
        }
        guard table.withLockedValue({ $0.bySession[sessionID] != nil }) else {
            // The event closed it while the session was being made: it must not live on.
            try? await udp.removeSession(ufrag: ufrag)
            throw .refused
        }
        return (peer, negotiated.answer)
    }

    /// `DELETE` of a session's `Location`: ends it and tells its event. False if unknown.
    func hangUp(eventID: String, sessionID: String, kind: WebRTCPeer.Kind) -> Bool {
        let entry = table.withLockedValue { table -> Entry? in
            guard let entry = table.bySession[sessionID], entry.peer.kind == kind, entry.event.eventID == eventID else { return nil }
            return table.remove(sessionID)
        }
        guard let entry else { return false }
        end(entry.peer)
        entry.event.peerDisconnected(entry.peer.id)
        return true
    }

    /// The event closed this peer (role ended, event over, replaced): ends the session.
    func close(_ peer: WebRTCPeer) {
        guard table.withLockedValue({ $0.remove(peer.sessionID) }) != nil else { return }
        end(peer)
    }

    /// Drops a session that was never handed out.
    private func forget(_ peer: WebRTCPeer) {
        guard table.withLockedValue({ $0.remove(peer.sessionID) }) != nil else { return }
        metrics.connectionsChanged(endpoint: peer.kind.rawValue, by: -1)
    }

    private func end(_ peer: WebRTCPeer) {
        metrics.connectionsChanged(endpoint: peer.kind.rawValue, by: -1)
        let udp = self.udp
        Task { try? await udp.removeSession(ufrag: peer.ufrag) }  // close_notify to the peer
    }

    /// One mixed Opus packet to these listeners. `stream` names the mix output, so a listener
    /// moved to another output (it became a speaker) starts a new run of its RTP stream.
    func sendAudio(to ufrags: [String], payload: [UInt8], stream: UInt32, sequence: UInt32, timestamp: UInt32) {
        udp.sendAudio(to: ufrags, payload: payload, sourceSSRC: stream, sequenceNumber: UInt16(truncatingIfNeeded: sequence),
                      timestamp: timestamp)
    }

    /// One speaker's Opus packet, forwarded as it came, to these per-speaker listeners: each
    /// session puts `source` on a track of its own (``SpeakerTrackAssignment``) with `source`
    /// as the packet's CSRC.
    func sendSpeakerAudio(to ufrags: [String], source: UInt32, payload: [UInt8], sequence: UInt32, timestamp: UInt32) {
        udp.sendSpeakerAudio(to: ufrags, payload: payload, source: source, sequenceNumber: UInt16(truncatingIfNeeded: sequence),
                             timestamp: timestamp)
    }

    /// Speaker `source` stopped speaking: these per-speaker listeners free its track.
    func releaseSpeaker(_ source: UInt32, in ufrags: [String]) {
        udp.releaseSpeaker(source, in: ufrags)
    }

    /// One VP8 frame to these listeners.
    func sendVideo(to ufrags: [String], frame: [UInt8], timestamp: UInt32) {
        udp.sendVideo(to: ufrags, frame: frame, timestamp: timestamp)
    }

    /// Closes every session and the port.
    func shutdown() async {
        try? await udp.shutdown()
        try? await handshakes.shutdownGracefully()
    }

    /// A session's report, on the UDP event loop.
    private func handle(ufrag: String, event: WebRTCSession.Event) {
        guard let entry = table.withLockedValue({ table in table.sessionByUfrag[ufrag].flatMap { table.bySession[$0] } }) else {
            return
        }
        let peer = entry.peer
        switch event {
        case .connected:
            logger.debug("webrtc connected", metadata: ["kind": "\(peer.kind.rawValue)", "session": "\(peer.sessionID)"])
            // A listener counts from the moment media can reach it.
            if peer.kind == .whep, !entry.event.playerConnected(peer) {
                close(peer)
            }
        case .audio(let packet):
            guard peer.kind == .whip else { return }
            let verdict = table.withLockedValue { table -> MediaIngress.Verdict? in
                guard var entry = table.bySession[peer.sessionID] else { return nil }
                let header = MediaFrameHeader(kind: .opus, flags: packet.marker ? .marker : [],
                                              sequence: entry.sequence.extend(packet.sequenceNumber), timestamp: packet.timestamp)
                // Charged like the same frame on a WebSocket: its 16-byte header and the payload.
                let verdict = entry.media.admit(MediaFrame(header: header, payload: ByteBuffer(bytes: packet.payload)),
                                                wireBytes: MediaFrameHeader.size + packet.payload.count, now: .now())
                table.bySession[peer.sessionID] = entry
                return verdict
            }
            guard case .accepted(let frame)? = verdict else { return }
            entry.event.published(frame, by: peer.id)
        case .keyframeRequest:
            // Raw requests: the event's engine throttles what reaches the host.
            guard peer.kind == .whep else { return }
            let allowed = table.withLockedValue { table -> Bool in
                guard table.bySession[peer.sessionID]?.control.take(now: .now()) == true else { return false }
                return true
            }
            if allowed { entry.event.keyframeRequested(by: peer.id) }
        case .closed(let reason):
            guard table.withLockedValue({ $0.remove(peer.sessionID) }) != nil else { return }
            metrics.connectionsChanged(endpoint: peer.kind.rawValue, by: -1)
            logger.info("webrtc session ended", metadata: ["kind": "\(peer.kind.rawValue)", "session": "\(peer.sessionID)",
                                                           "reason": "\(reason)"])
            entry.event.peerDisconnected(peer.id)
        case .send:
            break  // the UDP driver writes datagrams itself
        }
    }

    private static func describe(_ error: AnswerError, kind: WebRTCPeer.Kind) -> String {
        switch error {
        case .missingICECredentials: "The offer has no a=ice-ufrag/a=ice-pwd."
        case .missingFingerprint: "The offer has no a=fingerprint."
        case .unsupportedFingerprint(let algorithm):
            "The offer's a=fingerprint uses \(algorithm); it must be sha-256 (or sha-1, sha-224, sha-384, sha-512)."
        case .unsupportedSetup(let setup): "The offer's a=setup:\(setup) is not actpass, active or passive."
        case .noUsableAudio:
            kind == .whep ? "The offer needs an audio section that receives Opus (48000/2)."
                : "The offer needs an audio section that sends Opus (48000/2)."
        case .rtcpMuxRequired: "The offer must use a=rtcp-mux."
        case .tooFewSpeakerSections(let count):
            "audio=speakers needs at least \(AnswerParameters.minimumSpeakerTracks) audio sections that receive Opus (48000/2); the offer has \(count)."
        }
    }

    /// What an anonymous session from `address` counts against: the IPv4 address, or the /64
    /// of an IPv6 one (an IPv4-mapped one is its IPv4 address). Unknown: one shared key.
    static func admissionKey(_ address: SocketAddress?) -> String {
        switch address {
        case .v4:
            return address?.ipAddress ?? "?"
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                return bytes[12...].map(String.init).joined(separator: ".")
            }
            let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            return groups.joined(separator: ":") + "::/64"
        default:
            return "?"
        }
    }
}
