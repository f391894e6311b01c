/// One change to a listening room, to be persisted in order by ``RoomStore/writeRooms(_:)``.
///
/// Every record but `.state` costs the store a few statements however large the room is: a
/// room's state is kept as rows (queued songs, votes, current song, playback), not as one
/// document rewritten on every change.
public enum RoomRecord: Sendable, Equatable {
    /// The room's whole live state, written over what is stored (only the last one per room in a
    /// batch needs writing). Creates the room without a host if it does not exist.
    case state(roomID: String, StoredRoomState, at: EpochMillis)
    /// A song joins the queue with its first voters (none for autoplay). Creates the room
    /// without a host if it does not exist.
    case songQueued(roomID: String, StoredSong, at: EpochMillis)
    /// One more vote for a queued song, after its earlier votes. Creates the room if needed.
    case voted(roomID: String, songID: String, voter: String, at: EpochMillis)
    /// The current song is now `songID` (nil: none); that song leaves the queue with its votes.
    /// Creates the room if needed.
    case songChanged(roomID: String, songID: String?, at: EpochMillis)
    /// The playback as it is now. Creates the room if needed.
    case playback(roomID: String, StoredPlayback, at: EpochMillis)
    /// A chat message was sent. The store assigns its id; any `id` set on the message is ignored.
    /// Creates the room without a host if it does not exist.
    case chat(StoredRoomChat)
    /// room_closed: live state and chat history cleared (chat rows may be kept but must not come
    /// back in roomChat), closedAt set. Closing a room that was never stored changes nothing.
    case closed(roomID: String, at: EpochMillis)
}
