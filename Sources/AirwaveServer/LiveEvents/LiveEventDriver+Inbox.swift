import AirwaveCore
import AirwaveProtocol

/// The driver's inbox and clock: every input reaches the event's task through one ordered
/// stream, refused once the event is over; the engine's `nextWakeUp` becomes a `.tick`.
extension LiveEventDriver {
    /// Queues an input; false once the event is over (the caller answers `event_ended` itself).
    @discardableResult
    func submit(_ input: LiveEvent.Input, connection: ClientConnection? = nil, mixed: Bool = false) -> Bool {
        enqueue(.input(input, connection: connection, mixed: mixed))
    }

    /// Queues an input about a WebRTC peer; false once the event is over.
    @discardableResult
    func submit(_ input: LiveEvent.Input, peer: WebRTCPeer) -> Bool {
        enqueue(.peerInput(input, peer: peer))
    }

    /// True once the event is over, even while the registry still lists it (it forgets the
    /// driver only after the end has been reported).
    var hasEnded: Bool { inbox.isOver }

    /// Whether the event accepts `peer` as a publisher of its user's voice (the host or a
    /// current co-host); the engine then holds it until the user's role ends.
    func admitPublisher(_ peer: WebRTCPeer) async -> Bool {
        await withCheckedContinuation { (answer: CheckedContinuation<Bool, Never>) in
            if !enqueue(.publisher(peer, reply: { answer.resume(returning: $0) })) { answer.resume(returning: false) }
        }
    }

    func enqueue(_ message: Message) -> Bool {
        inbox.enqueue(message)
    }

    /// Arms the timer for the engine's next wake-up.
    func scheduleTimer(_ wakeUp: Timestamp?, _ state: inout RunState, now: Timestamp) {
        let inbox = self.inbox
        state.timer.schedule(wakeUp, now: now) { inbox.yield(.tick) }
    }
}
