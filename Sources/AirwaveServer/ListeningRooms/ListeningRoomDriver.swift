import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `ListeningRoom` like `LiveEventDriver` runs an event: one task, each connection's
/// inputs in arrival order, outputs performed in order. The room leaves memory when its last
/// member leaves; its state is in the store by then.
///
/// Inputs wait in a bounded `RoomInbox` (commands per connection and per room), served
/// round-robin across connections, so members who flood a room fill only their own share and
/// an honest member's message is handled after at most one message of each other busy member.
/// The driver takes up to ``batchLimit`` inputs at a time and stores all their changes with one
/// flush before anything that depends on them is sent (group commit within the room).
final class ListeningRoomDriver: Sendable {
    private struct Inbox {
        var queue: RoomInbox<(ListeningRoom.Input, ClientConnection?)>
        /// The driver stopped (idle or shut down): nothing more is accepted.
        var over = false
        var shutdown = false
    }

    /// What ``submit(_:connection:)`` did.
    enum Submission {
        case accepted
        /// A command over the sender's or the room's share of the inbox: dropped.
        case refused
        /// The driver has stopped (the caller asks the registry again).
        case stopped
    }

    /// Most inputs handled between two flushes.
    static let batchLimit = 64

    let roomID: String
    /// `submit` and the idle check share this lock: the driver stops only when no input is
    /// waiting, so no member can be handed to a driver that is going away.
    private let inbox: NIOLockedValueBox<Inbox>
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(roomID: String, limits: RoomLimits) {
        self.roomID = roomID
        inbox = NIOLockedValueBox(Inbox(queue: RoomInbox(perConnectionLimit: limits.inboxPerConnection, limit: limits.inboxLimit)))
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an input. Commands may be refused when the inbox is full; joins and leaves never.
    @discardableResult
    func submit(_ input: ListeningRoom.Input, connection: ClientConnection? = nil) -> Submission {
        let source: ConnectionID
        let isCommand: Bool
        switch input {
        case .join(let id, _): (source, isCommand) = (id, false)
        case .leave(let id): (source, isCommand) = (id, false)
        case .command(let id, _): (source, isCommand) = (id, true)
        }
        let submission: Submission = inbox.withLockedValue { inbox in
            guard !inbox.over else { return .stopped }
            return inbox.queue.push((input, connection), from: source, isCommand: isCommand) ? .accepted : .refused
        }
        if case .accepted = submission { wake.yield() }
        return submission
    }

    func shutdown() {
        inbox.withLockedValue { $0.shutdown = true }
        wake.yield()
    }

    struct Services: Sendable {
        let writer: StoreWriter
        let metrics: ServerMetrics
        /// Called when the room empties and the driver stops.
        let onIdle: @Sendable (String) async -> Void
    }

    /// Something a member sees, held back until the changes before it are stored.
    private enum Action {
        case send(JSONValue, ListeningRoom.Recipients)
        case close(ConnectionID, CloseCode)
        case admit(ClientConnection)
        case remove(ConnectionID)
    }

    func run(room initial: ListeningRoom, services: Services) async {
        var room = initial
        var members = ConnectionGroups()
        for await _ in wakeUps {
            while true {
                let (batch, shutdown) = inbox.withLockedValue { inbox in
                    var batch: [(ListeningRoom.Input, ClientConnection?)] = []
                    while batch.count < Self.batchLimit, let next = inbox.queue.pop() { batch.append(next) }
                    return (batch, inbox.shutdown)
                }
                if shutdown {
                    members.broadcast(WebSocketWire.text(LiveServerMessage.serverShutdown))
                    for connection in members.all { connection.close(.goingAway, reason: "server_shutdown") }
                    inbox.withLockedValue { $0.over = true }
                    wake.finish()
                    return
                }
                if batch.isEmpty { break }
                await perform(batch, &room, &members, services)
                // Stop when nobody is left and nothing more can arrive for this instance.
                let idle = members.count == 0 && room.memberCount == 0 && inbox.withLockedValue { inbox in
                    guard !inbox.over, inbox.queue.isEmpty else { return false }
                    inbox.over = true
                    return true
                }
                if idle {
                    wake.finish()
                    await services.onIdle(roomID)
                    return
                }
            }
        }
    }

    /// Handles a batch of inputs. What members see goes out at once until the first change that
    /// must be stored; from there on it waits, in order, for one flush of the batch's records.
    private func perform(_ batch: [(ListeningRoom.Input, ClientConnection?)], _ room: inout ListeningRoom,
                         _ members: inout ConnectionGroups, _ services: Services) async {
        var records: [RoomRecord] = []
        var held: [Action] = []
        var holding = false
        func act(_ action: Action, _ members: inout ConnectionGroups) {
            guard !holding else { return held.append(action) }
            perform(action, &members, services)
        }
        for (input, connection) in batch {
            let now = Timestamp.now()
            if let connection { act(.admit(connection), &members) }
            room.handle(input, now: now)
            while let output = room.pollOutput() {
                switch output {
                case .send(let message, let recipients): act(.send(message, recipients), &members)
                case .close(let id, let code): act(.close(id, code), &members)
                case .persistChange(let change): records.append(RoomRecord(change, roomID: roomID, at: now))
                case .persistChat(let entry): records.append(.chat(StoredRoomChat(roomID: roomID, entry)))
                case .persistClosed: records.append(.closed(roomID: roomID, at: now.milliseconds))
                case .awaitPersistence: holding = true
                }
            }
            if case .leave(let id) = input { act(.remove(id), &members) }
        }
        services.writer.enqueue(rooms: records)
        guard holding else { return }
        await services.writer.flush()
        for action in held { perform(action, &members, services) }
    }

    private func perform(_ action: Action, _ members: inout ConnectionGroups, _ services: Services) {
        switch action {
        case .send(let message, let recipients):
            let frame = WebSocketWire.text(message)
            let count: Int
            switch recipients {
            case .one(let id): count = members.send(frame, class: .control, to: id) ? 1 : 0
            case .all: count = members.broadcast(frame)
            }
            services.metrics.messageOut(type: message["type"]?.stringValue ?? "unknown", count: count)
            if message["type"] == "error", let code = message["code"]?.stringValue { services.metrics.error(code: code) }
        case .close(let id, let code):
            members.remove(id)?.close(code)
        case .admit(let connection):
            members.insert(connection)
        case .remove(let id):
            members.remove(id)
        }
    }
}
