/// Errors the event store itself raises (database errors are passed through as they are).
public enum EventStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store was shut down.
    case closed
    /// The database was migrated by a newer version of the program than this one understands.
    case schemaTooNew(found: Int, supported: Int)
    /// A stored value could not be understood (for example an unknown role name).
    case invalidStoredValue(column: String, value: String)
    /// A database URL that cannot be read (shown with its password replaced by `***`).
    case invalidDatabaseURL(String)
    /// A call did not finish within the store's operation deadline (the database stopped
    /// answering on an open connection); the caller sees a failure instead of a hang.
    case timedOut(seconds: Int)

    /// A readable description of the error.
    public var description: String {
        switch self {
        case .closed:
            return "the event store is shut down"
        case .schemaTooNew(let found, let supported):
            return "the database schema is at version \(found) but this program supports at most \(supported)"
        case .invalidStoredValue(let column, let value):
            return "unexpected value \(value.debugDescription) in column \(column)"
        case .invalidDatabaseURL(let url):
            return "cannot read the database URL \(url) (expected postgres://USER:PASS@HOST:PORT/DB)"
        case .timedOut(let seconds):
            return "the database did not answer within \(seconds) s"
        }
    }
}
