import AirwaveProtocol
import NIOCore
import NIOWebSocket

/// The largest messages one socket may send (PROTOCOL.md 10), fixed when it is upgraded.
struct MessageLimits: Sendable, Hashable {
    var text: Int
    var binary: Int
}

extension CloseCode {
    /// RFC 6455 7.4.1: a message broke a policy (here: not complete within the fragment timeout).
    static let policyViolation = CloseCode(rawValue: 1008)
}

/// A client broke the WebSocket protocol or a limit: the session closes with `code`.
struct WebSocketViolation: Sendable, Hashable {
    var code: CloseCode
    var reason: String
}

/// Reads client frames (RFC 6455 5.2) from bytes as they arrive: checks each header before its
/// payload is buffered (size limits, reserved bits and opcodes, masking, control-frame rules,
/// fragment order), validates text as UTF-8 byte by byte across reads and fragments, and puts
/// fragments together. After a violation it keeps framing the input, discarding data frames,
/// so that the peer's close frame still comes out and the close handshake completes cleanly
/// (no reset while the peer is still sending an oversized payload).
struct WebSocketFrameParser {
    enum Output {
        /// A whole message (FIN set, unmasked, fragments joined) or a control frame (unmasked).
        case frame(WebSocketFrame)
        /// Close with this code; from now on only control frames come out.
        case violation(WebSocketViolation)
        case needMoreData
    }

    private struct Header {
        var fin: Bool
        var reservedBits: Bool
        var opcode: UInt8
        var mask: WebSocketMaskingKey?
        var length: Int
        var isControl: Bool { opcode & 0x8 != 0 }
    }

    /// A text or binary message whose frames are arriving.
    private struct Message {
        var isText: Bool
        var data: ByteBuffer?
        var utf8 = UTF8Validator()
        var size: Int { data?.readableBytes ?? 0 }
    }

    let limits: MessageLimits
    private var header: Header?
    private var message: Message?
    /// Payload bytes of the current text frame already validated (while the frame is incomplete).
    private var checked = 0
    /// Bytes still to discard: the payload of a frame that broke a rule.
    private var skip = 0
    /// Set after a violation: data frames are discarded, control frames still come out.
    private(set) var failed = false

    init(limits: MessageLimits) {
        self.limits = limits
    }

    /// True while a message is partly received: a data frame's payload or a fragmented
    /// message is incomplete (the reader's message deadline runs meanwhile).
    var messageInProgress: Bool {
        !failed && (message != nil || header.map { !$0.isControl } ?? false)
    }

    /// Gives up on the message in progress (its deadline passed).
    mutating func abandon(_ violation: WebSocketViolation) -> WebSocketViolation {
        fail(violation, discarding: header?.length ?? 0)
    }

    /// The next frame, violation or `.needMoreData`, consuming what it used from `buffer`.
    mutating func next(_ buffer: inout ByteBuffer) -> Output {
        while true {
            if skip > 0 {
                let count = min(skip, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: count)
                skip -= count
                if skip > 0 { return .needMoreData }
            }
            if header == nil {
                switch Self.parseHeader(&buffer) {
                case .needMoreData: return .needMoreData
                case .unreadable:
                    // A 64-bit length with its top bit set: nothing after it can be framed.
                    return .violation(fail(WebSocketViolation(code: .protocolError, reason: "invalid frame length"), discarding: Int.max))
                case .header(let parsed) where failed:
                    // Only the close handshake is left: control frames still count, the rest is discarded.
                    guard parsed.isControl, parsed.length <= 125 else {
                        skip = parsed.length
                        continue
                    }
                    header = parsed
                case .header(let parsed):
                    if let violation = accept(parsed) { return .violation(violation) }
                    header = parsed
                }
            }
            guard let current = header else { continue }
            if let violation = checkPartialText(current, buffer) { return .violation(violation) }
            guard buffer.readableBytes >= current.length, var payload = buffer.readSlice(length: current.length) else {
                return .needMoreData
            }
            header = nil
            if let mask = current.mask { payload.webSocketUnmask(mask) }
            if current.isControl {
                return .frame(WebSocketFrame(fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: current.opcode)!, data: payload))
            }
            if let output = append(payload, fin: current.fin) { return output }
        }
    }

    /// The checks a header must pass before its payload is read; nil when it passes.
    private mutating func accept(_ header: Header) -> WebSocketViolation? {
        func violation(_ code: CloseCode, _ reason: String) -> WebSocketViolation {
            fail(WebSocketViolation(code: code, reason: reason), discarding: header.length)
        }
        // No extension is negotiated, so no reserved bit may be set (RFC 6455 5.2).
        guard !header.reservedBits else { return violation(.protocolError, "reserved bits set") }
        guard header.mask != nil else { return violation(.protocolError, "client frames must be masked") }
        switch header.opcode {
        case 0x8, 0x9, 0xA:
            guard header.fin else { return violation(.protocolError, "fragmented control frame") }
            guard header.length <= 125 else { return violation(.protocolError, "control frame over 125 bytes") }
            return nil
        case 0x0:
            guard let message else { return violation(.protocolError, "continuation without a message") }
            return checkSize(header, isText: message.isText, sofar: message.size).map { violation(.messageTooBig, $0) }
        case 0x1, 0x2:
            guard message == nil else { return violation(.protocolError, "new message before the last one ended") }
            let isText = header.opcode == 0x1
            if let reason = checkSize(header, isText: isText, sofar: 0) { return violation(.messageTooBig, reason) }
            message = Message(isText: isText)
            return nil
        default:
            return violation(.protocolError, "reserved opcode")
        }
    }

    private func checkSize(_ header: Header, isText: Bool, sofar: Int) -> String? {
        let limit = isText ? limits.text : limits.binary
        // Compared without adding, which could overflow for a length near Int.max.
        guard header.length > limit - sofar else { return nil }
        return "\(isText ? "text" : "binary") message over \(limit) bytes"
    }

    /// Validates the text payload that has arrived of an incomplete frame, so that bad UTF-8
    /// fails before the rest of the frame comes.
    private mutating func checkPartialText(_ header: Header, _ buffer: ByteBuffer) -> WebSocketViolation? {
        guard !header.isControl, message?.isText == true, buffer.readableBytes < header.length, buffer.readableBytes > checked else {
            return nil
        }
        let end = buffer.readableBytes
        guard var slice = buffer.getSlice(at: buffer.readerIndex + checked, length: end - checked) else { return nil }
        if let mask = header.mask { slice.webSocketUnmask(mask, indexOffset: checked) }
        checked = end
        guard message!.utf8.consume(slice) else {
            return fail(WebSocketViolation(code: .invalidPayload, reason: "text is not UTF-8"), discarding: header.length)
        }
        return nil
    }

    /// Adds a data frame's payload to the message; the message when it is complete.
    private mutating func append(_ payload: ByteBuffer, fin: Bool) -> Output? {
        guard var current = message else { return nil }
        if current.isText {
            let alreadyChecked = checked
            checked = 0
            let valid = payload.withUnsafeReadableBytes { bytes in
                current.utf8.consume(UnsafeRawBufferPointer(rebasing: bytes[min(alreadyChecked, bytes.count)...]))
            }
            guard valid, !fin || current.utf8.isComplete else {
                return .violation(fail(WebSocketViolation(code: .invalidPayload, reason: "text is not UTF-8"), discarding: 0))
            }
        }
        if current.data == nil {
            current.data = payload
        } else {
            var payload = payload
            current.data!.writeBuffer(&payload)
        }
        guard fin else {
            message = current
            return nil
        }
        message = nil
        return .frame(WebSocketFrame(fin: true, opcode: current.isText ? .text : .binary, data: current.data!))
    }

    private mutating func fail(_ violation: WebSocketViolation, discarding length: Int) -> WebSocketViolation {
        failed = true
        message = nil
        header = nil
        checked = 0
        skip = length
        return violation
    }

    private enum HeaderResult {
        case needMoreData
        case unreadable
        case header(Header)
    }

    /// Reads a frame header once all of it has arrived (2 to 14 bytes).
    private static func parseHeader(_ buffer: inout ByteBuffer) -> HeaderResult {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self), let second = buffer.getInteger(at: start + 1, as: UInt8.self) else {
            return .needMoreData
        }
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return .needMoreData }
            length = Int(extended)
            offset = 4
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return .needMoreData }
            guard extended <= UInt64(Int.max) else { return .unreadable }
            length = Int(extended)
            offset = 10
        }
        var mask: WebSocketMaskingKey?
        if second & 0x80 != 0 {
            guard let bytes = buffer.getBytes(at: start + offset, length: 4) else { return .needMoreData }
            mask = WebSocketMaskingKey(bytes)
            offset += 4
        }
        buffer.moveReaderIndex(forwardBy: offset)
        return .header(Header(fin: first & 0x80 != 0, reservedBits: first & 0x70 != 0, opcode: first & 0x0F, mask: mask, length: length))
    }
}

/// The decoder of an upgraded connection: `WebSocketFrameParser` over the bytes read, plus the
/// deadline of a message in progress (PROTOCOL.md 10: a fragmented message must be complete
/// within `fragmentTimeout`; a frame whose payload stalls counts as well). Frames go on to
/// `WebSocketSession`; violations go as a `WebSocketViolation` user event, in order with them.
final class WebSocketFrameReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = WebSocketFrame

    private var parser: WebSocketFrameParser
    private let messageTimeout: TimeAmount
    /// Bytes read but not yet framed.
    private var unread: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(limits: MessageLimits, messageTimeout: Duration) {
        parser = WebSocketFrameParser(limits: limits)
        self.messageTimeout = TimeAmount(messageTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        self.context = nil
        unread = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var earlier = unread {
            unread = nil
            earlier.writeBuffer(&incoming)
            buffer = earlier
        } else {
            buffer = incoming
        }
        parsing: while true {
            switch parser.next(&buffer) {
            case .frame(let frame): context.fireChannelRead(wrapInboundOut(frame))
            case .violation(let violation): context.fireUserInboundEventTriggered(violation)
            case .needMoreData: break parsing
            }
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            unread = buffer
        }
        updateDeadline(context)
    }

    private func updateDeadline(_ context: ChannelHandlerContext) {
        if parser.messageInProgress {
            guard deadline == nil else { return }
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: messageTimeout) { loopBound.value.messageTimedOut() }
        } else if let scheduled = deadline {
            scheduled.cancel()
            deadline = nil
        }
    }

    private func messageTimedOut() {
        deadline = nil
        guard let context, parser.messageInProgress else { return }
        let seconds = messageTimeout.nanoseconds / 1_000_000_000
        context.fireUserInboundEventTriggered(
            parser.abandon(WebSocketViolation(code: .policyViolation, reason: "message not complete within \(seconds) s")))
        // Bytes of the abandoned frame already read are discarded; a close frame behind them still counts.
        if var buffer = unread {
            unread = nil
            parsing: while true {
                switch parser.next(&buffer) {
                case .frame(let frame): context.fireChannelRead(wrapInboundOut(frame))
                case .violation, .needMoreData: break parsing
                }
            }
            if buffer.readableBytes > 0 { unread = buffer }
        }
    }
}
