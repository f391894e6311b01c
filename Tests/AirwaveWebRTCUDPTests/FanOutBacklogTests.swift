import Testing

@testable import AirwaveWebRTCUDP

@Suite struct FanOutBacklogTests {
    /// Checked against a model, one step at a time: a queue of fan-outs that holds `limit`.
    @Test func admitsUpToItsLimitAndCountsTheDatagramsOfTheRest() {
        var backlog = FanOutBacklog(limit: 3)
        var modelWaiting = 0
        var modelDropped = 0
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1_000 {
            if Bool.random(using: &generator) {
                let datagrams = Int.random(in: 1...50, using: &generator)
                let admitted = backlog.admit(datagrams: datagrams)
                #expect(admitted == (modelWaiting < 3))
                if admitted { modelWaiting += 1 } else { modelDropped += datagrams }
            } else if modelWaiting > 0 {
                backlog.started()
                modelWaiting -= 1
            }
            #expect(backlog.waiting == modelWaiting)
            #expect(backlog.unreportedDrops == modelDropped)
        }
        let drops = backlog.takeDrops()
        #expect(drops == modelDropped)
        #expect(backlog.takeDrops() == 0)
    }

    @Test func aLimitBelowOneStillLetsOneFanOutWait() {
        var backlog = FanOutBacklog(limit: 0)
        let first = backlog.admit(datagrams: 1)
        let second = backlog.admit(datagrams: 2)
        #expect(first && !second)
        #expect(backlog.takeDrops() == 2)
    }
}
