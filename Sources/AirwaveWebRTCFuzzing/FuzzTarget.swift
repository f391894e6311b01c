import AirwaveWebRTC

/// One parser under fuzzing: its seed inputs and a function that runs everything built on that
/// parser over an input. A run succeeds if it returns; a crash ends the process, which is the
/// signal the fuzzer looks for.
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

    /// Runs the parser (and what consumes its result) over one input.
    public func run(_ input: [UInt8]) {
        switch self {
        case .stun:
            _ = PacketKind(datagram: input)
            if let message = try? STUNMessage.parse(input) {
                _ = message.xorMappedAddress
                _ = message.attribute(.username)?.stringValue
                _ = message.attribute(.priority)?.uint32Value
                _ = message.serialized(integrityPassword: FuzzTarget.icePassword, fingerprint: true)
            }
            _ = try? STUNMessage.verifyMessageIntegrity(input, password: FuzzTarget.icePassword)
            let start = ContinuousClock.Instant.now
            var agent = ICELiteAgent(localUfrag: "abcd", localPassword: FuzzTarget.icePassword, remoteUfrag: "efgh",
                                     remotePassword: FuzzTarget.icePassword, now: start)
            _ = agent.handleSTUN(input, from: TransportAddress(ip: .v4(127, 0, 0, 1), port: 5000), now: start)
        case .rtp:
            if let packet = try? RTPPacket.parse(input) {
                _ = packet.serialized()
                _ = VP8PayloadDescriptor.parse(packet.payload[...])
                _ = VP8Frame.payloadStartsKeyframe(packet.payload)
            }
        case .rtcp:
            if let packets = try? RTCPPacket.parseCompound(input) {
                _ = RTCPPacket.serializeCompound(packets)
            }
        case .sdp:
            let text = String(decoding: input, as: UTF8.self)
            guard let offer = try? SessionDescription.parse(text) else { return }
            for role in [WebRTCPeerRole.listener, .speaker] {
                let parameters = AnswerParameters(
                    role: role, iceUfrag: "abcd", icePassword: FuzzTarget.icePassword,
                    fingerprint: CertificateFingerprint(algorithm: "sha-256", value: "AB:CD"),
                    candidates: [TransportAddress(ip: .v4(192, 0, 2, 1), port: 3478)], sendsVideo: true,
                    audioSSRC: 1, videoSSRC: 2, cname: "fuzz", sessionID: 1)
                if let negotiated = try? offer.answer(parameters) {
                    _ = try? SessionDescription.parse(negotiated.answer)
                }
            }
        }
    }
}

/// Runs a target over mutated inputs.
public struct FuzzRun: Sendable {
    public let target: FuzzTarget
    public private(set) var mutator: FuzzMutator
    public private(set) var iterations = 0

    public init(target: FuzzTarget, sdpOffers: [String], seed: UInt64) {
        self.target = target
        let seeds = target.seeds(sdpOffers: sdpOffers)
        self.mutator = FuzzMutator(seeds: seeds.isEmpty ? [[]] : seeds, seed: seed)
    }

    /// Runs the seeds themselves, then `count` mutated inputs.
    public mutating func run(iterations count: Int) {
        if iterations == 0 {
            for seed in mutator.seeds { target.run(seed) }
        }
        for _ in 0..<count {
            target.run(mutator.next())
            iterations += 1
        }
    }
}
