import AirwaveCore
import AirwaveProtocol

/// The mix clock: while the mix runs (someone subscribes or a recording runs), a task yields
/// `.mixTick` every ``tick`` into the driver's stream, and each `.mixTick` mixes every tick due
/// since the clock started, so the mix and a recording keep wall-clock time.
struct MixClock {
    /// One Opus frame of the mix: 20 ms.
    static let tick: Duration = .milliseconds(20)
    /// A driver that fell further behind than this many ticks (1 s) skips them rather than
    /// mixing them in one burst.
    static let maximumCatchUp = 50

    var timer: Task<Void, Never>?
    /// When the clock started, and how many ticks have been mixed since.
    var start: ContinuousClock.Instant?
    var ticksDone = 0
}

extension LiveEventDriver {
    /// Mixes every tick that is due by the mix clock: normally one, more when the driver fell
    /// behind (a busy machine). Returns the last tick's measured levels.
    func runDueMixTicks(_ state: inout RunState, _ services: Services) -> [UInt32: UInt8] {
        guard let start = state.mixClock.start else { return [:] }
        let due = Int((ContinuousClock.now - start) / MixClock.tick)
        if due - state.mixClock.ticksDone > MixClock.maximumCatchUp { state.mixClock.ticksDone = due - MixClock.maximumCatchUp }
        var levels: [UInt32: UInt8] = [:]
        while state.mixClock.ticksDone < due {
            levels = state.mix.tick(metrics: services.metrics, webRTC: services.webRTC, links: state.linkSockets)
            state.mixClock.ticksDone += 1
        }
        return levels
    }

    /// Starts or stops the clock to match whether the mix runs. Deadlines advance by exactly one
    /// tick, so the mix keeps real time even when one sleep wakes late.
    func updateMixClock(_ state: inout RunState) {
        if state.mix.isActive, state.mixClock.timer == nil {
            state.mixClock.start = .now
            state.mixClock.ticksDone = 0
            let inbox = self.inbox
            state.mixClock.timer = Task {
                let clock = ContinuousClock()
                var deadline = clock.now
                while !Task.isCancelled {
                    deadline += MixClock.tick
                    try? await clock.sleep(until: deadline)
                    guard !Task.isCancelled else { return }
                    inbox.yield(.mixTick)
                }
            }
        } else if !state.mix.isActive, let timer = state.mixClock.timer {
            timer.cancel()
            state.mixClock = MixClock()
        }
    }
}
