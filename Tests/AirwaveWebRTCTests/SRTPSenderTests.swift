import Testing

@testable import AirwaveWebRTC

/// The OpenSSL senders (`SRTPGCMSender`, `SRTPCMSender`) must produce exactly what libsrtp
/// produces for both profiles, so any receiver (browsers, aiortc, libsrtp) decrypts them.
@Suite("SRTP senders on OpenSSL against libsrtp")
struct SRTPSenderTests {
    static func material(_ profile: SRTPProfile) -> SRTPKeyingMaterial {
        let length = 2 * (profile.keyLength + profile.saltLength)
        return SRTPKeyingMaterial(profile: profile, exported: (0..<length).map { UInt8(($0 * 37 + 11) & 0xFF) })
    }

    static func packet(sequence: UInt16, ssrc: UInt32 = 0x1234_5678, csrcs: [UInt32] = [],
                       extension: RTPPacket.Extension? = nil, payload: [UInt8] = Array(0..<90)) -> [UInt8] {
        var packet = RTPPacket(marker: sequence == 0, payloadType: 111, sequenceNumber: sequence, timestamp: 960 * UInt32(sequence),
                               ssrc: ssrc, payload: payload)
        packet.csrcs = csrcs
        packet.headerExtension = `extension`
        return packet.serialized()
    }

    /// The OpenSSL sender, libsrtp's, and an OpenSSL receiver of the other side.
    struct Trio {
        let fast: SRTPSession
        let reference: LibsrtpSession
        let receiver: SRTPSession

        init(_ profile: SRTPProfile, role: DTLSRole = .server) throws {
            let material = SRTPSenderTests.material(profile)
            fast = try SRTPSession(keyingMaterial: material, role: role)
            reference = try LibsrtpSession(keyingMaterial: material, role: role)
            receiver = try SRTPSession(keyingMaterial: material, role: role == .server ? .client : .server)
        }

        /// Protects `plain` with both senders, expects equal bytes and that the receiver gets
        /// `plain` back.
        func expectSameRTP(_ plain: [UInt8], tagLength: Int, _ comment: Comment? = nil) throws {
            var ours = plain, theirs = plain
            try fast.protectRTP(&ours)
            try reference.protectRTP(&theirs)
            #expect(ours == theirs, comment)
            #expect(ours.count == plain.count + tagLength, comment)
            try receiver.unprotectRTP(&ours)
            #expect(ours == plain, comment)
        }
    }

    static func tagLength(_ profile: SRTPProfile) -> Int {
        profile == .aeadAES128GCM ? SRTPGCMSender.tagLength : SRTPCMSender.tagLength
    }

    @Test(arguments: SRTPProfile.allCases)
    func matchesLibsrtpByteForByteAcrossASequenceWrap(profile: SRTPProfile) throws {
        let trio = try Trio(profile)
        for sequence: UInt16 in [65533, 65534, 65535, 0, 1, 2] {
            try trio.expectSameRTP(Self.packet(sequence: sequence), tagLength: Self.tagLength(profile), "sequence \(sequence)")
        }
    }

    /// Several wraps (ROC 0 to 3) in steps libsrtp still reads as forward.
    @Test(arguments: SRTPProfile.allCases)
    func theRolloverCounterKeepsCountingOverSeveralWraps(profile: SRTPProfile) throws {
        let trio = try Trio(profile)
        var sequence: UInt16 = 100
        for step in 0..<12 {
            try trio.expectSameRTP(Self.packet(sequence: sequence), tagLength: Self.tagLength(profile), "step \(step)")
            sequence &+= 20000
        }
    }

    /// Each SSRC has its own index: interleaved streams, one of them wrapping, one starting late.
    @Test(arguments: SRTPProfile.allCases)
    func severalSSRCsKeepTheirOwnRolloverCounters(profile: SRTPProfile) throws {
        let trio = try Trio(profile, role: .client)
        let streams: [(ssrc: UInt32, start: UInt16)] = [(0x0000_0001, 65530), (0xFFFF_FFFF, 10), (0x8000_0000, 40000)]
        for round in 0..<10 {
            for stream in streams {
                let sequence = stream.start &+ UInt16(round)
                try trio.expectSameRTP(Self.packet(sequence: sequence, ssrc: stream.ssrc), tagLength: Self.tagLength(profile),
                                       "ssrc \(stream.ssrc) sequence \(sequence)")
            }
        }
    }

    @Test(arguments: SRTPProfile.allCases)
    func headersWithCSRCsAndAnExtensionAreAuthenticatedNotEncrypted(profile: SRTPProfile) throws {
        let trio = try Trio(profile, role: .client)
        let plain = Self.packet(sequence: 7, csrcs: [1, 2], extension: .init(profile: 0xBEDE, data: [0x10, 0xFF, 0, 0]))
        try trio.expectSameRTP(plain, tagLength: Self.tagLength(profile))
        try trio.expectSameRTP(Self.packet(sequence: 8, payload: []), tagLength: Self.tagLength(profile), "no payload")
    }

    @Test(arguments: SRTPProfile.allCases)
    func aRetransmissionFromBeforeTheWrapKeepsItsRolloverCounter(profile: SRTPProfile) throws {
        let trio = try Trio(profile)
        for sequence: UInt16 in [65535, 0, 1] {
            try trio.expectSameRTP(Self.packet(sequence: sequence), tagLength: Self.tagLength(profile))
        }
        // A NACK answer after the wrap: the receiver's replay window has it already, so only
        // the bytes are compared.
        var ours = Self.packet(sequence: 65535), theirs = ours
        try trio.fast.protectRTP(&ours)
        try trio.reference.protectRTP(&theirs)
        #expect(ours == theirs)
    }

    /// Sender reports (what a listener's session sends) in compounds, from two SSRCs: each has
    /// its own SRTCP index, counted from 1 as libsrtp counts it.
    @Test(arguments: SRTPProfile.allCases)
    func rtcpCompoundsMatchLibsrtpByteForByte(profile: SRTPProfile) throws {
        let trio = try Trio(profile)
        for round in 0..<5 {
            for ssrc: UInt32 in [0xAABB_CCDD, 0x0102_0304] {
                let report = RTCPPacket.SenderReport(ssrc: ssrc, ntpTimestamp: 0x1122_3344_5566_7788 + UInt64(round),
                                                     rtpTimestamp: 960 * UInt32(round), packetCount: UInt32(round),
                                                     octetCount: 90 * UInt32(round), reports: [])
                let plain = RTCPPacket.serializeCompound([.senderReport(report)])
                var ours = plain, theirs = plain
                try trio.fast.protectRTCP(&ours)
                try trio.reference.protectRTCP(&theirs)
                #expect(ours == theirs, "ssrc \(ssrc) round \(round)")
                #expect(ours.count == plain.count + 4 + Self.tagLength(profile))
                try trio.receiver.unprotectRTCP(&ours)
                #expect(ours == plain)
            }
        }
    }

    @Test(arguments: SRTPProfile.allCases)
    func aPacketShorterThanItsHeaderIsRefused(profile: SRTPProfile) throws {
        let fast = try SRTPSession(keyingMaterial: Self.material(profile), role: .server)
        var truncated = Array(Self.packet(sequence: 1, csrcs: [1, 2, 3])[0..<16])
        #expect(throws: SRTPError.self) { try fast.protectRTP(&truncated) }
        var shortRTCP: [UInt8] = [0x80, 200, 0, 1]
        #expect(throws: SRTPError.self) { try fast.protectRTCP(&shortRTCP) }
    }
}
