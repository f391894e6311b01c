import AirwaveProtocol

/// The state machine of one listening room (PROTOCOL.md section 3): queue and votes, current
/// song, playback, chat, host-only actions and closing. Sans-IO like `LiveEvent`: inputs in,
/// outputs polled, time as an input.
public struct ListeningRoom: Sendable {
    /// Everything that can happen to a room.
    public enum Input: Sendable, Hashable {
        case join(ConnectionID, RoomMember)
        case leave(ConnectionID)
        case command(ConnectionID, RoomCommand)
        /// An event the room's log holds that this room has not applied (another node published
        /// it): applied as it is, without checking it again (it was checked against the state it
        /// follows), and relayed to the members here.
        case replay(RoomEvent)
        /// The room's state as stored, replacing this one (the log no longer holds every event
        /// since this room's last one): every member here receives the new `room_state`.
        case restore(RoomSnapshot)
    }

    /// Who receives a message.
    public enum Recipients: Sendable, Hashable {
        case one(ConnectionID)
        case all
    }

    /// What the driver must do, in order.
    public enum Output: Sendable, Hashable {
        /// Send to members connected here, now (after the outputs before it).
        case send(JSONValue, to: Recipients)
        case close(ConnectionID, CloseCode)
        /// Store the event in the room's log (and its effect in the room's state), then relay its
        /// message to every member, here and on every other node: nothing after it happens before
        /// it is stored.
        case publish(RoomEvent)
    }

    public let roomID: String
    /// Set for rooms created through the REST API: only this user's verified connections may
    /// change the song or the playback, or close the room.
    public let hostUserID: String?
    public let chatHistoryLimit: Int
    /// Most songs in the queue (PROTOCOL.md 10); a new song beyond it is refused with `queue_full`.
    public let queueLimit: Int
    public internal(set) var state: RoomSnapshot
    var members: [ConnectionID: RoomMember] = [:]
    var outputs = OutputQueue<Output>()

    /// The default of ``queueLimit`` (PROTOCOL.md 10).
    public static let defaultQueueLimit = 500

    public init(roomID: String, hostUserID: String?, restored: RoomSnapshot = RoomSnapshot(), chatHistoryLimit: Int = 100,
                queueLimit: Int = ListeningRoom.defaultQueueLimit) {
        self.roomID = roomID
        self.hostUserID = hostUserID
        self.chatHistoryLimit = chatHistoryLimit
        self.queueLimit = queueLimit
        state = Self.loaded(restored)
    }

    /// A stored state as the room uses it. Guest voter keys written before they named their
    /// process (`connection:<n>`) are marked closed: connection numbers restart with the process,
    /// so such a key would otherwise match a new, unrelated connection. Keys that name their
    /// process (`connection:<instance>:<n>`) stay, as their connections may still be open on
    /// another node.
    static func loaded(_ stored: RoomSnapshot) -> RoomSnapshot {
        var state = stored
        for index in state.queue.indices {
            state.queue[index].voters = state.queue[index].voters.map { key in
                guard key.hasPrefix(RoomMember.guestVoterPrefix) else { return key }
                let rest = key.dropFirst(RoomMember.guestVoterPrefix.count)
                return rest.allSatisfy(\.isNumber) ? RoomMember.closedGuestVoterPrefix + rest : key
            }
        }
        state.sortQueue()
        return state
    }

    /// Connections in the room.
    public var memberCount: Int { members.count }

    public mutating func handle(_ input: Input, now: Timestamp) {
        switch input {
        case .join(let connection, let member):
            members[connection] = member
            emit(.send(roomStateMessage, to: .one(connection)))
        case .leave(let connection):
            members[connection] = nil
        case .command(let connection, let command):
            guard let member = members[connection] else { return }
            handle(command, from: connection, member: member, now: now)
        case .replay(let event):
            apply(event)
            emit(.send(event.message, to: .all))
            if event.effect == .closed { closeMembers() }
        case .restore(let snapshot):
            state = Self.loaded(snapshot)
            emit(.send(roomStateMessage, to: .all))
        }
    }

    /// The one place an event changes the state, whether this room published it or replays it.
    mutating func apply(_ event: RoomEvent) {
        switch event.effect {
        case .none: break
        case .change(let change): state.apply(change)
        case .chat(let entry):
            state.chat.append(entry)
            if state.chat.count > chatHistoryLimit { state.chat.removeFirst(state.chat.count - chatHistoryLimit) }
        case .closed: state = RoomSnapshot()
        }
    }

    /// `room_closed`: every member here is closed normally and leaves.
    mutating func closeMembers() {
        for connection in members.keys.sorted() { emit(.close(connection, .normal)) }
        members.removeAll()
    }

    /// The next thing to do, or nil.
    public mutating func pollOutput() -> Output? { outputs.poll() }

    mutating func emit(_ output: Output) { outputs.append(output) }
}
