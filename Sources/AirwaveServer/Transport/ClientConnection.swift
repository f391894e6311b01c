import AirwaveCore
import AirwaveProtocol
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// One client WebSocket as the relay sees it: writes go straight to the NIO channel on its
/// event loop (no per-message task or actor hop); closing goes through the WebSocket handler
/// so that the close handshake is done right.
final class ClientConnection: Sendable {
    let id: ConnectionID
    let channel: any Channel
    private let outbound: WebSocketOutboundWriter
    private let closeRequested = NIOLockedValueBox(false)

    init(id: ConnectionID, channel: any Channel, outbound: WebSocketOutboundWriter) {
        self.id = id
        self.channel = channel
        self.outbound = outbound
    }

    /// Whether a close has been asked for (no further frames are meant for it).
    var isClosing: Bool { closeRequested.withLockedValue { $0 } }

    /// Sends one pre-encoded text frame.
    func send(_ frame: WebSocketFrame) {
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a JSON message.
    func send(_ message: JSONValue) {
        send(WebSocketFrame.text(message))
    }

    /// Starts the close handshake with `code`; the channel is closed outright if the peer
    /// does not answer within `timeout`. Only the first call counts.
    func close(_ code: CloseCode, reason: String? = nil, timeout: Duration = .seconds(5)) {
        let first = closeRequested.withLockedValue { requested in
            defer { requested = true }
            return !requested
        }
        guard first else { return }
        let outbound = self.outbound
        let channel = self.channel
        // Queued behind every frame already written, so the error frame always precedes the close.
        channel.eventLoop.execute {
            Task {
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
            }
            channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.milliseconds) * 1_000_000)) {
                channel.close(promise: nil)
            }
        }
    }

    /// Sends the error as the only frame and closes with its close code.
    func refuse(_ error: ProtocolError) {
        send(error.json)
        close(error.code.closeCode ?? .normal, reason: error.code.rawValue)
    }
}

extension WebSocketFrame {
    /// A final text frame holding the JSON text of `message`.
    static func text(_ message: JSONValue) -> WebSocketFrame {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        message.write(into: &buffer)
        return WebSocketFrame(fin: true, opcode: .text, data: buffer)
    }
}
