import AirwaveWebRTCFuzzing
import Testing

@testable import AirwaveWebRTC

/// Every parser over a few thousand mutated inputs (the `airwave-fuzz` tool runs longer). A
/// crash fails the whole test run, which is the point.
@Suite struct FuzzSmokeTests {
    @Test(arguments: FuzzTarget.allCases)
    func parsersSurviveMutatedInputs(target: FuzzTarget) throws {
        var run = FuzzRun(target: target, sdpOffers: try WebRTCFixtures.allOffers(), seed: 20261123)
        run.run(iterations: target == .sdp ? 500 : 3000)
        #expect(run.iterations == (target == .sdp ? 500 : 3000))
    }

    @Test func theMutatorIsDeterministicAndChangesItsInput() {
        var first = FuzzMutator(seeds: [STUNTestVectors.request], seed: 5)
        var second = FuzzMutator(seeds: [STUNTestVectors.request], seed: 5)
        let a = (0..<100).map { _ in first.next() }
        let b = (0..<100).map { _ in second.next() }
        #expect(a == b)
        #expect(a.filter { $0 != STUNTestVectors.request }.count > 90)
    }

    @Test func everySeedIsValidInput() throws {
        for seed in FuzzTarget.stun.seeds(sdpOffers: []) { _ = try STUNMessage.parse(seed) }
        for seed in FuzzTarget.rtp.seeds(sdpOffers: []) { _ = try RTPPacket.parse(seed) }
        for seed in FuzzTarget.rtcp.seeds(sdpOffers: []) { _ = try RTCPPacket.parseCompound(seed) }
        let offers = try WebRTCFixtures.allOffers()
        #expect(offers.count == 4)
        for seed in FuzzTarget.sdp.seeds(sdpOffers: offers) { _ = try SessionDescription.parse(String(decoding: seed, as: UTF8.self)) }
    }
}
