import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `ListeningRoom` like `LiveEventDriver` runs an event: one task, inputs in arrival
/// order, outputs performed in order. The room leaves memory when its last member leaves; its
/// state is in the store by then.
final class ListeningRoomDriver: Sendable {
    enum Message: Sendable {
        case input(ListeningRoom.Input, connection: ClientConnection?)
        case shutdown
    }

    let roomID: String
    private let messages: AsyncStream<Message>
    private let continuation: AsyncStream<Message>.Continuation
    /// `submit` and the idle check share this lock: the driver stops only when no input is
    /// waiting, so no member can be handed to a driver that is going away.
    private let gate = NIOLockedValueBox((over: false, pending: 0))

    init(roomID: String) {
        self.roomID = roomID
        (messages, continuation) = AsyncStream.makeStream(of: Message.self)
    }

    /// Queues an input; false once the driver has stopped (the caller asks the registry again).
    @discardableResult
    func submit(_ input: ListeningRoom.Input, connection: ClientConnection? = nil) -> Bool {
        gate.withLockedValue { gate in
            guard !gate.over else { return false }
            guard case .enqueued = continuation.yield(.input(input, connection: connection)) else { return false }
            gate.pending += 1
            return true
        }
    }

    func shutdown() { continuation.yield(.shutdown) }

    struct Services: Sendable {
        let writer: StoreWriter
        let metrics: ServerMetrics
        /// Called when the room empties and the driver stops.
        let onIdle: @Sendable (String) async -> Void
    }

    func run(room initial: ListeningRoom, services: Services) async {
        var room = initial
        var members = ConnectionGroups()
        for await message in messages {
            let now = Timestamp.now()
            switch message {
            case .input(let input, let connection):
                gate.withLockedValue { $0.pending -= 1 }
                if let connection { members.insert(connection) }
                room.handle(input, now: now)
                if case .leave(let id) = input { members.remove(id) }
            case .shutdown:
                members.broadcast(WebSocketWire.text(LiveServerMessage.serverShutdown))
                for connection in members.all { connection.close(.goingAway, reason: "server_shutdown") }
                members = ConnectionGroups()
                gate.withLockedValue { $0.over = true }
                continuation.finish()
                continue
            }
            await perform(&room, &members, services, now: now)
            // Stop when nobody is left and nothing more can arrive for this instance.
            let idle = members.count == 0 && room.memberCount == 0 && gate.withLockedValue { gate in
                guard !gate.over, gate.pending == 0 else { return false }
                gate.over = true
                return true
            }
            if idle {
                continuation.finish()
                await services.onIdle(roomID)
            }
        }
    }

    private func perform(_ room: inout ListeningRoom, _ members: inout ConnectionGroups, _ services: Services, now: Timestamp) async {
        var records: [RoomRecord] = []
        while let output = room.pollOutput() {
            switch output {
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
            case .persistState(let snapshot):
                records.append(.state(roomID: roomID, StoredRoomState(snapshot), at: now.milliseconds))
            case .persistChat(let entry):
                records.append(.chat(StoredRoomChat(roomID: roomID, entry)))
            case .persistClosed:
                records.append(.closed(roomID: roomID, at: now.milliseconds))
            case .awaitPersistence:
                services.writer.enqueue(rooms: records)
                records.removeAll()
                await services.writer.flush()
            }
        }
        services.writer.enqueue(rooms: records)
    }
}
