import AirwaveCore
import AirwaveProtocol
import NIOCore

/// What the session does after one client message.
enum InboundVerdict {
    case keepReading
    /// The message was dropped by a rate limit: the sender is over its budget.
    case overLimit
    /// The endpoint is gone (the event ended): close normally.
    case stop
    /// Close with this code (an oversized text frame).
    case close(CloseCode, reason: String)
}

/// Receives an admitted connection's text and binary messages, on the connection's event loop.
protocol InboundReceiver: AnyObject {
    func text(_ text: String, now: Timestamp) -> InboundVerdict
    func binary(_ buffer: ByteBuffer, now: Timestamp) -> InboundVerdict
}

/// The rules every endpoint applies to a client's messages: the text size limit, the
/// per-connection rate limits (chat, control and media separately), errors for malformed
/// input (each kind at most once a second where the protocol says so), then hands each valid
/// message on. Lives on the connection's event loop; nothing here suspends.
final class InboundRules<Message>: InboundReceiver {
    private let connection: ClientConnection
    private let configuration: ServerConfiguration
    private let metrics: ServerMetrics
    private let decode: (String) throws(ProtocolError) -> Message
    private let isChat: (Message) -> Bool
    private let typeName: (Message) -> String
    private let deliver: (Message) -> InboundVerdict
    private let deliverMedia: ((MediaFrame) -> InboundVerdict)?
    private var chatBucket: TokenBucket
    private var controlBucket: TokenBucket
    /// The media check shared with the WebRTC gateway: validation, budgets, counters.
    private var media: MediaIngress
    private var rateErrorGate = IntervalGate(interval: .seconds(1))
    private var mediaErrorGate = IntervalGate(interval: .seconds(1))

    init(
        connection: ClientConnection, configuration: ServerConfiguration, metrics: ServerMetrics,
        decode: @escaping (String) throws(ProtocolError) -> Message,
        isChat: @escaping (Message) -> Bool,
        typeName: @escaping (Message) -> String,
        deliver: @escaping (Message) -> InboundVerdict,
        deliverMedia: ((MediaFrame) -> InboundVerdict)? = nil
    ) {
        self.connection = connection
        self.configuration = configuration
        self.metrics = metrics
        self.decode = decode
        self.isChat = isChat
        self.typeName = typeName
        self.deliver = deliver
        self.deliverMedia = deliverMedia
        chatBucket = TokenBucket(rate: configuration.chatRate.perSecond, burst: configuration.chatRate.burst)
        controlBucket = TokenBucket(rate: configuration.controlRate.perSecond, burst: configuration.controlRate.burst)
        media = MediaIngress(limits: configuration.media, metrics: metrics)
    }

    func text(_ text: String, now: Timestamp) -> InboundVerdict {
        guard text.utf8.count <= configuration.connections.maxTextMessage else {
            metrics.error(code: "message_too_big")
            return .close(.messageTooBig, reason: "text frame over \(configuration.connections.maxTextMessage) bytes")
        }
        let decoded: Message
        do {
            decoded = try decode(text)
        } catch {
            // Malformed messages spend control tokens too, so a flood of them is bounded.
            guard controlBucket.take(now: now) else { return .overLimit }
            metrics.error(code: error.code.rawValue)
            connection.send(error.json)
            return .keepReading
        }
        let allowed = isChat(decoded) ? chatBucket.take(now: now) : controlBucket.take(now: now)
        guard allowed else {
            if rateErrorGate.allow(now: now) {
                metrics.error(code: ErrorCode.rateLimited.rawValue)
                connection.send(ProtocolError(.rateLimited, "Too many messages; this one was dropped.",
                                              details: ["type": .string(typeName(decoded))]).json)
            }
            return .overLimit
        }
        metrics.messageIn(type: typeName(decoded))
        return deliver(decoded)
    }

    func binary(_ buffer: ByteBuffer, now: Timestamp) -> InboundVerdict {
        guard let deliverMedia else {
            metrics.mediaDropped(reason: "no_media_endpoint")
            if mediaErrorGate.allow(now: now) {
                connection.send(ProtocolError(.notAllowed, "This endpoint carries no media.").json)
            }
            return .keepReading
        }
        switch media.admit(buffer, now: now) {
        case .accepted(let frame):
            return deliverMedia(frame)
        case .malformed(let rejection):
            if mediaErrorGate.allow(now: now) {
                connection.send(ProtocolError(.badMessage, rejection.message, details: ["reason": .string(rejection.reason)]).json)
            }
            return .keepReading
        case .overLimit:
            return .overLimit
        }
    }
}
