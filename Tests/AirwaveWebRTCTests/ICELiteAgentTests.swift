import Testing

@testable import AirwaveWebRTC

@Suite struct ICELiteAgentTests {
    let start = ContinuousClock.Instant.now
    let peer = TransportAddress(host: "192.0.2.10", port: 50000)!
    let relay = TransportAddress(host: "198.51.100.7", port: 60000)!

    func agent() -> ICELiteAgent {
        ICELiteAgent(localUfrag: "srv1", localPassword: "serverpassword0123456789", remoteUfrag: "cli1", now: start)
    }

    func check(username: String = "srv1:cli1", password: String = "serverpassword0123456789",
               priority: UInt32 = 1000, nominate: Bool = false, id: UInt8 = 1) -> [UInt8] {
        var attributes: [STUNAttribute] = [
            .username(username),
            STUNAttribute(.priority, value: [UInt8(priority >> 24), UInt8((priority >> 16) & 0xFF),
                                              UInt8((priority >> 8) & 0xFF), UInt8(priority & 0xFF)]),
            STUNAttribute(.iceControlling, value: [1, 2, 3, 4, 5, 6, 7, 8]),
        ]
        if nominate { attributes.append(STUNAttribute(.useCandidate, value: [])) }
        return STUNMessage(messageClass: .request, transactionID: Array(repeating: id, count: 12), attributes: attributes)
            .serialized(integrityPassword: password, fingerprint: true)
    }

    @Test func aValidCheckGetsASignedSuccessWithTheMappedAddress() throws {
        var agent = agent()
        guard case let .respond(response) = agent.handleSTUN(check(id: 9), from: peer, now: start) else {
            Issue.record("no response")
            return
        }
        let message = try STUNMessage.parse(response)  // checks FINGERPRINT
        #expect(message.messageClass == .successResponse)
        #expect(message.transactionID == Array(repeating: 9, count: 12))
        #expect(message.xorMappedAddress == peer)
        try STUNMessage.verifyMessageIntegrity(response, password: "serverpassword0123456789")
        #expect(agent.accepts(mediaFrom: peer))
        #expect(agent.state == .checking)
    }

    @Test func wrongCredentialsGetAnUnauthorizedError() throws {
        var agent = agent()
        for request in [check(password: "wrongwrongwrongwrong"), check(username: "srv1:other"), check(username: "x:cli1")] {
            guard case let .reject(response) = agent.handleSTUN(request, from: peer, now: start) else {
                Issue.record("not rejected")
                continue
            }
            let message = try STUNMessage.parse(response)
            #expect(message.messageClass == .errorResponse)
            #expect(message.attribute(.errorCode)?.value == [0, 0, 4, 1] + Array("Unauthorized".utf8))
        }
        #expect(!agent.accepts(mediaFrom: peer))
    }

    @Test func responsesIndicationsAndGarbageAreIgnored() {
        var agent = agent()
        #expect(agent.handleSTUN([0, 1, 2], from: peer, now: start) == .ignore)
        let indication = STUNMessage(messageClass: .indication, transactionID: Array(repeating: 0, count: 12)).serialized()
        #expect(agent.handleSTUN(indication, from: peer, now: start) == .ignore)
    }

    @Test func regularNominationSelectsTheNominatedAddress() {
        var agent = agent()
        _ = agent.handleSTUN(check(), from: peer, now: start)
        #expect(agent.selected == nil)
        _ = agent.handleSTUN(check(nominate: true), from: peer, now: start + .milliseconds(50))
        #expect(agent.state == .connected)
        #expect(agent.selected == peer)
    }

    @Test func aggressiveNominationKeepsTheHighestPriority() {
        var agent = agent()
        _ = agent.handleSTUN(check(priority: 100, nominate: true), from: relay, now: start)
        #expect(agent.selected == relay)
        _ = agent.handleSTUN(check(priority: 2000, nominate: true), from: peer, now: start + .milliseconds(10))
        #expect(agent.selected == peer)
        // A lower-priority nomination does not take over while the selected pair is alive…
        _ = agent.handleSTUN(check(priority: 100, nominate: true), from: relay, now: start + .milliseconds(20))
        #expect(agent.selected == peer)
        // …but does once the selected pair has gone quiet for switchAfter.
        _ = agent.handleSTUN(check(priority: 100, nominate: true), from: relay, now: start + .seconds(3))
        #expect(agent.selected == relay)
    }

    @Test func consentExpiresWithoutChecksOnTheSelectedAddress() {
        var agent = agent()
        _ = agent.handleSTUN(check(nominate: true), from: peer, now: start)
        _ = agent.handleSTUN(check(), from: peer, now: start + .seconds(20))
        agent.handleTimer(now: start + .seconds(45))
        #expect(agent.state == .connected)
        #expect(agent.nextTimer == start + .seconds(50))
        agent.handleTimer(now: start + .seconds(50))
        #expect(agent.state == .expired)
        #expect(agent.handleSTUN(check(), from: peer, now: start + .seconds(51)) == .ignore)
    }

    @Test func aSessionThatNeverConnectsExpires() {
        var agent = agent()
        agent.handleTimer(now: start + .seconds(29))
        #expect(agent.state == .checking)
        agent.handleTimer(now: start + .seconds(30))
        #expect(agent.state == .expired)
    }

    @Test func theLocalUfragComesFromTheUsername() {
        #expect(ICELiteAgent.localUfrag(fromUsername: "srv1:cli1") == "srv1")
        #expect(ICELiteAgent.localUfrag(fromUsername: "nocolon") == nil)
    }

    @Test(arguments: [
        ([UInt8](), PacketKind.unknown),
        ([0x00, 0x01], .stun),
        ([0x03], .stun),
        ([0x16, 0xFE, 0xFD], .dtls),
        ([63], .dtls),
        ([0x80, 111], .rtp),
        ([0x90, 0xE0], .rtp),
        ([0x80, 200], .rtcp),
        ([0x81, 205], .rtcp),
        ([0x80], .unknown),
        ([0x10], .unknown),
        ([0x40], .unknown),
        ([0xC0, 0x00], .unknown),
    ])
    func firstBytesDemultiplexPerRFC7983(bytes: [UInt8], kind: PacketKind) {
        #expect(PacketKind(datagram: bytes) == kind)
    }
}
