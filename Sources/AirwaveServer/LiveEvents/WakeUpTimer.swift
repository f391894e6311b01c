import AirwaveProtocol

/// A driver's one timer for its engine's `nextWakeUp` (`LiveEventDriver`, `EdgeEventDriver`):
/// at most one pending task, which calls `fire` at the wake-up time.
struct WakeUpTimer {
    private var task: Task<Void, Never>?
    /// When the pending task fires; nil when none is pending.
    private(set) var at: Timestamp?

    /// The pending task fired: the next wake-up needs a new one.
    mutating func fired() {
        at = nil
    }

    /// Arms the timer for `wakeUp` (nil: none). A wake-up that only moved later keeps the
    /// pending task: its tick comes early, costs a no-op and re-arms, so a speaker whose level
    /// keeps the wake-up fresh costs no new task per audio packet.
    mutating func schedule(_ wakeUp: Timestamp?, now: Timestamp, fire: @escaping @Sendable () -> Void) {
        guard wakeUp != at else { return }
        if let current = at, let wakeUp, current <= wakeUp { return }
        task?.cancel()
        at = wakeUp
        guard let wakeUp else { return }
        let delay = max(0, wakeUp.milliseconds - now.milliseconds)
        task = Task {
            try? await Task.sleep(for: .milliseconds(delay))
            guard !Task.isCancelled else { return }
            fire()
        }
    }

    mutating func cancel() {
        task?.cancel()
        task = nil
        at = nil
    }
}
