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
        let referenceReceiver: LibsrtpSession
        let libsrtpPeer: LibsrtpSession
        let openSSLPeer: SRTPSession

        init(_ profile: SRTPProfile) throws {
            let material = SRTPSenderTests.material(profile)
            ours = try SRTPSession(keyingMaterial: material, role: .server)
            referenceReceiver = try LibsrtpSession(keyingMaterial: material, role: .server)
            libsrtpPeer = try LibsrtpSession(keyingMaterial: material, role: .client)
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

    static func accepts(_ session: some SRTPProtecting, _ packet: [UInt8]) -> [UInt8]? {
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

    /// SRTCP sent with the E flag clear (authenticated, not encrypted; RFC 3711 3.4, RFC 7714
    /// 9.2, where the whole packet is then the AAD) is taken as libsrtp takes it.
    @Test(arguments: SRTPProfile.allCases)
    func unencryptedSRTCPIsAuthenticatedAndTaken(profile: SRTPProfile) throws {
        let material = SRTPSenderTests.material(profile)
        let ours = try SRTPSession(keyingMaterial: material, role: .server)
        let peer = try LibsrtpSession(keyingMaterial: material, role: .client, rtcpAuthenticationOnly: true)
        for round in 0..<3 {
            let plain = Self.compound(ssrc: 0x0102_0304, round: round)
            var protected = plain
            try peer.protectRTCP(&protected)
            #expect(Array(protected.prefix(plain.count)) == plain, "sent in the clear")
            var tampered = protected
            tampered[12] ^= 1
            #expect(Self.accepts(ours, tampered) == nil)
            #expect(Self.accepts(ours, protected) == plain, "round \(round)")
        }
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

    // MARK: SRTP (what a WHIP speaker sends)

    /// Unprotects each datagram with the OpenSSL receiver and with libsrtp's, in order; both must
    /// accept the same ones and give the same bytes. What the OpenSSL one gave.
    @discardableResult
    static func expectAlike(_ sides: Sides, _ datagrams: [[UInt8]], _ comment: String) -> [[UInt8]?] {
        datagrams.enumerated().map { number, datagram in
            var ours = datagram, theirs = datagram
            let oursAccepted = (try? sides.ours.unprotectRTP(&ours)) != nil
            let theirsAccepted = (try? sides.referenceReceiver.unprotectRTP(&theirs)) != nil
            #expect(oursAccepted == theirsAccepted, "\(comment) #\(number)")
            if oursAccepted, theirsAccepted { #expect(ours == theirs, "\(comment) #\(number)") }
            return oursAccepted ? ours : nil
        }
    }

    static func protectRTP(_ peer: some SRTPProtecting, _ plain: [UInt8]) throws -> [UInt8] {
        var packet = plain
        try peer.protectRTP(&packet)
        return packet
    }

    /// The rollover counter estimated as libsrtp estimates it (RFC 3711 3.3.1): across a wrap,
    /// over several wraps in forward steps, a late packet from before a wrap, per SSRC; from
    /// libsrtp's sender and from OpenSSL's.
    @Test(arguments: SRTPProfile.allCases)
    func srtpIsUnprotectedLikeLibsrtpAcrossWraps(profile: SRTPProfile) throws {
        for useLibsrtpPeer in [true, false] {
            let sides = try Sides(profile)
            let peer: any SRTPProtecting = useLibsrtpPeer ? sides.libsrtpPeer : sides.openSSLPeer
            var plains: [[UInt8]] = []
            var datagrams: [[UInt8]] = []
            func add(_ sequence: UInt16, ssrc: UInt32 = 0x1234_5678) throws {
                let plain = SRTPSenderTests.packet(sequence: sequence, ssrc: ssrc, csrcs: sequence % 3 == 0 ? [7] : [])
                plains.append(plain)
                datagrams.append(try Self.protectRTP(peer, plain))
            }
            for sequence: UInt16 in [65530, 65531, 65533, 65534, 0, 1, 65535, 2] { try add(sequence) }
            var sequence: UInt16 = 2
            for _ in 0..<10 {
                sequence &+= 20000
                try add(sequence)
            }
            for round: UInt16 in 0..<5 {
                try add(40000 &+ round, ssrc: 0xFFFF_FFFF)
                try add(round, ssrc: 1)
            }
            let received = Self.expectAlike(sides, datagrams, "libsrtp peer: \(useLibsrtpPeer)")
            #expect(received == plains.map { Optional($0) }, "every packet, byte for byte")
        }
    }

    /// A changed bit (header, payload, tag), a cut tag, a replay and a packet further than the
    /// window behind are refused; a late one within it is taken once.
    @Test(arguments: SRTPProfile.allCases)
    func tamperedReplayedAndTooOldSRTPIsRefused(profile: SRTPProfile) throws {
        let sides = try Sides(profile)
        let datagrams = try (0..<80).map { try Self.protectRTP(sides.libsrtpPeer, SRTPSenderTests.packet(sequence: UInt16(1000 + $0))) }
        let first = datagrams[0]
        for (name, offset) in [("marker and type", 1), ("sequence", 3), ("ssrc", 11), ("payload", 12),
                               ("tag", first.count - 1)] {
            var tampered = first
            tampered[offset] ^= 0x01
            Self.expectAlike(sides, [tampered], name)
            var ours = tampered
            #expect(throws: SRTPError.self, "\(name)") { try sides.ours.unprotectRTP(&ours) }
        }
        var cut = Array(first.dropLast())
        #expect(throws: SRTPError.self) { try sides.ours.unprotectRTP(&cut) }
        var short = Array(first.prefix(20))
        #expect(throws: SRTPError.self) { try sides.ours.unprotectRTP(&short) }
        // Replays, refused by both.
        Self.expectAlike(sides, [first, first, datagrams[1], datagrams[79], datagrams[79], datagrams[40]], "replays")
        // Beyond both windows: only ours (64) refuses 64 behind; libsrtp's is 1,024.
        var late = datagrams[16]  // 63 behind 79
        #expect(throws: Never.self) { try sides.ours.unprotectRTP(&late) }
        var tooOld = datagrams[15]  // 64 behind
        #expect(throws: SRTPError.self) { try sides.ours.unprotectRTP(&tooOld) }
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
