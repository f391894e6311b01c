import AirwaveProtocol
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Counts open client connections, in all and per IP address, and decides whether a new one
/// may stay (PROTOCOL.md 10: `--max-connections`, `--max-connections-per-ip`). Pure state: the
/// caller applies the decision.
struct ConnectionCounts {
    enum Decision: Equatable {
        case admit
        /// Over a cap: answer `503 server_busy`, then close.
        case refuse
        /// Over a cap and too many refusals are still being answered: close at once.
        case drop
    }

    let maxConnections: Int
    let maxPerIP: Int
    /// Refused sockets being answered at once; each holds a descriptor for a moment.
    let maxAnswering: Int
    private(set) var open = 0
    private(set) var answering = 0
    private var perIP: [String: Int] = [:]

    init(maxConnections: Int, maxPerIP: Int, maxAnswering: Int) {
        self.maxConnections = maxConnections
        self.maxPerIP = maxPerIP
        self.maxAnswering = maxAnswering
    }

    /// A connection from `ip` arrived; on `.admit` it counts until `closed(ip:)`, on `.refuse`
    /// until `answered()`.
    mutating func arrived(ip: String) -> Decision {
        let fromIP = perIP[ip, default: 0]
        guard open >= maxConnections || fromIP >= maxPerIP else {
            open += 1
            perIP[ip] = fromIP + 1
            return .admit
        }
        guard answering < maxAnswering else { return .drop }
        answering += 1
        return .refuse
    }

    mutating func closed(ip: String) {
        open -= 1
        let left = perIP[ip, default: 1] - 1
        perIP[ip] = left > 0 ? left : nil
    }

    mutating func answered() {
        answering -= 1
    }

    /// Connections open from `ip`.
    func count(ip: String) -> Int { perIP[ip, default: 0] }
}

/// The process-wide `ConnectionCounts`, shared by every event loop.
final class ConnectionGate: Sendable {
    private let counts: NIOLockedValueBox<ConnectionCounts>
    /// The cap in force: the configured one, lowered to fit the open-file limit.
    let maxConnections: Int

    init(limits: ConnectionLimits, openFileLimit: Int? = ConnectionGate.openFileLimit()) {
        let (effective, answering) = Self.fit(limits.maxConnections, openFileLimit: openFileLimit)
        maxConnections = effective
        counts = NIOLockedValueBox(ConnectionCounts(maxConnections: effective, maxPerIP: limits.maxConnectionsPerIP, maxAnswering: answering))
    }

    /// Descriptors kept for everything that is not a client connection: the listening and
    /// UDP sockets, the database, recordings being written, event-loop internals, outgoing
    /// HTTP (JWKS, user lookup) and the refusals being answered.
    static func reserve(openFileLimit: Int) -> Int { max(64, openFileLimit / 8) }

    /// The connection cap that keeps the process below `openFileLimit` (so `accept` never fails
    /// with EMFILE), and how many refusals may be answered at once within the reserve.
    static func fit(_ configured: Int, openFileLimit: Int?) -> (maxConnections: Int, answering: Int) {
        guard let openFileLimit else { return (configured, 64) }
        let reserve = reserve(openFileLimit: openFileLimit)
        let answering = max(1, reserve / 4)
        return (max(1, min(configured, openFileLimit - reserve)), answering)
    }

    /// The soft RLIMIT_NOFILE (nil if unlimited or unknown).
    static func openFileLimit() -> Int? {
        var limit = rlimit()
        #if os(Linux)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(Int32.max) else { return nil }  // else unlimited
        return Int(clamping: limit.rlim_cur)
    }

    func arrived(ip: String) -> ConnectionCounts.Decision {
        counts.withLockedValue { $0.arrived(ip: ip) }
    }

    func closed(ip: String) {
        counts.withLockedValue { $0.closed(ip: ip) }
    }

    func answered() {
        counts.withLockedValue { $0.answered() }
    }

    /// Open connections now (tests, metrics).
    var open: Int { counts.withLockedValue { $0.open } }
}

/// The whole life of a refused connection: `503 server_busy` written at once (before its
/// request is read, which costs nothing more), the write side shut, whatever the client still
/// sends read and discarded until it closes or `linger` passes, so the answer is not lost to a
/// reset from unread input.
final class RefusedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let linger: TimeAmount
    private let onClose: @Sendable () -> Void
    private var answered = false

    init(linger: TimeAmount = .seconds(2), onClose: @escaping @Sendable () -> Void) {
        self.linger = linger
        self.onClose = onClose
    }

    static let response: ByteBuffer = {
        var body = ByteBuffer()
        ProtocolError(.serverBusy, "The server has too many connections; try again later.").json.write(into: &body)
        var buffer = ByteBuffer()
        buffer.writeString("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.readableBytes)\r\nConnection: close\r\nRetry-After: 5\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }()

    func handlerAdded(context: ChannelHandlerContext) {
        let onClose = self.onClose
        context.channel.closeFuture.whenComplete { _ in onClose() }
        if context.channel.isActive { answer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        answer(context)
        context.fireChannelActive()
    }

    private func answer(_ context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        let channel = context.channel
        context.writeAndFlush(NIOAny(Self.response)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: linger) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
