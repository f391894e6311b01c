import AirwaveCore
import AirwaveProtocol

/// A live event as this node serves it (PROTOCOL.md 8): as its origin (the event's driver), or
/// as an edge of another node's event. What a player route needs of either, in one place.
enum ServedEvent: Sendable {
    case origin(LiveEventDriver)
    case edge(EdgeEventDriver)

    /// True once the event is over here.
    var hasEnded: Bool {
        switch self {
        case .origin(let driver): driver.hasEnded
        case .edge(let edge): edge.hasFinished
        }
    }

    /// Where a WebRTC session of the event reports.
    var webRTC: any WebRTCEvent {
        switch self {
        case .origin(let driver): driver
        case .edge(let edge): edge
        }
    }

    /// Starts the event's HLS segmenter here; false once it is over.
    func startSegmenter(_ stream: HLSStream, id: ConnectionID) -> Bool {
        switch self {
        case .origin(let driver): driver.startSegmenter(stream, id: id)
        case .edge(let edge): edge.startSegmenter(stream, id: id)
        }
    }

    /// A player's connection closed.
    func disconnected(_ id: ConnectionID) {
        switch self {
        case .origin(let driver): driver.submit(.disconnected(id))
        case .edge(let edge): edge.submit(.disconnected(id))
        }
    }
}

extension AirwaveServer {
    /// The event as this node serves it: its origin's driver here, or (`asEdge`) this node's edge
    /// of an event live on another node, started if need be. Nil when it is neither.
    func served(_ eventID: String, asEdge: Bool = true) async throws -> ServedEvent? {
        if let driver = await registry.driver(for: eventID) { return .origin(driver) }
        guard asEdge, let edge = try await edge(for: eventID) else { return nil }
        return .edge(edge)
    }
}
