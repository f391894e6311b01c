import AirwaveCore
import AirwaveProtocol
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One attempt at an edge's link to its event's origin (PROTOCOL.md 8): a WebSocket client to
/// the origin's `/ws/cluster/link/{eventId}/`. What comes down is handed to the driver tagged
/// with the attempt, so nothing of an older attempt is taken for the current one; the end of
/// the attempt (refused, failed, broken, or unanswered for `answerDeadline`) is one
/// `linkEnded`. What goes up is written in order by one task.
final class EdgeLinkClient: Sendable {
    private let outgoing: AsyncStream<EdgeLinkMessage.Frame>.Continuation

    private init(outgoing: AsyncStream<EdgeLinkMessage.Frame>.Continuation) {
        self.outgoing = outgoing
    }

    /// Largest message the origin sends: a snapshot with a full participant list and chat history.
    static let maxMessageSize = 16 << 20
    /// An attempt whose first message (the snapshot) has not come by then is given up: an origin
    /// that does not answer (a partition, a machine gone without a reset) must not hold the edge
    /// longer than its re-link delays.
    static let answerDeadline: Duration = .seconds(3)

    static func open(eventID: String, session: String, attempt: Int, driver: EdgeEventDriver,
                     services: EdgeEventDriver.Services) -> EdgeLinkClient {
        let (frames, outgoing) = AsyncStream.makeStream(of: EdgeLinkMessage.Frame.self)
        let logger = services.logger
        let answered = NIOLockedValueBox(false)
        let task = Task {
            guard let (originNode, url) = await services.linkURL(eventID, session) else {
                driver.enqueue(.noOrigin(attempt: attempt))
                return
            }
            driver.enqueue(.linking(attempt: attempt, originNode: originNode))
            defer { driver.enqueue(.linkEnded(attempt: attempt)) }
            do {
                try await WebSocketClient.connect(
                    url: url, configuration: .init(maxFrameSize: maxMessageSize), logger: logger
                ) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await frame in frames {
                                switch frame {
                                case .text(let text): try await outbound.write(.text(text))
                                case .binary(let media): try await outbound.write(.binary(media.encoded()))
                                }
                            }
                            try await outbound.close(.normalClosure, reason: nil)
                        }
                        for try await message in inbound.messages(maxSize: maxMessageSize) {
                            let down: EdgeLinkMessage.Down
                            switch message {
                            case .text(let text):
                                down = try EdgeLinkMessage.Down(.text(text))
                            case .binary(let buffer):
                                down = try EdgeLinkMessage.Down(.binary(MediaFrame(parsing: buffer)))
                            }
                            answered.withLockedValue { $0 = true }
                            driver.enqueue(.fromOrigin(attempt: attempt, down))
                        }
                        group.cancelAll()
                    }
                }
            } catch {
                logger.debug("an edge link ended", metadata: ["event_id": "\(eventID)", "error": "\(error)"])
            }
        }
        Task {
            try? await Task.sleep(for: answerDeadline)
            guard !answered.withLockedValue({ $0 }) else { return }
            // The edge moves on now (its driver ignores this attempt's own end when it comes);
            // the client's connect cannot be cut short, so its socket waits for the peer or its
            // close timeout (docs/architecture.md: an origin that accepts but never answers).
            driver.enqueue(.linkEnded(attempt: attempt))
            outgoing.finish()
            task.cancel()
        }
        return EdgeLinkClient(outgoing: outgoing)
    }

    /// Queues a message up the link.
    func send(_ message: EdgeLinkMessage.Up) {
        outgoing.yield(message.frame)
    }

    /// Closes the link (the close handshake after what is queued).
    func close() {
        outgoing.finish()
    }
}
