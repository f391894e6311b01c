import Testing

@testable import AirwaveWebRTC

/// The OpenSSL SRTCP receivers (`SRTPGCMReceiver`, `SRTPCMReceiver`) must take what libsrtp
/// sends and refuse what libsrtp refuses, for both profiles.
@Suite("SRTCP receivers on OpenSSL against libsrtp")
struct SRTPReceiverTests {
    /// A listener's side (DTLS server, OpenSSL), the peer as libsrtp (the reference) and as
    /// OpenSSL, and a libsrtp receiver in the listener's place.
    struct Sides {
        let ours: SRTPSession
        let referenceReceiver: SRTPSession
        let libsrtpPeer: SRTPSession
        let openSSLPeer: SRTPSession

        init(_ profile: SRTPProfile) throws {
            let material = SRTPSenderTests.material(profile)
            ours = try SRTPSession(keyingMaterial: material, role: .server)
            referenceReceiver = try SRTPSession(keyingMaterial: material, role: .server, openSSL: false)
            libsrtpPeer = try SRTPSession(keyingMaterial: material, role: .client, openSSL: false)
            openSSLPeer = try SRTPSession(keyingMaterial: material, role: .client)
        }
    }

    /// What a WHEP listener sends: receiver reports, NACKs and PLIs in compounds, from two SSRCs.
    static func compound(ssrc: UInt32, round: Int) -> [UInt8] {
        RTCPPacket.serializeCompound([
            .receiverReport(.init(ssrc: ssrc, reports: [])),
            .nack(senderSSRC: ssrc, mediaSSRC: 1111, lost: [UInt16(round), UInt16(round + 3)]),
            .pli(senderSSRC: ssrc, mediaSSRC: 2222),
        ])
    }

    static func accepts(_ session: SRTPSession, _ packet: [UInt8]) -> [UInt8]? {
        var bytes = packet
        return (try? session.unprotectRTCP(&bytes)) != nil ? bytes : nil
    }

    @Test(arguments: SRTPProfile.allCases)
    func whatLibsrtpProtectsIsUnprotectedByteForByte(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        for round in 0..<6 {
            for ssrc: UInt32 in [0x0102_0304, 0xFFFF_FFFF] {
                let plain = Self.compound(ssrc: ssrc, round: round)
                var protected = plain
                try sides.libsrtpPeer.protectRTCP(&protected)
                #expect(Self.accepts(sides.ours, protected) == plain, "ssrc \(ssrc) round \(round)")
            }
        }
    }

    /// The reverse: what the OpenSSL sender protects, libsrtp and the OpenSSL receiver both
    /// return as the same bytes.
    @Test(arguments: SRTPProfile.allCases)
    func whatOpenSSLProtectsBothReceiversUnprotectAlike(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        for round in 0..<6 {
            let plain = Self.compound(ssrc: 0xAABB_CCDD, round: round)
            var protected = plain
            try sides.openSSLPeer.protectRTCP(&protected)
            #expect(Self.accepts(sides.referenceReceiver, protected) == plain)
            #expect(Self.accepts(sides.ours, protected) == plain)
        }
    }

    /// A changed bit anywhere (header, ciphertext, E flag and index, tag) is refused, as libsrtp
    /// refuses it; the refused packets do not move the replay window, so the genuine one still
    /// passes.
    @Test(arguments: SRTPProfile.allCases)
    func tamperedPacketsAreRefusedLikeLibsrtpRefusesThem(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        let plain = Self.compound(ssrc: 0x0102_0304, round: 1)
        var protected = plain
        try sides.libsrtpPeer.protectRTCP(&protected)
        let tagLength = profile == .aeadAES128GCM ? SRTPGCMSender.tagLength : SRTPCMSender.tagLength
        // The trailer: GCM's tag comes before the index word, AES_CM's after it.
        let indexWord = profile == .aeadAES128GCM ? protected.count - 4 : protected.count - 4 - tagLength
        let tag = profile == .aeadAES128GCM ? protected.count - 4 - tagLength : protected.count - tagLength
        for (name, offset) in [("header", 1), ("ssrc", 7), ("ciphertext", 12), ("index", indexWord + 3),
                               ("E flag", indexWord), ("tag", tag), ("last tag byte", tag + tagLength - 1)] {
            var tampered = protected
            tampered[offset] ^= name == "E flag" ? 0x80 : 0x01
            #expect(Self.accepts(sides.referenceReceiver, tampered) == nil, "libsrtp: \(name)")
            #expect(Self.accepts(sides.ours, tampered) == nil, "\(name)")
        }
        #expect(Self.accepts(sides.ours, Array(protected.dropLast())) == nil, "truncated")
        #expect(Self.accepts(sides.ours, Array(protected.prefix(12))) == nil, "shorter than header and trailer")
        #expect(Self.accepts(sides.ours, protected) == plain)
    }

    /// RFC 3711 3.3.2: a replayed index is refused; one that arrives late but within the
    /// window (64) is taken once; one further behind is refused. Per SSRC.
    @Test(arguments: SRTPProfile.allCases)
    func replayedAndTooOldIndicesAreRefused(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        var protected: [[UInt8]] = []
        var other: [UInt8] = []
        for round in 0..<80 {
            var packet = Self.compound(ssrc: 0x0102_0304, round: round)
            try sides.libsrtpPeer.protectRTCP(&packet)
            protected.append(packet)
            if round == 0 {
                other = Self.compound(ssrc: 0x0506_0708, round: 0)
                try sides.libsrtpPeer.protectRTCP(&other)
            }
        }
        // Indices 1...80 of one SSRC: 1 and 2 first, then 80, then the late ones.
        #expect(Self.accepts(sides.ours, protected[0]) != nil)
        #expect(Self.accepts(sides.ours, protected[0]) == nil, "replayed")
        #expect(Self.accepts(sides.referenceReceiver, protected[0]) != nil)
        #expect(Self.accepts(sides.referenceReceiver, protected[0]) == nil, "libsrtp: replayed")
        #expect(Self.accepts(sides.ours, protected[1]) != nil)
        #expect(Self.accepts(sides.ours, protected[79]) != nil)
        #expect(Self.accepts(sides.ours, protected[79]) == nil, "replayed newest")
        #expect(Self.accepts(sides.ours, protected[16]) != nil, "63 behind")
        #expect(Self.accepts(sides.ours, protected[16]) == nil, "replayed late")
        #expect(Self.accepts(sides.ours, protected[15]) == nil, "64 behind: too old")
        #expect(Self.accepts(sides.ours, protected[40]) != nil, "late, within the window")
        // Another SSRC counts its own indices: its index 1 is new.
        #expect(Self.accepts(sides.ours, other) != nil)
    }

    /// A listener's session never makes libsrtp's context: only received SRTP does.
    @Test(arguments: SRTPProfile.allCases)
    func libsrtpIsUsedOnlyOnceSRTPArrives(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        var rtcp = Self.compound(ssrc: 9, round: 0)
        try sides.openSSLPeer.protectRTCP(&rtcp)
        #expect(Self.accepts(sides.ours, rtcp) != nil)
        #expect(!sides.ours.hasLibsrtpInbound)
        let plain = SRTPSenderTests.packet(sequence: 5)
        var rtp = plain
        try sides.openSSLPeer.protectRTP(&rtp)
        try sides.ours.unprotectRTP(&rtp)
        #expect(rtp == plain)
        #expect(sides.ours.hasLibsrtpInbound)
    }

    @Test func theReplayWindowSlides() {
        var window = SRTPReplayWindow()
        #expect(window.allows(5))
        window.record(5)
        #expect(!window.allows(5))
        #expect(window.allows(4))
        window.record(200)
        #expect(!window.allows(136), "64 behind")
        #expect(window.allows(137))
        window.record(137)
        #expect(!window.allows(137))
        window.record(201)
        #expect(!window.allows(137), "still within 64: recorded")
        #expect(!window.allows(200))
        #expect(window.allows(199))
        window.record(UInt64(0x7FFF_FFFF))
        #expect(window.allows(UInt64(0x7FFF_FFFE)))
        #expect(!window.allows(201), "far behind")
    }
}
