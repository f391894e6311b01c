import Testing

@testable import AirwaveWebRTC

@Suite struct ICELiteAgentTests {
    let start = ContinuousClock.Instant.now
    let peer = TransportAddress(host: "192.0.2.10", port: 50000)!
    let relay = TransportAddress(host: "198.51.100.7", port: 60000)!

    static let serverPassword = "serverpassword0123456789"
    static let clientPassword = "clientpassword0123456789"

    func agent() -> ICELiteAgent {
        ICELiteAgent(localUfrag: "srv1", localPassword: Self.serverPassword, remoteUfrag: "cli1",
                     remotePassword: Self.clientPassword, now: start)
    }

    func check(username: String = "srv1:cli1", password: String = serverPassword,
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

    /// The server's success answer to `check(id:)` from `address`.
    func success(id: UInt8 = 1, to address: TransportAddress) -> [UInt8] {
        let transaction = Array(repeating: id, count: 12)
        return STUNMessage(messageClass: .successResponse, transactionID: transaction,
                           attributes: [.xorMappedAddress(address, transactionID: transaction)])
            .serialized(integrityPassword: Self.serverPassword, fingerprint: true)
    }

    /// The agent's own check with this transaction and tie-breaker, byte for byte: USERNAME
    /// `cli1:srv1`, a host PRIORITY, ICE-CONTROLLED, keyed with the client's password.
    func probe(transaction: [UInt8], tieBreaker: [UInt8]) -> [UInt8] {
        let priority = ICELiteAgent.probePriority
        return STUNMessage(
            messageClass: .request, transactionID: transaction,
            attributes: [
                .username("cli1:srv1"),
                STUNAttribute(.priority, value: [UInt8(priority >> 24), UInt8((priority >> 16) & 0xFF),
                                                  UInt8((priority >> 8) & 0xFF), UInt8(priority & 0xFF)]),
                STUNAttribute(.iceControlled, value: tieBreaker),
            ]).serialized(integrityPassword: Self.clientPassword, fingerprint: true)
    }

    /// The transaction ID and tie-breaker of the agent's check in `action`, after checking that
    /// it is exactly `probe(…)` with them, sent to `address`.
    func probeIdentity(_ action: ICELiteAgent.Action?, to address: TransportAddress) throws -> (transaction: [UInt8], tieBreaker: [UInt8]) {
        guard case let .send(bytes, to) = try #require(action) else { throw ProbeMissing() }
        let message = try STUNMessage.parse(bytes)
        let tieBreaker = try #require(message.attribute(.iceControlled)?.value)
        #expect(to == address)
        #expect(bytes == probe(transaction: message.transactionID, tieBreaker: tieBreaker))
        return (message.transactionID, tieBreaker)
    }

    struct ProbeMissing: Error {}

    /// The peer's answer to the agent's check.
    func answer(_ transaction: [UInt8], from address: TransportAddress, password: String = clientPassword) -> [UInt8] {
        STUNMessage(messageClass: .successResponse, transactionID: transaction,
                    attributes: [.xorMappedAddress(address, transactionID: transaction)])
            .serialized(integrityPassword: password, fingerprint: true)
    }

    /// A check from `address` and the answer to the agent's own check there: `address` consents.
    func consent(_ agent: inout ICELiteAgent, _ address: TransportAddress, nominate: Bool = false, priority: UInt32 = 1000,
                 at time: ContinuousClock.Instant) throws {
        let actions = agent.handleSTUN(check(priority: priority, nominate: nominate), from: address, now: time)
        #expect(actions.first == .send(success(to: address), to: address))
        let (transaction, _) = try probeIdentity(actions.last, to: address)
        #expect(agent.handleSTUN(answer(transaction, from: address), from: address, now: time) == [.consented(address)])
    }

    @Test func aValidCheckGetsASignedSuccessAndTheAgentChecksTheAddressBack() throws {
        var agent = agent()
        let actions = agent.handleSTUN(check(id: 9), from: peer, now: start)
        #expect(actions.count == 2)
        guard case let .send(response, to) = try #require(actions.first) else { return }
        #expect(to == peer)
        #expect(response == success(id: 9, to: peer))
        let message = try STUNMessage.parse(response)  // checks FINGERPRINT
        #expect(message.messageClass == .successResponse)
        #expect(message.xorMappedAddress == peer)
        try STUNMessage.verifyMessageIntegrity(response, password: Self.serverPassword)
        let (transaction, tieBreaker) = try probeIdentity(actions.last, to: peer)
        #expect(transaction.count == 12 && tieBreaker.count == 8)
        // Verified, so the driver routes the address here; but nothing is accepted from it yet.
        #expect(agent.validatedAddresses == [peer])
        #expect(!agent.accepts(mediaFrom: peer))
        // A second check while the first probe is out is answered without a second probe.
        #expect(agent.handleSTUN(check(id: 10), from: peer, now: start) == [.send(success(id: 10, to: peer), to: peer)])
        #expect(agent.handleSTUN(answer(transaction, from: peer), from: peer, now: start) == [.consented(peer)])
        #expect(agent.accepts(mediaFrom: peer))
        #expect(agent.state == .checking)
        // Once consented, checks are only answered.
        #expect(agent.handleSTUN(check(id: 11), from: peer, now: start) == [.send(success(id: 11, to: peer), to: peer)])
    }

    @Test func wrongCredentialsGetAnUnauthorizedError() throws {
        var agent = agent()
        for request in [check(password: "wrongwrongwrongwrong"), check(username: "srv1:other"), check(username: "x:cli1")] {
            let actions = agent.handleSTUN(request, from: peer, now: start)
            guard actions.count == 1, case let .send(response, to) = actions[0] else {
                Issue.record("not rejected: \(actions)")
                continue
            }
            #expect(to == peer)
            let message = try STUNMessage.parse(response)
            #expect(message.messageClass == .errorResponse)
            #expect(message.attribute(.errorCode)?.value == [0, 0, 4, 1] + Array("Unauthorized".utf8))
        }
        #expect(!agent.accepts(mediaFrom: peer))
        #expect(agent.validatedAddresses.isEmpty)
    }

    @Test func responsesIndicationsAndGarbageAreIgnored() {
        var agent = agent()
        #expect(agent.handleSTUN([0, 1, 2], from: peer, now: start) == [])
        let indication = STUNMessage(messageClass: .indication, transactionID: Array(repeating: 0, count: 12)).serialized()
        #expect(agent.handleSTUN(indication, from: peer, now: start) == [])
        // An answer to a check the agent never sent.
        #expect(agent.handleSTUN(answer(Array(repeating: 5, count: 12), from: peer), from: peer, now: start) == [])
    }

    @Test func regularNominationSelectsTheNominatedAddressOnceItConsents() throws {
        var agent = agent()
        try consent(&agent, peer, at: start)
        #expect(agent.selected == nil)
        #expect(agent.handleSTUN(check(nominate: true), from: peer, now: start + .milliseconds(50))
            == [.send(success(to: peer), to: peer)])
        #expect(agent.state == .connected)
        #expect(agent.selected == peer)
    }

    @Test func aNominationFromANewAddressWaitsForItsAnswer() throws {
        var agent = agent()
        let actions = agent.handleSTUN(check(nominate: true), from: peer, now: start)
        let (transaction, _) = try probeIdentity(actions.last, to: peer)
        #expect(agent.selected == nil)
        #expect(agent.state == .checking)
        #expect(agent.handleSTUN(answer(transaction, from: peer), from: peer, now: start + .milliseconds(1)) == [.consented(peer)])
        #expect(agent.selected == peer)
        #expect(agent.state == .connected)
    }

    /// Issue 13 finding 2: one forged check with USE-CANDIDATE from another address moved the
    /// media there. Now it gets its answer and a few checks of the agent's own, nothing else.
    @Test func aForgedNominationFromAnotherAddressDoesNotMoveTheMedia() throws {
        var agent = agent()
        try consent(&agent, peer, nominate: true, priority: 1000, at: start)
        #expect(agent.selected == peer)
        let victim = TransportAddress(host: "203.0.113.66", port: 9)!
        let forged = agent.handleSTUN(check(priority: 0xFFFF_FFFF, nominate: true, id: 7), from: victim, now: start + .seconds(1))
        #expect(forged.count == 2)
        #expect(forged.first == .send(success(id: 7, to: victim), to: victim))
        let (transaction, tieBreaker) = try probeIdentity(forged.last, to: victim)
        #expect(agent.selected == peer)
        #expect(!agent.accepts(mediaFrom: victim))
        // The victim never answers: the check goes out again 250, 500, 1000, 2000 ms apart, five
        // times in all, then the agent gives up; the media never moved.
        let again = [ICELiteAgent.Action.send(probe(transaction: transaction, tieBreaker: tieBreaker), to: victim)]
        var sent: [Duration] = []
        var time = start + .seconds(1)
        for _ in 0..<20 {
            guard let due = agent.nextTimer, due <= start + .seconds(20) else { break }
            time = due
            // Consent on the real address stays fresh, as a browser's checks keep it.
            _ = agent.handleSTUN(check(), from: peer, now: time)
            let actions = agent.handleTimer(now: time)
            if !actions.isEmpty {
                #expect(actions == again)
                sent.append(time - (start + .seconds(1)))
            }
        }
        #expect(sent == [.milliseconds(250), .milliseconds(750), .milliseconds(1750), .milliseconds(3750)])
        #expect(agent.handleTimer(now: start + .seconds(1) + .milliseconds(7750)) == [])
        #expect(!agent.isProbing(victim))
        // An answer forged from yet another address, or signed with the wrong password, is no answer.
        #expect(agent.handleSTUN(answer(transaction, from: relay), from: relay, now: time) == [])
        #expect(agent.selected == peer)
        #expect(agent.state == .connected)
    }

    @Test func anAnswerMustComeFromTheCheckedAddressSignedWithThePeersPassword() throws {
        var agent = agent()
        let actions = agent.handleSTUN(check(nominate: true), from: peer, now: start)
        let (transaction, _) = try probeIdentity(actions.last, to: peer)
        #expect(agent.handleSTUN(answer(transaction, from: peer, password: Self.serverPassword), from: peer, now: start) == [])
        #expect(agent.handleSTUN(answer(transaction, from: relay), from: relay, now: start) == [])
        #expect(agent.handleSTUN(answer(Array(repeating: 0, count: 12), from: peer), from: peer, now: start) == [])
        #expect(agent.selected == nil)
        #expect(agent.handleSTUN(answer(transaction, from: peer), from: peer, now: start) == [.consented(peer)])
        #expect(agent.selected == peer)
    }

    @Test func aMoveToAnAddressThatAnswersIsFollowed() throws {
        var agent = agent()
        try consent(&agent, peer, nominate: true, at: start)
        try consent(&agent, relay, nominate: true, priority: 1000, at: start + .seconds(1))
        #expect(agent.selected == relay)
    }

    @Test func checksOfTheAgentsOwnAreBoundedPerSession() throws {
        var agent = agent()
        var probed = 0
        for index in 0..<10 {
            let address = TransportAddress(host: "198.51.100.\(index + 1)", port: 1000)!
            probed += agent.handleSTUN(check(nominate: true), from: address, now: start).count - 1
        }
        #expect(probed == ICELiteAgent.Configuration().maximumProbes)
        #expect(agent.validatedAddresses.count == 10)
        #expect(agent.selected == nil)
    }

    @Test func aggressiveNominationKeepsTheHighestPriority() throws {
        var agent = agent()
        try consent(&agent, relay, nominate: true, priority: 100, at: start)
        #expect(agent.selected == relay)
        try consent(&agent, peer, nominate: true, priority: 2000, at: start + .milliseconds(10))
        #expect(agent.selected == peer)
        // A lower-priority nomination does not take over while the selected pair is alive…
        _ = agent.handleSTUN(check(priority: 100, nominate: true), from: relay, now: start + .milliseconds(20))
        #expect(agent.selected == peer)
        // …but does once the selected pair has gone quiet for switchAfter.
        _ = agent.handleSTUN(check(priority: 100, nominate: true), from: relay, now: start + .seconds(3))
        #expect(agent.selected == relay)
    }

    @Test func consentExpiresWithoutChecksOnTheSelectedAddress() throws {
        var agent = agent()
        try consent(&agent, peer, nominate: true, at: start)
        _ = agent.handleSTUN(check(), from: peer, now: start + .seconds(20))
        #expect(agent.handleTimer(now: start + .seconds(45)) == [])
        #expect(agent.state == .connected)
        #expect(agent.nextTimer == start + .seconds(50))
        #expect(agent.handleTimer(now: start + .seconds(50)) == [])
        #expect(agent.state == .expired)
        #expect(agent.handleSTUN(check(), from: peer, now: start + .seconds(51)) == [])
    }

    @Test func aSessionThatNeverConnectsExpires() {
        var agent = agent()
        #expect(agent.handleTimer(now: start + .seconds(29)) == [])
        #expect(agent.state == .checking)
        #expect(agent.handleTimer(now: start + .seconds(30)) == [])
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
