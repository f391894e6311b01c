/// Names one client connection for the whole life of the server process.
public struct ConnectionID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: ConnectionID, b: ConnectionID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "c\(rawValue)" }
}

/// Who a connection speaks for: the user id, the display name, and whether a token proved it.
public struct UserIdentity: Sendable, Hashable {
    public var userID: String
    public var username: String
    public var verified: Bool

    public init(userID: String, username: String, verified: Bool) {
        self.userID = userID
        self.username = username
        self.verified = verified
    }
}

/// A participant's role in a live event.
public enum Role: String, Sendable, Hashable {
    case host, cohost, listener
}

/// Whether the event carries audio or the host's screen.
public enum StreamMode: String, Sendable, Hashable {
    case audio, screen
}
