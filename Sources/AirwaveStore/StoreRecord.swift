/// One thing that happened, to be persisted in order.
///
/// Records are handed to ``EventStore/write(_:)`` in batches; a batch is applied in order inside
/// one transaction. Records that refer to a participant session identify it by the pair
/// (`eventID`, `connectionID`); see ``EventStore/write(_:)`` for how that pair is resolved.
public enum StoreRecord: Sendable, Equatable {
    /// An event went live. Writing it twice for the same `eventID` fails the whole batch.
    case eventStarted(eventID: String, hostUserID: String, hostUsername: String, mode: String, at: EpochMillis)
    /// An event ended. Also closes every participant session of the event that is still open,
    /// at the same time. Ending an event that is already ended (or unknown) changes nothing.
    case eventEnded(eventID: String, reason: String, at: EpochMillis)
    /// The event's mode changed; the event keeps only its latest mode and that change's screen
    /// codec fields (`nil`: none).
    case modeChanged(eventID: String, mode: String, screen: StoredScreen? = nil, at: EpochMillis)
    /// A connection joined the event: starts a new participant session, with the user's source
    /// id in the event if it has one. The event must exist.
    case participantJoined(
        eventID: String, connectionID: UInt64, userID: String, username: String,
        role: StoredRole, verified: Bool, sourceID: UInt32? = nil, at: EpochMillis
    )
    /// A connection left the event: closes the most recent still-open session of that
    /// (`eventID`, `connectionID`) pair. Does nothing if there is none.
    case participantLeft(eventID: String, connectionID: UInt64, at: EpochMillis)
    /// A connection's role changed: updates the most recent session of that
    /// (`eventID`, `connectionID`) pair, and its source id when one is given (a `nil` keeps the
    /// stored one: a source id stays with its user). Does nothing if there is none.
    case roleChanged(eventID: String, connectionID: UInt64, role: StoredRole, sourceID: UInt32? = nil, at: EpochMillis)
    /// A chat message was sent. The store assigns its id; any `id` set on the message is ignored.
    /// The event must exist.
    case chat(StoredChatMessage)
}
