import AirwaveProtocol

/// The screen track of a live event: the last config frame, the frames since the last
/// keyframe (the GOP cache, bounded), and which connections must see a keyframe before any
/// delta frame (PROTOCOL.md 2.4).
public struct ScreenPipeline: Sendable {
    /// Largest GOP cache, in payload and header bytes.
    public let cacheLimit: Int
    public private(set) var config: MediaFrame?
    /// Keyframe first, then the deltas after it; empty when there is no usable GOP.
    public private(set) var gop: [MediaFrame] = []
    public private(set) var gopBytes = 0
    /// Connections that have not had a keyframe yet; delta frames skip them.
    public private(set) var awaitingKeyframe: Set<ConnectionID> = []

    public init(cacheLimit: Int = 4 * 1024 * 1024) {
        self.cacheLimit = cacheLimit
    }

    /// What happened to a frame from the host.
    public enum Verdict: Sendable, Hashable {
        /// Forward to everyone but the host and the listed connections.
        case forward(skipping: Set<ConnectionID>)
        /// Forward, and the cache overflowed: ask the host for a keyframe.
        case forwardAndRequestKeyframe(skipping: Set<ConnectionID>)
    }

    /// Takes one frame from the host.
    public mutating func accept(_ frame: MediaFrame) -> Verdict {
        let flags = frame.header.flags
        if flags.contains(.config) {
            config = frame
            return .forward(skipping: [])
        }
        if flags.contains(.keyframe) {
            gop = [frame]
            gopBytes = frame.size
            awaitingKeyframe.removeAll()
            return .forward(skipping: [])
        }
        guard !gop.isEmpty else { return .forward(skipping: awaitingKeyframe) }
        if gopBytes + frame.size > cacheLimit {
            // Too long since the last keyframe to replay to a joiner: start over at the next one.
            gop.removeAll()
            gopBytes = 0
            return .forwardAndRequestKeyframe(skipping: awaitingKeyframe)
        }
        gop.append(frame)
        gopBytes += frame.size
        return .forward(skipping: awaitingKeyframe)
    }

    /// What a connection that starts watching now gets: the config frame and the cached GOP,
    /// or, without a GOP, nothing yet (it waits for the next keyframe; `needsKeyframe` is true).
    public mutating func join(_ connection: ConnectionID) -> (frames: [MediaFrame], needsKeyframe: Bool) {
        let configFrames = config.map { [$0] } ?? []
        if gop.isEmpty {
            awaitingKeyframe.insert(connection)
            return (configFrames, true)
        }
        return (configFrames + gop, false)
    }

    /// A connection left.
    public mutating func leave(_ connection: ConnectionID) {
        awaitingKeyframe.remove(connection)
    }

    /// Screen sharing (re)starts: nothing cached is valid and every viewer needs a keyframe.
    public mutating func reset(viewers: some Sequence<ConnectionID>) {
        config = nil
        gop.removeAll()
        gopBytes = 0
        awaitingKeyframe = Set(viewers)
    }

    /// Screen sharing stopped.
    public mutating func clear() {
        reset(viewers: [])
    }
}
