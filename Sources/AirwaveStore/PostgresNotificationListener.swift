import Logging
import NIOCore
import PostgresNIO

/// Receives PostgreSQL notifications (`LISTEN`) on a connection of its own, for the changes other
/// nodes announce with ``ClusterStore/notify(channel:payload:)``.
///
/// The connection is reopened whenever it fails (the database restarted, the network dropped):
/// a notification sent meanwhile is lost, so every (re)connection yields
/// ``Notification/listening``: from then on nothing is missed, and the consumer reads again
/// what it follows.
public final class PostgresNotificationListener: Sendable {
    /// What arrives, in the order the database sent it.
    public enum Notification: Sendable, Hashable {
        case message(channel: String, payload: String)
        /// Listening (first, or again after the connection was lost): read the state once more,
        /// since notifications before this one may have been missed.
        case listening
    }

    /// Every notification of the channels; finishes when ``run()`` returns.
    public let notifications: AsyncStream<Notification>
    private let continuation: AsyncStream<Notification>.Continuation
    private let configuration: PostgresConnection.Configuration
    private let channels: [String]
    private let eventLoop: any EventLoop
    private let logger: Logger

    /// Longest wait between two connection attempts.
    static let maximumBackoff: Duration = .seconds(2)

    init(configuration: PostgresConnection.Configuration, channels: [String], eventLoop: any EventLoop, logger: Logger) {
        precondition(channels.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }, "channel names are identifiers")
        self.configuration = configuration
        self.channels = channels
        self.eventLoop = eventLoop
        self.logger = logger
        // Bounded: a consumer that fell this far behind re-reads everything on the next `.listening`.
        (notifications, continuation) = AsyncStream.makeStream(of: Notification.self, bufferingPolicy: .bufferingNewest(4096))
    }

    /// Listens until the task is cancelled, reconnecting after failures.
    public func run() async {
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    on: eventLoop, configuration: configuration, id: 1, logger: logger)
                for channel in channels {
                    connection.addListener(channel: channel) { [continuation] _, notification in
                        continuation.yield(.message(channel: notification.channel, payload: notification.payload))
                    }
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "LISTEN \(channel)"), logger: logger)
                }
                continuation.yield(.listening)
                backoff = .milliseconds(100)
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.close().whenComplete { _ in }
                }
                if Task.isCancelled { break }
                logger.warning("lost the PostgreSQL notification connection; reconnecting")
            } catch {
                logger.debug("cannot listen for PostgreSQL notifications yet", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, Self.maximumBackoff)
        }
        continuation.finish()
    }
}

extension PostgresEventStore {
    /// A listener on `channels` of this store's database (start it with `run()`). Its
    /// connection lives on a loop of its own group, not the store's: PostgresNIO still schedules
    /// on it after the connection closed, and the store's group is shut down right after the
    /// cluster stops (NIO's "Cannot schedule tasks on an EventLoop that has already shut down").
    public func makeNotificationListener(channels: [String], logger: Logger) -> PostgresNotificationListener {
        PostgresNotificationListener(configuration: connectionConfiguration, channels: channels,
                                     eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
    }
}
