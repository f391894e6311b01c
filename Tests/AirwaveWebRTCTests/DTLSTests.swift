import Testing

@testable import AirwaveWebRTC

/// Two endpoints in memory: every datagram one side emits is handed to the other.
struct DTLSPair {
    let client: DTLSEndpoint
    let server: DTLSEndpoint
    /// Datagram sizes seen on the wire.
    var sizes: [Int] = []

    init(clientProfiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
         serverProfiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
         clientExpects: CertificateFingerprint? = nil, mtu: Int = 1200) throws {
        let clientContext = try DTLSContext(commonName: "client")
        let serverContext = try DTLSContext(commonName: "server")
        client = try DTLSEndpoint(context: clientContext, role: .client,
                                  remoteFingerprint: clientExpects ?? serverContext.fingerprint,
                                  profiles: clientProfiles, mtu: mtu)
        server = try DTLSEndpoint(context: serverContext, role: .server, remoteFingerprint: clientContext.fingerprint,
                                  profiles: serverProfiles, mtu: mtu)
    }

    /// Runs the handshake to completion (or until neither side has anything to say).
    mutating func handshake() {
        var toServer = client.start()
        var rounds = 0
        while !toServer.isEmpty, rounds < 10 {
            rounds += 1
            sizes += toServer.map(\.count)
            let toClient = toServer.flatMap { server.handleDatagram($0) }
            sizes += toClient.map(\.count)
            toServer = toClient.flatMap { client.handleDatagram($0) }
        }
    }
}

@Suite struct DTLSTests {
    /// A released endpoint keeps its keys and a close_notify the peer still accepts, and
    /// ignores what the peer sends.
    @Test func aReleasedConnectionStillClosesWithAValidCloseNotify() throws {
        var pair = try DTLSPair()
        pair.handshake()
        guard case let .connected(keys) = pair.server.state else {
            Issue.record("not connected: \(pair.server.state)")
            return
        }
        pair.server.release()
        #expect(pair.server.isReleased)
        #expect(pair.server.state == .connected(keys))
        #expect(pair.client.close().flatMap { pair.server.handleDatagram($0) }.isEmpty)
        #expect(pair.server.state == .connected(keys), "a close_notify after the release is not seen")

        var again = try DTLSPair()
        again.handshake()
        again.server.release()
        let alert = again.server.close()
        #expect(!alert.isEmpty)
        #expect(again.server.state == .closed)
        for datagram in alert { _ = again.client.handleDatagram(datagram) }
        #expect(again.client.state == .closed)
    }

    @Test func theCertificateFingerprintIsSHA256() throws {
        let context = try DTLSContext()
        #expect(context.fingerprint.algorithm == "sha-256")
        #expect(context.fingerprint.value.split(separator: ":").count == 32)
        #expect(try DTLSContext().fingerprint != context.fingerprint)
    }

    @Test(arguments: SRTPProfile.allCases)
    func anInMemoryHandshakeExportsMatchingKeys(profile: SRTPProfile) throws {
        var pair = try DTLSPair(clientProfiles: [profile])
        pair.handshake()
        guard case let .connected(clientKeys) = pair.client.state, case let .connected(serverKeys) = pair.server.state else {
            Issue.record("not connected: client \(pair.client.state), server \(pair.server.state)")
            return
        }
        #expect(clientKeys == serverKeys)
        #expect(clientKeys.profile == profile)
        #expect(clientKeys.clientKey.count == 16)
        #expect(clientKeys.clientSalt.count == profile.saltLength)
        #expect(clientKeys.clientKey != clientKeys.serverKey)
        #expect(clientKeys.sendingKey(for: .client) == serverKeys.receivingKey(for: .server))
        #expect(pair.sizes.allSatisfy { $0 <= 1200 })
        #expect(pair.client.timeout == nil)
    }

    @Test func theServerPrefersGCMWhenBothAreOffered() throws {
        var pair = try DTLSPair()
        pair.handshake()
        guard case let .connected(keys) = pair.server.state else {
            Issue.record("not connected: \(pair.server.state)")
            return
        }
        #expect(keys.profile == .aeadAES128GCM)
    }

    @Test func aSmallMTUCutsFlightsIntoSmallDatagrams() throws {
        var pair = try DTLSPair(mtu: 400)
        pair.handshake()
        #expect(pair.sizes.allSatisfy { $0 <= 400 })
        #expect(pair.sizes.count > 4)
        guard case .connected = pair.client.state, case .connected = pair.server.state else {
            Issue.record("not connected: client \(pair.client.state), server \(pair.server.state)")
            return
        }
    }

    @Test func aCertificateThatDoesNotMatchTheSDPFingerprintFails() throws {
        let other = try DTLSContext()
        var pair = try DTLSPair(clientExpects: other.fingerprint)
        pair.handshake()
        #expect(pair.client.state == .failed(.fingerprintMismatch))
    }

    @Test func noCommonSRTPProfileFailsTheHandshake() throws {
        var pair = try DTLSPair(clientProfiles: [.aes128CMHMACSHA1_80], serverProfiles: [.aeadAES128GCM])
        pair.handshake()
        if case .connected = pair.client.state {
            Issue.record("connected without a common SRTP profile")
        }
    }

    @Test func aPendingHandshakeRunsARetransmissionTimer() throws {
        let pair = try DTLSPair()
        #expect(pair.client.timeout == nil)
        _ = pair.client.start()
        let timeout = try #require(pair.client.timeout)
        #expect(timeout > .zero && timeout <= .seconds(1))
        // Not due yet: nothing is retransmitted.
        #expect(pair.client.handleTimeout().isEmpty)
    }

    @Test func closeNotifyClosesThePeer() throws {
        var pair = try DTLSPair()
        pair.handshake()
        let alert = pair.client.close()
        #expect(!alert.isEmpty)
        for datagram in alert { _ = pair.server.handleDatagram(datagram) }
        #expect(pair.server.state == .closed)
    }

    @Test func garbageDoesNotCrashAnEndpoint() throws {
        let pair = try DTLSPair()
        #expect(pair.server.handleDatagram([0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]).isEmpty)
        #expect(pair.server.handleDatagram([]).isEmpty)
    }

    @Test func recordsAreGroupedIntoDatagramsUpToTheMTU() {
        func record(_ length: Int) -> [UInt8] {
            [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF)]
                + [UInt8](repeating: 1, count: length)
        }
        let bytes = record(100) + record(100) + record(300) + record(10)
        let datagrams = DTLSEndpoint.datagrams(fromRecords: bytes[...], mtu: 300)
        #expect(datagrams.map(\.count) == [226, 313, 23])
    }
}

@Suite struct SRTPTests {
    func sessions(_ profile: SRTPProfile) throws -> (client: SRTPSession, server: SRTPSession) {
        var pair = try DTLSPair(clientProfiles: [profile])
        pair.handshake()
        guard case let .connected(keys) = pair.client.state, case let .connected(serverKeys) = pair.server.state else {
            throw DTLSError.noSRTPProfile
        }
        return (try SRTPSession(keyingMaterial: keys, role: .client),
                try SRTPSession(keyingMaterial: serverKeys, role: .server))
    }

    @Test(arguments: SRTPProfile.allCases)
    func rtpRoundTripsWithHandshakeKeys(profile: SRTPProfile) throws {
        let (client, server) = try sessions(profile)
        let plain = RTPPacket(marker: true, payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 0xCAFE,
                              payload: Array(repeating: 0x42, count: 80)).serialized()
        var packet = plain
        try server.protectRTP(&packet)
        #expect(packet.count == plain.count + (profile == .aeadAES128GCM ? 16 : 10))
        #expect(Array(packet[12..<92]) != Array(plain[12...]))  // the payload is encrypted
        #expect(Array(packet[0..<12]) == Array(plain[0..<12]))  // the header is not
        try client.unprotectRTP(&packet)
        #expect(packet == plain)
    }

    @Test(arguments: SRTPProfile.allCases)
    func rtcpRoundTripsBothWays(profile: SRTPProfile) throws {
        let (client, server) = try sessions(profile)
        let plain = RTCPPacket.serializeCompound([
            .receiverReport(.init(ssrc: 1, reports: [])), .pli(senderSSRC: 1, mediaSSRC: 2),
        ])
        var packet = plain
        try client.protectRTCP(&packet)
        #expect(packet.count > plain.count)
        try server.unprotectRTCP(&packet)
        #expect(packet == plain)
    }

    @Test(arguments: SRTPProfile.allCases)
    func tamperingAndReplayAreRejected(profile: SRTPProfile) throws {
        let (client, server) = try sessions(profile)
        let plain = RTPPacket(payloadType: 111, sequenceNumber: 7, timestamp: 1, ssrc: 5, payload: [1, 2, 3, 4]).serialized()
        var protected = plain
        try server.protectRTP(&protected)
        var tampered = protected
        tampered[13] ^= 1
        #expect(throws: SRTPError.self) { try client.unprotectRTP(&tampered) }
        var first = protected
        try client.unprotectRTP(&first)
        var replayed = protected
        #expect(throws: SRTPError.self) { try client.unprotectRTP(&replayed) }
        // The sender may protect the same packet again (a NACK retransmission).
        var again = plain
        try server.protectRTP(&again)
        #expect(again == protected)
    }

    @Test func theWrongDirectionsKeyDoesNotDecrypt() throws {
        let (client, _) = try sessions(.aes128CMHMACSHA1_80)
        var packet = RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 1, ssrc: 5, payload: [1, 2]).serialized()
        try client.protectRTP(&packet)
        #expect(throws: SRTPError.self) { try client.unprotectRTP(&packet) }
    }
}
