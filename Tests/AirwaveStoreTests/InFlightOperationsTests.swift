import Testing
@testable import AirwaveStore

/// Closing the store waits for operations still running, those their callers abandoned
/// included, but not forever.
@Suite struct InFlightOperationsTests {
    @Test func drainWaitsForAnAbandonedOperationToEnd() async {
        let operations = InFlightOperations()
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (ended, endedContinuation) = AsyncStream.makeStream(of: Void.self)
        _ = operations.start {
            for await _ in released { break }
            endedContinuation.yield()
            endedContinuation.finish()
        }
        #expect(operations.count == 1)
        let drained = Task { await operations.drain(patience: .seconds(600)) }
        release.yield()
        await drained.value
        // Drained only once the operation had ended.
        var iterator = ended.makeAsyncIterator()
        #expect(await iterator.next() != nil)
        #expect(operations.count == 0)
    }

    @Test func drainGivesUpAfterItsPatience() async {
        let operations = InFlightOperations()
        let (never, keep) = AsyncStream.makeStream(of: Void.self)
        let hung = operations.start {
            for await _ in never {}
        }
        let begin = ContinuousClock.now
        await operations.drain(patience: .milliseconds(200))
        #expect(ContinuousClock.now - begin >= .milliseconds(200))
        #expect(operations.count == 1)
        keep.finish()
        await hung.value
    }

    @Test func anOperationThatEndsAtOnceLeavesNothingBehind() async {
        let operations = InFlightOperations()
        for _ in 0..<100 { await operations.start {}.value }
        #expect(operations.count == 0)
        await operations.drain(patience: .seconds(600))
    }
}
