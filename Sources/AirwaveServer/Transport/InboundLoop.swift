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
        deliver: (Message) -> Verdict,
        deliverMedia: ((MediaFrame) -> Verdict)? = nil
    ) async {
        var chatBucket = TokenBucket(rate: configuration.chatRate.perSecond, burst: configuration.chatRate.burst)
        var controlBucket = TokenBucket(rate: configuration.controlRate.perSecond, burst: configuration.controlRate.burst)
        var rateErrorGate = IntervalGate(interval: .seconds(1))
        var mediaErrorGate = IntervalGate(interval: .seconds(1))
        var mediaBucket = TokenBucket(rate: configuration.mediaRate.perSecond, burst: configuration.mediaRate.burst)
        do {
            for try await message in inbound.messages(maxSize: configuration.maxBinaryFrameSize) {
                let now = Timestamp.now()
                switch message {
                case .text(let text):
                    guard text.utf8.count <= configuration.maxTextFrameSize else {
                        metrics.error(code: "message_too_big")
                        // Awaited here: returning first would let the WebSocket layer close with 1000.
                        await connection.closeNow(.messageTooBig, reason: "text frame over \(configuration.maxTextFrameSize) bytes")
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
                case .binary(let buffer):
                    guard let deliverMedia else {
                        metrics.mediaDropped(reason: "no_media_endpoint")
                        if mediaErrorGate.allow(now: now) {
                            connection.send(ProtocolError(.notAllowed, "This endpoint carries no media.").json)
                        }
                        continue
                    }
                    let frame: MediaFrame
                    do {
                        frame = try MediaIngress.validate(buffer)
                    } catch {
                        metrics.mediaDropped(reason: "malformed")
                        if mediaErrorGate.allow(now: now) {
                            connection.send(ProtocolError(.badMessage, error.message, details: ["reason": .string(error.reason)]).json)
                        }
                        continue
                    }
                    metrics.mediaIn(kind: frame.header.kind)
                    guard mediaBucket.take(now: now) else {
                        metrics.mediaDropped(reason: "rate_limited")
                        continue
                    }
                    if case .stop = deliverMedia(frame) { return }
                }
            }
        } catch {
            // The WebSocket layer closes the socket itself (1009 for an oversized message, protocol errors).
            metrics.error(code: "socket_error")
        }
    }
}
