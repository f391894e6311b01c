/// One change to a listening room, to be persisted in order by ``RoomStore/writeRooms(_:)``.
public enum RoomRecord: Sendable, Equatable {
    /// The room's whole live state after a change (only the last one per room in a batch needs
    /// writing). Creates the room without a host if it does not exist.
    case state(roomID: String, StoredRoomState, at: EpochMillis)
    /// A chat message was sent. The store assigns its id; any `id` set on the message is ignored.
    /// Creates the room without a host if it does not exist.
    case chat(StoredRoomChat)
    /// room_closed: live state and chat history cleared (chat rows may be kept but must not come
    /// back in roomChat), closedAt set. Closing a room that was never stored changes nothing.
    case closed(roomID: String, at: EpochMillis)
}
