import Testing

@testable import AirwaveWebRTCUDP

@Suite struct HeapTrimPolicyTests {
    /// Only after enough sessions freed their DTLS connection, and at most once per interval.
    @Test func trimsAfterEnoughReleasesAtMostOncePerInterval() {
        var policy = HeapTrimPolicy(minimumReleases: 3, interval: .seconds(10))
        let start = ContinuousClock.Instant.now
        var decisions: [Bool] = []
        decisions.append(policy.shouldTrim(now: start))
        policy.released(2)
        decisions.append(policy.shouldTrim(now: start))
        policy.released(1)
        decisions.append(policy.shouldTrim(now: start))
        decisions.append(policy.shouldTrim(now: start))  // the count starts over
        policy.released(5)
        decisions.append(policy.shouldTrim(now: start + .seconds(9)))
        decisions.append(policy.shouldTrim(now: start + .seconds(10)))
        #expect(decisions == [false, false, true, false, false, true])
    }
}
