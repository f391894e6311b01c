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
    }

    /// Who receives a message.
    public enum Recipients: Sendable, Hashable {
        case one(ConnectionID)
        case all
    }

    /// What the driver must do, in order.
    public enum Output: Sendable, Hashable {
        case send(JSONValue, to: Recipients)
        case close(ConnectionID, CloseCode)
        /// Persist one change of the room's state (queue entry, vote, current song, playback).
        case persistChange(RoomChange)
        case persistChat(RoomChatEntry)
        /// `room_closed`: persist that the live state is gone.
        case persistClosed
        /// Do not perform the outputs that follow until the records so far are durable.
        case awaitPersistence
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
        state = restored
        // A guest votes once per connection, and every connection of a stored room is closed by
        // the time it is loaded again; connection numbers restart with the process, so a guest's
        // key would otherwise match a new, unrelated connection after a restart.
        for index in state.queue.indices {
            state.queue[index].voters = state.queue[index].voters.map {
                $0.hasPrefix(RoomMember.guestVoterPrefix) ? RoomMember.closedGuestVoterPrefix + $0.dropFirst(RoomMember.guestVoterPrefix.count) : $0
            }
        }
        state.sortQueue()
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
        }
    }

    /// The next thing to do, or nil.
    public mutating func pollOutput() -> Output? { outputs.poll() }

    mutating func emit(_ output: Output) { outputs.append(output) }
}
