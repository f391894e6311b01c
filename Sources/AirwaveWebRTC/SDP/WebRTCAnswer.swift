/// What a WebRTC peer does in an event: a WHEP listener receives the mix (and the screen), a
/// WHIP speaker sends its microphone.
public enum WebRTCPeerRole: Sendable, Equatable {
    /// WHEP: the server sends; the offer's media must be `recvonly` (or `sendrecv`).
    case listener
    /// WHIP: the server receives; the offer's audio must be `sendonly` (or `sendrecv`).
    case speaker
}

/// The server side's parameters for an answer.
public struct AnswerParameters: Sendable {
    public var role: WebRTCPeerRole
    public var iceUfrag: String
    public var icePassword: String
    /// The local certificate's fingerprint (`DTLSCertificate.fingerprint`).
    public var fingerprint: CertificateFingerprint
    /// Host candidates: every announced address with the shared UDP port.
    public var candidates: [TransportAddress]
    /// Whether a VP8 video track is offered to a listener (the event's screen codec is VP8).
    public var sendsVideo: Bool
    /// SSRCs the server sends with (listener role).
    public var audioSSRC: UInt32
    public var videoSSRC: UInt32
    /// Per-speaker audio (`?audio=speakers`): one SSRC for each audio section the answer may
    /// accept, in section order; empty for the mix (one audio section, `audioSSRC`). At most
    /// `maximumSpeakerTracks`; an offer needs at least `minimumSpeakerTracks` such sections.
    public var speakerSSRCs: [UInt32] = []
    /// RTCP CNAME of the server's streams.
    public var cname: String
    /// `o=` session id: random per session.
    public var sessionID: UInt64

    public init(role: WebRTCPeerRole, iceUfrag: String, icePassword: String, fingerprint: CertificateFingerprint,
                candidates: [TransportAddress], sendsVideo: Bool, audioSSRC: UInt32, videoSSRC: UInt32,
                cname: String, sessionID: UInt64) {
        self.role = role
        self.iceUfrag = iceUfrag
        self.icePassword = icePassword
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.sendsVideo = sendsVideo
        self.audioSSRC = audioSSRC
        self.videoSSRC = videoSSRC
        self.cname = cname
        self.sessionID = sessionID
    }
}

/// One accepted media section of the answer.
public struct NegotiatedMedia: Equatable, Sendable {
    public var mid: String
    /// Opus or VP8 payload type, as the offer numbered it.
    public var payloadType: UInt8
    /// SSRCs the offer announced (the peer's sending SSRCs, for a speaker).
    public var remoteSSRCs: [UInt32]
    /// `a=rtcp-fb` support the offer declared and the answer kept.
    public var nack: Bool
    public var pli: Bool
    public var fir: Bool
}

/// The outcome of answering an offer: the SDP text and what the session needs to run.
public struct NegotiatedSession: Equatable, Sendable {
    public var answer: String
    public var remoteUfrag: String
    public var remotePassword: String
    public var remoteFingerprint: CertificateFingerprint
    /// This server's DTLS role, from the offer's `a=setup`.
    public var dtlsRole: DTLSRole
    public var audio: NegotiatedMedia?
    public var video: NegotiatedMedia?
    /// Per-speaker audio: every accepted audio section in offer order (the first is `audio`),
    /// section `i` sending with `AnswerParameters.speakerSSRCs[i]`. Empty for the mix.
    public var speakerAudio: [NegotiatedMedia] = []
}

/// Why an offer cannot be answered (the WHIP/WHEP endpoint replies 400).
public enum AnswerError: Error, Equatable, Sendable {
    case missingICECredentials
    case missingFingerprint
    /// Every `a=fingerprint` uses a hash the DTLS layer cannot check (e.g. `md5`, RFC 8122
    /// §5 forbids it): the algorithm named by the first one.
    case unsupportedFingerprint(String)
    case unsupportedSetup(String)
    case noUsableAudio
    case rtcpMuxRequired
    /// Per-speaker audio was asked for, but fewer than `minimumSpeakerTracks` audio sections
    /// receive Opus: the count there is.
    case tooFewSpeakerSections(Int)
}

extension AnswerParameters {
    /// Fewest audio sections a per-speaker offer must have (one would be a mix of one).
    public static let minimumSpeakerTracks = 2
    /// Most per-speaker audio sections an answer accepts; later ones are rejected (port 0).
    public static let maximumSpeakerTracks = 8
}

extension SessionDescription {
    /// Answers a WebRTC offer as an ICE-lite, BUNDLE-only, rtcp-mux-only server.
    ///
    /// The first audio section with Opus (48000/2) is accepted in the direction the role needs;
    /// for a listener with `sendsVideo`, the first video section with VP8 too. Every other
    /// section is rejected (port 0). All accepted sections share one transport (one BUNDLE
    /// group), so the ICE credentials and fingerprint are read from the first accepted section
    /// or the session level. DTLS role: `actpass` or `active` in the offer make the server
    /// `passive` (DTLS server); `passive` makes it `active` (client).
    ///
    /// With `speakerSSRCs` (a listener that wants one track per speaker) every audio section
    /// that receives Opus is accepted, up to `speakerSSRCs.count`, each with its own SSRC and
    /// msid track `speaker-<n>`; fewer than `minimumSpeakerTracks` throws.
    public func answer(_ parameters: AnswerParameters) throws(AnswerError) -> NegotiatedSession {
        var audio: (index: Int, media: NegotiatedMedia)?
        var video: (index: Int, media: NegotiatedMedia)?
        var speakerAudio: [(index: Int, media: NegotiatedMedia)] = []
        let perSpeaker = parameters.role == .listener && !parameters.speakerSSRCs.isEmpty
        for (index, section) in media.enumerated() where section.port != 0 && section.proto.hasPrefix("UDP/TLS/RTP/SAVP") {
            let direction = section.direction
            switch (section.kind, parameters.role) {
            case ("audio", .listener) where perSpeaker && speakerAudio.count < parameters.speakerSSRCs.count
                && (direction == .recvonly || direction == .sendrecv):
                guard let opus = section.rtpMaps.first(where: {
                    $0.encoding.lowercased() == "opus" && $0.clockRate == 48000 && $0.channels == 2
                }) else { continue }
                speakerAudio.append((index, negotiated(section, index: index, payloadType: opus.payloadType)))
                if audio == nil { audio = speakerAudio[0] }
            case ("audio", .listener) where !perSpeaker && audio == nil && (direction == .recvonly || direction == .sendrecv),
                 ("audio", .speaker) where audio == nil && (direction == .sendonly || direction == .sendrecv):
                guard let opus = section.rtpMaps.first(where: {
                    $0.encoding.lowercased() == "opus" && $0.clockRate == 48000 && $0.channels == 2
                }) else { continue }
                audio = (index, negotiated(section, index: index, payloadType: opus.payloadType))
            case ("video", .listener) where parameters.sendsVideo && video == nil
                && (direction == .recvonly || direction == .sendrecv):
                guard let vp8 = section.rtpMaps.first(where: { $0.encoding.uppercased() == "VP8" && $0.clockRate == 90000 })
                else { continue }
                video = (index, negotiated(section, index: index, payloadType: vp8.payloadType))
            default:
                continue
            }
        }
        guard let audio else { throw .noUsableAudio }
        if perSpeaker, speakerAudio.count < AnswerParameters.minimumSpeakerTracks {
            throw .tooFewSpeakerSections(speakerAudio.count)
        }
        let transport = media[audio.index]
        guard transport.has("rtcp-mux") else { throw .rtcpMuxRequired }
        guard let ufrag = transport.value(of: "ice-ufrag") ?? value(of: "ice-ufrag"),
              let password = transport.value(of: "ice-pwd") ?? value(of: "ice-pwd"),
              !ufrag.isEmpty, !password.isEmpty
        else { throw .missingICECredentials }
        let fingerprints = (transport.values(of: "fingerprint") + attributes.compactMap {
            $0.name == "fingerprint" ? $0.value : nil
        }).compactMap(CertificateFingerprint.init(attributeValue:))
        guard !fingerprints.isEmpty else { throw .missingFingerprint }
        // Only a hash DTLS can verify, with a digest of that hash's length: anything else would
        // fail later, when the session is made, and look like a server fault rather than a bad offer.
        let usable = fingerprints.filter(\.isVerifiable)
        guard let fingerprint = usable.first(where: { $0.algorithm == "sha-256" }) ?? usable.first else {
            throw .unsupportedFingerprint(fingerprints[0].algorithm)
        }
        let setup = transport.value(of: "setup") ?? value(of: "setup") ?? "actpass"
        let dtlsRole: DTLSRole
        switch setup {
        case "actpass", "active": dtlsRole = .server
        case "passive": dtlsRole = .client
        default: throw .unsupportedSetup(setup)
        }

        var lines = [
            "v=0",
            "o=- \(parameters.sessionID) 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=ice-lite",
        ]
        let accepted = (perSpeaker ? speakerAudio : [audio]) + [video].compactMap { $0 }
        lines.append("a=group:BUNDLE " + accepted.sorted { $0.index < $1.index }.map(\.media.mid).joined(separator: " "))
        lines.append("a=msid-semantic: WMS airwave")
        for (index, section) in media.enumerated() {
            if let accepted = accepted.first(where: { $0.index == index }) {
                let track: (ssrc: UInt32, name: String)
                if section.kind != "audio" {
                    track = (parameters.videoSSRC, "screen")
                } else if let n = speakerAudio.firstIndex(where: { $0.index == index }) {
                    track = (parameters.speakerSSRCs[n], "speaker-\(n)")
                } else {
                    track = (parameters.audioSSRC, "mix")
                }
                lines += acceptedSection(section, accepted.media, parameters: parameters, dtlsRole: dtlsRole, track: track)
            } else {
                lines.append("m=\(section.kind) 0 \(section.proto) \(section.formats.joined(separator: " "))")
                lines.append("c=IN IP4 0.0.0.0")
                if let mid = section.mid { lines.append("a=mid:\(mid)") }
                lines.append("a=inactive")
            }
        }
        return NegotiatedSession(
            answer: lines.joined(separator: "\r\n") + "\r\n",
            remoteUfrag: ufrag, remotePassword: password, remoteFingerprint: fingerprint, dtlsRole: dtlsRole,
            audio: audio.media, video: video?.media, speakerAudio: speakerAudio.map(\.media))
    }

    private func negotiated(_ section: MediaDescription, index: Int, payloadType: UInt8) -> NegotiatedMedia {
        let feedback = section.feedback(payloadType)
        return NegotiatedMedia(
            mid: section.mid ?? String(index), payloadType: payloadType, remoteSSRCs: section.ssrcs,
            nack: feedback.contains("nack"), pli: feedback.contains("nack pli"), fir: feedback.contains("ccm fir"))
    }

    private func acceptedSection(_ section: MediaDescription, _ negotiated: NegotiatedMedia,
                                 parameters: AnswerParameters, dtlsRole: DTLSRole,
                                 track: (ssrc: UInt32, name: String)) -> [String] {
        let port = parameters.candidates.first?.port ?? 9
        var lines = ["m=\(section.kind) \(port) \(section.proto) \(negotiated.payloadType)"]
        if let first = parameters.candidates.first {
            lines.append("c=IN \(first.isIPv6 ? "IP6" : "IP4") \(first.host)")
        } else {
            lines.append("c=IN IP4 0.0.0.0")
        }
        lines.append("a=mid:\(negotiated.mid)")
        lines.append("a=ice-ufrag:\(parameters.iceUfrag)")
        lines.append("a=ice-pwd:\(parameters.icePassword)")
        lines.append("a=fingerprint:\(parameters.fingerprint.attributeValue)")
        lines.append("a=setup:\(dtlsRole == .server ? "passive" : "active")")
        lines.append(parameters.role == .listener ? "a=sendonly" : "a=recvonly")
        lines.append("a=rtcp-mux")
        if section.kind == "audio" {
            lines.append("a=rtpmap:\(negotiated.payloadType) opus/48000/2")
            lines.append("a=fmtp:\(negotiated.payloadType) minptime=10;useinbandfec=1")
        } else {
            lines.append("a=rtpmap:\(negotiated.payloadType) VP8/90000")
        }
        if negotiated.nack { lines.append("a=rtcp-fb:\(negotiated.payloadType) nack") }
        if negotiated.pli { lines.append("a=rtcp-fb:\(negotiated.payloadType) nack pli") }
        if negotiated.fir { lines.append("a=rtcp-fb:\(negotiated.payloadType) ccm fir") }
        if parameters.role == .listener {
            lines.append("a=msid:airwave \(track.name)")
            lines.append("a=ssrc:\(track.ssrc) cname:\(parameters.cname)")
            lines.append("a=ssrc:\(track.ssrc) msid:airwave \(track.name)")
        }
        for (index, candidate) in parameters.candidates.enumerated() {
            // Host candidates only; type preference 126, local preference by announcement order.
            let priority = UInt32(126) << 24 | UInt32(65535 - min(index, 65535)) << 8 | (256 - 1)
            lines.append("a=candidate:\(index + 1) 1 udp \(priority) \(candidate.host) \(candidate.port) typ host")
        }
        lines.append("a=end-of-candidates")
        return lines
    }
}

extension TransportAddress {
    var isIPv6: Bool {
        if case .v6 = ip { return true }
        return false
    }
}
