import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `ListeningRoom` like `LiveEventDriver` runs an event: one task, each connection's
/// inputs in arrival order, outputs performed in order. The room leaves memory when its last
/// member here leaves; its state is in the store by then.
///
/// Inputs wait in a bounded `RoomInbox` (commands per connection and per room), served
/// round-robin across connections, so members who flood a room fill only their own share and
/// an honest member's message is handled after at most one message of each other busy member.
///
/// The store is the room's sequencer across nodes (issue 15; docs/architecture.md, "Listening
/// rooms across nodes"). The driver takes up to ``batchLimit`` inputs at a time and handles them
/// in one turn of the room, one transaction: it waits for the room's turn, first replays what
/// other nodes stored since its last entry (so every command is checked against the latest
/// state), then runs the batch, and stores the room's changes and the events it published with
/// the next sequence numbers (group commit). Nothing of the batch reaches a member before the
/// commit; then everything goes out in order. The engine runs on a copy, adopted once the turn
/// is committed, because the store may run the turn again. Another node's events arrive through
/// ``notify(_:)``: the driver reads the log past its last entry and replays it.
final class ListeningRoomDriver: Sendable {
    private struct Inbox {
        var queue: RoomInbox<(ListeningRoom.Input, ClientConnection?)>
        /// The room's last entry this driver has applied, and the room's incarnation.
        var known: RoomLogPosition
        /// The log holds entries past `knownSeq` (another node announced them).
        var behind = false
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

    /// Most inputs handled in one turn of the room (one transaction).
    static let batchLimit = 64

    let roomID: String
    /// `submit` and the idle check share this lock: the driver stops only when no input is
    /// waiting, so no member can be handed to a driver that is going away.
    private let inbox: NIOLockedValueBox<Inbox>
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// `position` is the room's position in the state the driver starts from.
    init(roomID: String, position: RoomLogPosition, limits: RoomLimits) {
        self.roomID = roomID
        inbox = NIOLockedValueBox(Inbox(queue: RoomInbox(perConnectionLimit: limits.inboxPerConnection, limit: limits.inboxLimit),
                                        known: position))
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
        case .replay, .restore: preconditionFailure("the driver reads the room's log itself")
        }
        let submission: Submission = inbox.withLockedValue { inbox in
            guard !inbox.over else { return .stopped }
            return inbox.queue.push((input, connection), from: source, isCommand: isCommand) ? .accepted : .refused
        }
        if case .accepted = submission { wake.yield() }
        return submission
    }

    /// The room's log reached `position` (a notification): catch up unless this driver is there.
    /// A position without an incarnation (nil) only compares numbers.
    func notify(_ position: RoomLogPosition) {
        let behind = inbox.withLockedValue { inbox in
            let otherRoom = position.createdAt != nil && position.createdAt != inbox.known.createdAt
            guard !inbox.over, position.seq > inbox.known.seq || otherRoom else { return false }
            inbox.behind = true
            return true
        }
        if behind { wake.yield() }
    }

    func shutdown() {
        inbox.withLockedValue { $0.shutdown = true }
        wake.yield()
    }

    struct Services: Sendable {
        let store: any RoomStore
        let metrics: ServerMetrics
        let logger: Logger
        /// How much of each room's log is kept.
        let logBound: RoomLogBound
        /// Called when the room empties and the driver stops.
        let onIdle: @Sendable (String) async -> Void
    }

    /// Something done to the members here once the turn that decided it is committed.
    private enum Action: Sendable {
        case send(JSONValue, ListeningRoom.Recipients)
        case close(ConnectionID, CloseCode)
        case admit(ClientConnection)
        case remove(ConnectionID)
    }

    /// What a turn decided: the room after it and what the members here see, in order.
    private struct Outcome: Sendable {
        var room: ListeningRoom
        var actions: [Action]
        /// How many entries the turn appends.
        var published: Int
    }

    func run(room initial: ListeningRoom, services: Services) async {
        var room = initial
        var members = ConnectionGroups()
        for await _ in wakeUps {
            while true {
                let (batch, shutdown, behind) = inbox.withLockedValue { inbox in
                    var batch: [(ListeningRoom.Input, ClientConnection?)] = []
                    while batch.count < Self.batchLimit, let next = inbox.queue.pop() { batch.append(next) }
                    defer { inbox.behind = false }
                    return (batch, inbox.shutdown, inbox.behind)
                }
                if shutdown {
                    members.broadcast(WebSocketWire.text(LiveServerMessage.serverShutdown))
                    for connection in members.all { connection.close(.goingAway, reason: "server_shutdown") }
                    inbox.withLockedValue { $0.over = true }
                    wake.finish()
                    return
                }
                if batch.isEmpty && !behind { break }
                await turn(batch, &room, &members, services)
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

    /// One turn of the room: what the log holds past this driver's last entry, then the batch.
    /// A batch with a command takes the room's turn in the store and stores what it publishes;
    /// one of joins and leaves only (which publish nothing) just reads the log.
    private func turn(_ batch: [(ListeningRoom.Input, ClientConnection?)], _ room: inout ListeningRoom,
                      _ members: inout ConnectionGroups, _ services: Services) async {
        let now = Timestamp.now()
        let roomID = self.roomID
        let engine = room
        let known = inbox.withLockedValue { $0.known }
        let logger = services.logger
        @Sendable func decide(_ tail: RoomLogTail) -> (RoomLogAppend, Outcome) {
            var room = engine
            var actions: [Action] = []
            var append = RoomLogAppend()
            func drain() {
                while let output = room.pollOutput() {
                    switch output {
                    case .send(let message, let recipients): actions.append(.send(message, recipients))
                    case .close(let id, let code): actions.append(.close(id, code))
                    case .publish(let event):
                        if let record = RoomRecord(event.effect, roomID: roomID, at: now) { append.records.append(record) }
                        append.entries.append(event.json.jsonText)
                        // Sent once committed, like everything the turn decided.
                        actions.append(.send(event.message, .all))
                    }
                }
            }
            if let reload = tail.reload {
                room.handle(.restore(reload.room.map { RoomSnapshot($0.state, chat: reload.chat) } ?? RoomSnapshot()), now: now)
                drain()
            }
            for entry in tail.entries {
                guard let json = try? JSONParser.parse(entry.entryJSON), let event = RoomEvent(json: json) else {
                    logger.error("unreadable room log entry", metadata: ["room": "\(roomID)", "seq": "\(entry.seq)"])
                    continue
                }
                room.handle(.replay(event), now: now)
                drain()
            }
            for (input, connection) in batch {
                if let connection { actions.append(.admit(connection)) }
                room.handle(input, now: now)
                drain()
                if case .leave(let id) = input { actions.append(.remove(id)) }
            }
            return (append, Outcome(room: room, actions: actions, published: append.entries.count))
        }

        let hasCommand = batch.contains { if case .command = $0.0 { true } else { false } }
        let outcome: Outcome
        let position: RoomLogPosition
        do {
            if hasCommand {
                let turn = try await services.store.sequenceRoom(
                    id: roomID, after: known, at: now.milliseconds, bound: services.logBound,
                    chatLimit: engine.chatHistoryLimit, decide)
                outcome = turn.decision
                position = turn.position
                services.metrics.storeWrites.increment(by: Int64(outcome.published))
            } else {
                let tail = try await services.store.roomLog(id: roomID, after: known, chatLimit: engine.chatHistoryLimit)
                (_, outcome) = decide(tail)
                position = tail.position
            }
        } catch {
            services.metrics.storeErrors.increment()
            logger.error("room turn failed", metadata: ["room": "\(roomID)", "inputs": "\(batch.count)", "error": "\(String(reflecting: error))"])
            // Nothing was stored, so nothing is published: joins and leaves still happen, and
            // each command's sender learns that it was dropped.
            var fallback = engine
            var actions: [Action] = []
            for (input, connection) in batch {
                if let connection { actions.append(.admit(connection)) }
                if case .command(let id, let command) = input {
                    let refusal = ProtocolError(.serverBusy, "The room could not store this; try again.",
                                                details: ["type": .string(command.type), "reason": "store"])
                    actions.append(.send(refusal.json, .one(id)))
                    continue
                }
                fallback.handle(input, now: now)
                while let output = fallback.pollOutput() {
                    if case .send(let message, let recipients) = output { actions.append(.send(message, recipients)) }
                }
                if case .leave(let id) = input { actions.append(.remove(id)) }
            }
            room = fallback
            for action in actions { perform(action, &members, services) }
            return
        }
        room = outcome.room
        // Only this loop moves it; after a reload of a room used again its number may go back.
        inbox.withLockedValue { $0.known = position }
        for action in outcome.actions { perform(action, &members, services) }
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
