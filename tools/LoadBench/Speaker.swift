import AirwaveProtocol
import NIOCore
import NIOWebSocket

/// Sends a speaker's Opus frames at a fixed rate, paced by tasks scheduled on the speaker's
/// event loop at absolute deadlines (start + n × interval), so timer jitter never accumulates.
/// A late tick sends every frame that is due (at most `maxCatchUp` at once). Frame n carries
/// sequence `speaker << 24 | n`, timestamp n × 960 (20 ms at 48 kHz) and the fixture's
/// packet n mod count, unchanged. The send time of each frame goes into the table just before
/// it is written.
final class SpeakerPacer: @unchecked Sendable {
    static let maxCatchUp = 5

    let session: Session
    let speakerIndex: Int
    let packets: [ByteBuffer]
    let total: Int
    let interval: TimeAmount
    let start: NIODeadline
    let done: EventLoopPromise<Int>
    private(set) var sent = 0
    private(set) var bytesSent = 0
    private(set) var lateTicks = 0
    private var stopped = false

    init(session: Session, speakerIndex: Int, packets: [ByteBuffer], total: Int, rate: Int, start: NIODeadline) {
        self.session = session
        self.speakerIndex = speakerIndex
        self.packets = packets
        self.total = total
        self.interval = .nanoseconds(Int64(1_000_000_000 / rate))
        self.start = start
        done = session.loopState.loop.makePromise()
    }

    /// From any thread.
    func begin() {
        let loop = session.loopState.loop
        loop.execute { self.schedule() }
    }

    /// From any thread: stop early (the run is being torn down).
    func cancel() {
        session.loopState.loop.execute {
            self.stopped = true
            self.done.succeed(self.sent)
        }
    }

    private func deadline(of n: Int) -> NIODeadline { start + .nanoseconds(interval.nanoseconds * Int64(n)) }

    private func schedule() {
        guard !stopped else { return }
        guard sent < total, let channel = session.channel, channel.isActive else {
            stopped = true
            done.succeed(sent)
            return
        }
        session.loopState.loop.scheduleTask(deadline: deadline(of: sent)) { self.tick() }
    }

    private func tick() {
        guard !stopped, let channel = session.channel else { return }
        let now = NIODeadline.now()
        var burst = 0
        if now - deadline(of: sent) > interval { lateTicks += 1 }
        while sent < total && deadline(of: sent) <= now && burst < Self.maxCatchUp {
            let n = sent
            let payload = packets[n % packets.count]
            let header = MediaFrameHeader(
                kind: .opus, flags: n == 0 ? .marker : [], sourceID: 0,
                sequence: SendTimeTable.sequence(speaker: speakerIndex, index: n), timestamp: UInt32(truncatingIfNeeded: n * 960))
            var buffer = channel.allocator.buffer(capacity: MediaFrameHeader.size + payload.readableBytes)
            header.write(into: &buffer)
            buffer.writeImmutableBuffer(payload)
            bytesSent += buffer.readableBytes
            session.table.set(speaker: speakerIndex, index: n, nanos: monotonicNanos())
            channel.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: buffer), promise: nil)
            sent += 1
            burst += 1
        }
        channel.flush()
        schedule()
    }
}
