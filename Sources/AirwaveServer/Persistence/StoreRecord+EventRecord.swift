import AirwaveCore
import AirwaveProtocol
import AirwaveStore

extension StoreRecord {
    /// The store's form of what the core recorded.
    init(_ record: EventRecord) {
        switch record {
        case .eventStarted(let eventID, let host, let mode, let at):
            self = .eventStarted(eventID: eventID, hostUserID: host.userID, hostUsername: host.username, mode: mode.rawValue, at: at.milliseconds)
        case .eventEnded(let eventID, let reason, let at):
            self = .eventEnded(eventID: eventID, reason: reason, at: at.milliseconds)
        case .modeChanged(let eventID, let mode, let screen, let at):
            self = .modeChanged(eventID: eventID, mode: mode.rawValue, screen: screen.map(StoredScreen.init), at: at.milliseconds)
        case .participantJoined(let eventID, let connection, let user, let role, let sourceID, let at):
            self = .participantJoined(eventID: eventID, connectionID: connection.rawValue, userID: user.userID, username: user.username,
                                      role: StoredRole(role), verified: user.verified, sourceID: sourceID, at: at.milliseconds)
        case .participantLeft(let eventID, let connection, let at):
            self = .participantLeft(eventID: eventID, connectionID: connection.rawValue, at: at.milliseconds)
        case .roleChanged(let eventID, let connection, let role, let sourceID, let at):
            self = .roleChanged(eventID: eventID, connectionID: connection.rawValue, role: StoredRole(role), sourceID: sourceID, at: at.milliseconds)
        case .chat(let eventID, let entry):
            self = .chat(StoredChatMessage(id: nil, eventID: eventID, userID: entry.userID, username: entry.username,
                                           message: entry.message, sentAt: entry.sentAt.milliseconds, verified: entry.verified))
        }
    }
}

extension StoredRole {
    init(_ role: Role) {
        switch role {
        case .host: self = .host
        case .cohost: self = .cohost
        case .listener: self = .listener
        }
    }
}

extension StoredScreen {
    /// The store's form of the screen's codec fields the core recorded.
    init(_ screen: ScreenConfig) {
        self.init(codec: screen.codec, width: screen.width, height: screen.height, description: screen.description)
    }
}

extension ScreenConfig {
    /// Stored codec fields as a resumed event takes them back.
    init(_ screen: StoredScreen) {
        self.init(codec: screen.codec, width: screen.width, height: screen.height, description: screen.description)
    }
}
