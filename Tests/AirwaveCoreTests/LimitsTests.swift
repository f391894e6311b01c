import AirwaveCore
import AirwaveProtocol
import Testing

private func t(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: ms) }

@Suite("Throttle")
struct ThrottleTests {
    @Test func nothingPendingNeverFires() {
        var throttle = Throttle(interval: .seconds(1))
        #expect(!throttle.isPending)
        #expect(throttle.dueAt == nil)
        do { let ok = throttle.fire(now: t(0)); #expect(!ok) }
        do { let ok = throttle.fire(now: t(100_000)); #expect(!ok) }
    }

    @Test func firstChangeGoesOutAtOnce() {
        var throttle = Throttle(interval: .seconds(1))
        throttle.markChanged()
        #expect(throttle.isPending)
        #expect(throttle.dueAt! <= t(5000))
        do { let ok = throttle.fire(now: t(5000)); #expect(ok) }
        #expect(!throttle.isPending)
        #expect(throttle.dueAt == nil)
        do { let ok = throttle.fire(now: t(5001)); #expect(!ok) }
    }

    @Test func laterChangesAreCoalescedToTheEndOfTheWindow() {
        var throttle = Throttle(interval: .seconds(1))
        throttle.markChanged()
        do { let ok = throttle.fire(now: t(1000)); #expect(ok) }
        throttle.markChanged()
        throttle.markChanged()
        throttle.markChanged()
        #expect(throttle.dueAt == t(2000))
        do { let ok = throttle.fire(now: t(1500)); #expect(!ok) }
        do { let ok = throttle.fire(now: t(1999)); #expect(!ok) }
        #expect(throttle.isPending)
        do { let ok = throttle.fire(now: t(2000)); #expect(ok) }
        #expect(!throttle.isPending)
        // The window restarts where it fired.
        throttle.markChanged()
        #expect(throttle.dueAt == t(3000))
        do { let ok = throttle.fire(now: t(2999)); #expect(!ok) }
        do { let ok = throttle.fire(now: t(3500)); #expect(ok) }
        throttle.markChanged()
        #expect(throttle.dueAt == t(4500))
    }

    @Test func quietPeriodLetsTheNextChangeOutAtOnce() {
        var throttle = Throttle(interval: .milliseconds(250))
        throttle.markChanged()
        do { let ok = throttle.fire(now: t(0)); #expect(ok) }
        throttle.markChanged()
        do { let ok = throttle.fire(now: t(10_000)); #expect(ok) }
    }

    @Test func atMostOneFirePerIntervalUnderConstantChange() {
        var throttle = Throttle(interval: .seconds(1))
        var fired: [Int64] = []
        for ms in stride(from: Int64(0), through: 10_000, by: 7) {
            throttle.markChanged()
            if throttle.fire(now: t(ms)) { fired.append(ms) }
        }
        #expect(fired.count >= 10 && fired.count <= 11)
        for (a, b) in zip(fired, fired.dropFirst()) { #expect(b - a >= 1000) }
    }
}

@Suite("IntervalGate")
struct IntervalGateTests {
    @Test func firstPassesThenOnePerInterval() {
        var gate = IntervalGate(interval: .seconds(1))
        do { let ok = gate.allow(now: t(1000)); #expect(ok) }
        do { let ok = gate.allow(now: t(1000)); #expect(!ok) }
        do { let ok = gate.allow(now: t(1999)); #expect(!ok) }
        do { let ok = gate.allow(now: t(2000)); #expect(ok) }
        do { let ok = gate.allow(now: t(2500)); #expect(!ok) }
        do { let ok = gate.allow(now: t(9000)); #expect(ok) }
    }

    @Test func droppedAttemptsDoNotExtendTheWindow() {
        var gate = IntervalGate(interval: .milliseconds(500))
        do { let ok = gate.allow(now: t(0)); #expect(ok) }
        for ms in stride(from: Int64(10), to: 500, by: 10) { do { let ok = gate.allow(now: t(ms)); #expect(!ok) } }
        do { let ok = gate.allow(now: t(500)); #expect(ok) }
    }

    @Test func timeGoingBackwardsIsStillInsideTheWindow() {
        var gate = IntervalGate(interval: .seconds(1))
        do { let ok = gate.allow(now: t(5000)); #expect(ok) }
        do { let ok = gate.allow(now: t(4000)); #expect(!ok) }
    }
}

@Suite("TokenBucket")
struct TokenBucketTests {
    @Test func burstThenRefusal() {
        var bucket = TokenBucket(rate: 2, burst: 3)
        do { let ok = bucket.take(now: t(0)); #expect(ok) }
        do { let ok = bucket.take(now: t(0)); #expect(ok) }
        do { let ok = bucket.take(now: t(0)); #expect(ok) }
        do { let ok = bucket.take(now: t(0)); #expect(!ok) }
        do { let ok = bucket.take(now: t(0)); #expect(!ok) }
    }

    @Test func refillsAtTheRate() {
        var bucket = TokenBucket(rate: 2, burst: 3)  // one token every 500 ms
        for _ in 0..<3 { do { let ok = bucket.take(now: t(0)); #expect(ok) } }
        do { let ok = bucket.take(now: t(499)); #expect(!ok) }
        do { let ok = bucket.take(now: t(500)); #expect(ok) }
        do { let ok = bucket.take(now: t(500)); #expect(!ok) }
        do { let ok = bucket.take(now: t(999)); #expect(!ok) }
        do { let ok = bucket.take(now: t(1000)); #expect(ok) }
    }

    @Test func costsTakeSeveralTokensOrNone() {
        // A byte budget: 1,000 bytes a second, 1,500 saved up.
        var bucket = TokenBucket(rate: 1_000, burst: 1_500)
        do { let ok = bucket.take(1_200, now: t(0)); #expect(ok) }
        // 300 left: a 400-byte frame is refused and takes nothing, so a 300-byte one still fits.
        do { let ok = bucket.take(400, now: t(0)); #expect(!ok) }
        do { let ok = bucket.take(300, now: t(0)); #expect(ok) }
        do { let ok = bucket.take(1, now: t(0)); #expect(!ok) }
        // 100 ms refill 100 bytes.
        do { let ok = bucket.take(101, now: t(100)); #expect(!ok) }
        do { let ok = bucket.take(100, now: t(100)); #expect(ok) }
    }

    @Test func neverSavesMoreThanTheBurst() {
        var bucket = TokenBucket(rate: 10, burst: 2)
        do { let ok = bucket.take(now: t(0)); #expect(ok) }
        // An hour idle still gives only `burst` tokens.
        do { let ok = bucket.take(now: t(3_600_000)); #expect(ok) }
        do { let ok = bucket.take(now: t(3_600_000)); #expect(ok) }
        do { let ok = bucket.take(now: t(3_600_000)); #expect(!ok) }
    }

    @Test func timeGoingBackwardsAddsNothing() {
        var bucket = TokenBucket(rate: 1, burst: 1)
        do { let ok = bucket.take(now: t(10_000)); #expect(ok) }
        do { let ok = bucket.take(now: t(5_000)); #expect(!ok) }
        do { let ok = bucket.take(now: t(10_999)); #expect(!ok) }
        do { let ok = bucket.take(now: t(11_000)); #expect(ok) }
    }

    @Test func sustainedRateOverTime() {
        var bucket = TokenBucket(rate: 5, burst: 5)
        var taken = 0
        for ms in stride(from: Int64(0), to: 10_000, by: 10) where bucket.take(now: t(ms)) { taken += 1 }
        // 5 saved up plus 5 a second for 10 s (the last refill lands at 9,990 ms).
        #expect(taken >= 54 && taken <= 55)
    }
}
