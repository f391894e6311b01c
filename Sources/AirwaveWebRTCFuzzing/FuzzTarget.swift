import AirwaveWebRTC

/// One parser under fuzzing: its seed inputs and a function that runs everything built on that
/// parser over an input and checks the result (round trips, see `run`). A crash ends the
/// process; a broken property is returned.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case stun
    case rtp
    case rtcp
    case sdp

    /// Seed inputs. `sdpOffers` are the SDP fixtures' texts (Fixtures/webrtc/*.sdp).
    public func seeds(sdpOffers: [String]) -> [[UInt8]] {
        switch self {
        case .stun:
            let request = STUNMessage(
                messageClass: .request, transactionID: Array(0..<12),
                attributes: [
                    .username("abcd:efgh"), STUNAttribute(.priority, value: [0x6E, 0x00, 0x01, 0xFF]),
                    STUNAttribute(.iceControlling, value: [1, 2, 3, 4, 5, 6, 7, 8]),
                    STUNAttribute(.useCandidate, value: []),
                ])
            return [
                STUNTestVectors.request, STUNTestVectors.ipv4Response, STUNTestVectors.ipv6Response,
                request.serialized(integrityPassword: FuzzTarget.icePassword, fingerprint: true),
            ]
        case .rtp:
            return [
                RTPPacket(marker: true, payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 0x1234_5678,
                          payload: Array(repeating: 0xFC, count: 60)).serialized(),
                RTPPacket(payloadType: 96, sequenceNumber: 65535, timestamp: 1, ssrc: 7, csrcs: [1, 2],
                          headerExtension: .init(profile: 0xBEDE, data: [0x10, 0x01, 0, 0]),
                          payload: [0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0, 0, 0, 0],
                          paddingCount: 4).serialized(),
            ]
        case .rtcp:
            let block = RTCPPacket.ReportBlock(ssrc: 9, fractionLost: 3, cumulativeLost: -2, highestSequence: 70000,
                                               jitter: 12, lastSenderReport: 5, delaySinceLastSenderReport: 6)
            return [
                RTCPPacket.serializeCompound([
                    .senderReport(.init(ssrc: 1, ntpTimestamp: 1 << 40, rtpTimestamp: 2, packetCount: 3,
                                        octetCount: 4, reports: [block])),
                    .other(packetType: 202, count: 1, body: [0, 0, 0, 1, 1, 4, 0x61, 0x62, 0x63, 0x64, 0, 0]),
                ]),
                RTCPPacket.serializeCompound([
                    .receiverReport(.init(ssrc: 2, reports: [block, block])),
                    .nack(senderSSRC: 2, mediaSSRC: 1, lost: [10, 11, 15, 40]),
                    .pli(senderSSRC: 2, mediaSSRC: 1),
                    .fir(senderSSRC: 2, entries: [.init(ssrc: 1, sequenceNumber: 4)]),
                ]),
            ]
        case .sdp:
            return sdpOffers.map { Array($0.utf8) }
        }
    }

    static let icePassword = "0123456789abcdefghijkl"

    /// Runs the parser (and what consumes its result) over one input and returns the properties
    /// the result broke (empty: none). What parses must serialize to bytes that parse to the
    /// same value; what the code writes from a parsed value must itself parse. A crash still
    /// ends the process.
    public func run(_ input: [UInt8]) -> [String] {
        switch self {
        case .stun:
            _ = PacketKind(datagram: input)
            _ = try? STUNMessage.verifyMessageIntegrity(input, password: FuzzTarget.icePassword)
            let start = ContinuousClock.Instant.now
            var agent = ICELiteAgent(localUfrag: "abcd", localPassword: FuzzTarget.icePassword, remoteUfrag: "efgh",
                                     remotePassword: FuzzTarget.icePassword, now: start)
            _ = agent.handleSTUN(input, from: TransportAddress(ip: .v4(127, 0, 0, 1), port: 5000), now: start)
            return Self.checkSTUN(input)
        case .rtp:
            return Self.checkRTP(input)
        case .rtcp:
            return Self.checkRTCP(input)
        case .sdp:
            return Self.checkSDP(input)
        }
    }

    /// STUN: a parsed message without its FINGERPRINT re-serializes to a message equal to it, and
    /// its attributes signed anew (MESSAGE-INTEGRITY, FINGERPRINT) parse back and verify with
    /// that password only.
    static func checkSTUN(_ input: [UInt8],
                          serialize: (STUNMessage, String?, Bool) -> [UInt8] = { $0.serialized(integrityPassword: $1, fingerprint: $2) })
        -> [String] {
        guard let message = try? STUNMessage.parse(input) else { return [] }
        _ = message.xorMappedAddress
        _ = message.attribute(.username)?.stringValue
        _ = message.attribute(.priority)?.uint32Value
        var failures: [String] = []
        var plain = message
        plain.attributes.removeAll { $0.type == STUNAttributeType.fingerprint.rawValue }
        let plainBytes = serialize(plain, nil, false)
        if (try? STUNMessage.parse(plainBytes)) != plain {
            failures.append("STUN: parse(serialize(m)) != m")
        }
        var bare = plain
        bare.attributes.removeAll { $0.type == STUNAttributeType.messageIntegrity.rawValue }
        let signed = serialize(bare, icePassword, true)
        guard signed.count - 20 <= Int(UInt16.max) else { return failures }
        if let reparsed = try? STUNMessage.parse(signed) {
            let types = reparsed.attributes.suffix(2).map(\.type)
            if Array(reparsed.attributes.dropLast(2)) != bare.attributes || reparsed.method != bare.method
                || reparsed.messageClass != bare.messageClass || reparsed.transactionID != bare.transactionID
                || types != [STUNAttributeType.messageIntegrity.rawValue, STUNAttributeType.fingerprint.rawValue] {
                failures.append("STUN: a message signed anew does not parse back to its attributes, MESSAGE-INTEGRITY, FINGERPRINT")
            }
        } else {
            failures.append("STUN: a message signed anew does not parse")
        }
        if (try? STUNMessage.verifyMessageIntegrity(signed, password: icePassword)) == nil {
            failures.append("STUN: a message signed anew does not verify with its password")
        }
        if (try? STUNMessage.verifyMessageIntegrity(signed, password: icePassword + "x")) != nil {
            failures.append("STUN: a message signed anew verifies with another password")
        }
        return failures
    }

    /// RTP: parse(serialize(p)) == p, and the bytes are the input's (padding bytes other than the
    /// count are written as zeros).
    static func checkRTP(_ input: [UInt8], serialize: (RTPPacket) -> [UInt8] = { $0.serialized() }) -> [String] {
        guard let packet = try? RTPPacket.parse(input) else { return [] }
        _ = VP8PayloadDescriptor.parse(packet.payload[...])
        _ = VP8Frame.payloadStartsKeyframe(packet.payload)
        var failures: [String] = []
        let bytes = serialize(packet)
        if (try? RTPPacket.parse(bytes)) != packet {
            failures.append("RTP: parse(serialize(p)) != p")
        }
        let unpadded = input.count - Int(packet.paddingCount)
        if bytes.count != input.count || bytes.prefix(unpadded) != input.prefix(unpadded) || bytes.last != input.last {
            failures.append("RTP: serialize(parse(x)) differs from x outside the padding")
        }
        return failures
    }

    /// RTCP: the serialized compound packet parses to the same packets (NACK lists as sets,
    /// opaque bodies padded to whole words, as the wire format keeps them) and serializes to the
    /// same bytes again.
    static func checkRTCP(_ input: [UInt8],
                          serialize: ([RTCPPacket]) -> [UInt8] = { RTCPPacket.serializeCompound($0) }) -> [String] {
        guard let packets = try? RTCPPacket.parseCompound(input) else { return [] }
        let bytes = serialize(packets)
        guard let reparsed = try? RTCPPacket.parseCompound(bytes) else {
            return ["RTCP: serialize(parse(x)) does not parse"]
        }
        var failures: [String] = []
        if reparsed.map(Self.wireForm) != packets.map(Self.wireForm) {
            failures.append("RTCP: parse(serialize(p)) != p")
        }
        if serialize(reparsed) != bytes {
            failures.append("RTCP: serialize(parse(serialize(p))) != serialize(p)")
        }
        return failures
    }

    /// What of an RTCP packet the wire keeps: a NACK's lost sequence numbers as a set (the
    /// items may be merged), an opaque body padded to whole 32-bit words.
    private static func wireForm(_ packet: RTCPPacket) -> RTCPPacket {
        switch packet {
        case let .nack(sender, media, lost):
            return .nack(senderSSRC: sender, mediaSSRC: media, lost: Array(Set(lost)).sorted())
        case let .other(type, count, body):
            return .other(packetType: type, count: count, body: body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4))
        default:
            return packet
        }
    }

    /// SDP: every answer to an offer that parses parses too, and says what it answered: one
    /// section per offered one, of the same kind, in order; the accepted ones (exactly the
    /// BUNDLE group, audio among them) at the candidate's port with our ICE credentials,
    /// fingerprint and the role's direction, the others rejected with port 0.
    static func checkSDP(_ input: [UInt8], answer: (SessionDescription, AnswerParameters) throws -> NegotiatedSession = {
        try $0.answer($1)
    }) -> [String] {
        let text = String(decoding: input, as: UTF8.self)
        guard let offer = try? SessionDescription.parse(text) else { return [] }
        var failures: [String] = []
        // The mix listener, the per-speaker listener (`?audio=speakers`, up to 4 audio sections here) and the speaker.
        for (role, speakerSSRCs) in [(WebRTCPeerRole.listener, [UInt32]()), (.listener, [11, 12, 13, 14]), (.speaker, [])] {
            let candidate = TransportAddress(ip: .v4(192, 0, 2, 1), port: 3478)
            let fingerprint = CertificateFingerprint(algorithm: "sha-256", value: "AB:CD")
            var parameters = AnswerParameters(
                role: role, iceUfrag: "abcd", icePassword: FuzzTarget.icePassword, fingerprint: fingerprint,
                candidates: [candidate], sendsVideo: true, audioSSRC: 1, videoSSRC: 2, cname: "fuzz", sessionID: 1)
            parameters.speakerSSRCs = speakerSSRCs
            guard let negotiated = try? answer(offer, parameters) else { continue }
            guard let parsed = try? SessionDescription.parse(negotiated.answer) else {
                failures.append("SDP: the \(role) answer does not parse")
                continue
            }
            guard parsed.media.map(\.kind) == offer.media.map(\.kind) else {
                failures.append("SDP: the \(role) answer's sections are not the offer's")
                continue
            }
            let audioMids = speakerSSRCs.isEmpty ? [negotiated.audio?.mid].compactMap { $0 } : negotiated.speakerAudio.map(\.mid)
            let acceptedMids = audioMids + [negotiated.video?.mid].compactMap { $0 }
            let accepted = parsed.media.filter { $0.port != 0 }
            let direction: MediaDirection = role == .listener ? .sendonly : .recvonly
            if parsed.bundleMids != accepted.compactMap(\.mid) || Set(acceptedMids) != Set(accepted.compactMap(\.mid))
                || accepted.count != acceptedMids.count || !accepted.contains(where: { $0.kind == "audio" }) {
                failures.append("SDP: the \(role) answer's BUNDLE group is not the accepted sections")
            }
            if !accepted.allSatisfy({
                $0.port == candidate.port && $0.value(of: "ice-ufrag") == parameters.iceUfrag
                    && $0.value(of: "ice-pwd") == parameters.icePassword && $0.direction == direction
                    && $0.value(of: "fingerprint") == fingerprint.attributeValue && $0.has("rtcp-mux")
            }) {
                failures.append("SDP: an accepted section of the \(role) answer lacks the port, credentials, fingerprint or direction")
            }
            if !speakerSSRCs.isEmpty {
                let ssrcs = accepted.filter { $0.kind == "audio" }.map(\.ssrcs)
                if negotiated.speakerAudio.count < AnswerParameters.minimumSpeakerTracks
                    || ssrcs != negotiated.speakerAudio.indices.map({ [speakerSSRCs[$0]] }) {
                    failures.append("SDP: the per-speaker answer's audio sections are not 2 or more, each with its own SSRC in order")
                }
            }
        }
        return failures
    }
}

/// A property a target broke on one input.
public struct FuzzFailure: Sendable, CustomStringConvertible {
    public let target: FuzzTarget
    public let property: String
    public let input: [UInt8]

    public var description: String {
        let hex = input.prefix(256).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
        return "\(property) (input of \(input.count) bytes: \(hex)\(input.count > 256 ? "…" : ""))"
    }
}

/// Runs a target over mutated inputs.
public struct FuzzRun: Sendable {
    public let target: FuzzTarget
    public private(set) var mutator: FuzzMutator
    public private(set) var iterations = 0
    /// Broken properties, first ones only (`failureCount` counts them all).
    public private(set) var failures: [FuzzFailure] = []
    public private(set) var failureCount = 0
    static let failuresKept = 20

    public init(target: FuzzTarget, sdpOffers: [String], seed: UInt64) {
        self.target = target
        let seeds = target.seeds(sdpOffers: sdpOffers)
        self.mutator = FuzzMutator(seeds: seeds.isEmpty ? [[]] : seeds, seed: seed)
    }

    /// Runs the seeds themselves, then `count` mutated inputs.
    public mutating func run(iterations count: Int) {
        if iterations == 0 {
            for seed in mutator.seeds { record(target.run(seed), seed) }
        }
        for _ in 0..<count {
            let input = mutator.next()
            record(target.run(input), input)
            iterations += 1
        }
    }

    private mutating func record(_ broken: [String], _ input: [UInt8]) {
        failureCount += broken.count
        for property in broken where failures.count < Self.failuresKept {
            failures.append(FuzzFailure(target: target, property: property, input: input))
        }
    }
}
