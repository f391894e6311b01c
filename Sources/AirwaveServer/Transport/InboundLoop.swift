import AirwaveCore
import AirwaveProtocol
import HummingbirdWebSocket
import Logging

/// Reads a client's frames until the socket closes: enforces the size limit and the
/// per-connection rate limits (chat and control separately), answers malformed input with
/// an error, and hands each valid message on. Keeps reading so pings and closes are answered.
struct InboundLoop {
    let connection: ClientConnection
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    /// What to do with one message of the right size; return false to stop reading.
    enum Verdict { case keepReading, stop }

    func run<Message>(
        _ inbound: WebSocketInboundStream,
        decode: (String) throws(ProtocolError) -> Message,
        isChat: (Message) -> Bool,
        typeName: (Message) -> String,
        deliver: (Message) -> Verdict
    ) async {
        var chatBucket = TokenBucket(rate: configuration.chatRate.perSecond, burst: configuration.chatRate.burst)
        var controlBucket = TokenBucket(rate: configuration.controlRate.perSecond, burst: configuration.controlRate.burst)
        var rateErrorGate = IntervalGate(interval: .seconds(1))
        var mediaErrorGate = IntervalGate(interval: .seconds(1))
        do {
            for try await message in inbound.messages(maxSize: configuration.maxBinaryFrameSize) {
                let now = Timestamp.now()
                switch message {
                case .text(let text):
                    guard text.utf8.count <= configuration.maxTextFrameSize else {
                        metrics.error(code: "message_too_big")
                        connection.close(.messageTooBig, reason: "text frame over \(configuration.maxTextFrameSize) bytes")
                        return
                    }
                    let decoded: Message
                    do {
                        decoded = try decode(text)
                    } catch {
                        guard controlBucket.take(now: now) else { continue }
                        metrics.error(code: error.code.rawValue)
                        connection.send(error.json)
                        continue
                    }
                    let allowed = isChat(decoded) ? chatBucket.take(now: now) : controlBucket.take(now: now)
                    guard allowed else {
                        if rateErrorGate.allow(now: now) {
                            metrics.error(code: ErrorCode.rateLimited.rawValue)
                            connection.send(ProtocolError(.rateLimited, "Too many messages; this one was dropped.",
                                                          details: ["type": .string(typeName(decoded))]).json)
                        }
                        continue
                    }
                    metrics.messageIn(type: typeName(decoded))
                    if case .stop = deliver(decoded) { return }
                case .binary:
                    // The media path is not relayed on this endpoint yet: dropped, counted, answered once a second.
                    metrics.messageIn(type: "media")
                    if mediaErrorGate.allow(now: now) {
                        connection.send(ProtocolError(.notAllowed, "Media frames are not accepted on this connection.").json)
                    }
                }
            }
        } catch {
            // The WebSocket layer closes the socket itself (1009 for an oversized message, protocol errors).
            metrics.error(code: "socket_error")
        }
    }
}
