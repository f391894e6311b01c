#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOCore

/// Opens the listeners: `connectRate` new connections a second, at most `concurrency`
/// handshakes in flight, each bounded by `timeout`; connections are spread round-robin over
/// the event loops. Runs on the calling (main) thread; every wait is bounded.
struct ListenerFleet {
    let loops: [LoopState]
    let table: SendTimeTable
    let port: Int
    let eventID: String
    let connectRate: Int
    let concurrency: Int
    let timeout: TimeAmount
    let runTag: String
    /// Appended to the join path, e.g. `?audio=mixed`.
    var query: String = ""
    /// Listeners of the mix: counted and checked for gaps, but their frames carry the mix's own
    /// sequence numbers, so no latency is matched against the speakers' send times.
    var mixed: Bool = false

    struct Outcome {
        var sessions: [Session]
        var wallSeconds: Double
    }

    func open(count: Int) -> Outcome {
        let gate = DispatchSemaphore(value: concurrency)
        let started = monotonicNanos()
        let spacing = 1_000_000_000 / UInt64(max(1, connectRate))
        let timeoutSeconds = Double(timeout.nanoseconds) / 1e9
        var sessions: [Session] = []
        sessions.reserveCapacity(count)
        for i in 0..<count {
            // Pace: connection i opens no earlier than start + i / rate.
            let due = started + UInt64(i) * spacing
            let now = monotonicNanos()
            if due > now { usleepNanos(due - now) }
            guard gate.wait(timeout: .now() + timeoutSeconds + 5) == .success else { break }
            let loopState = loops[i % loops.count]
            let userID = "bl-\(runTag)-\(i)"
            let session = Session(role: .listener, userID: userID, loopState: loopState, table: table)
            session.countsOnly = mixed
            session.ready.futureResult.whenComplete { _ in gate.signal() }
            sessions.append(session)
            openSession(session, port: port, path: "/ws/stream/live/join/event/\(eventID)/\(userID)/\(query)", timeout: timeout)
        }
        // Wait for the handshakes still in flight (each is bounded by its own timeout).
        for _ in 0..<concurrency { _ = gate.wait(timeout: .now() + timeoutSeconds + 5) }
        for _ in 0..<concurrency { gate.signal() }
        // Every session joins its loop's list on that loop.
        for loop in loops {
            let mine = sessions.filter { $0.loopState === loop }
            try? loop.loop.submit { loop.sessions.append(contentsOf: mine) }.wait()
        }
        return Outcome(sessions: sessions, wallSeconds: Double(monotonicNanos() - started) / 1e9)
    }
}

func usleepNanos(_ nanos: UInt64) {
    var ts = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    nanosleep(&ts, nil)
}
