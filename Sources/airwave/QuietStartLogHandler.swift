import Logging
import NIOConcurrencyHelpers

/// Writes logs to standard error, but holds back everything below `warning` until the server
/// serves: a start that fails must print exactly one line (PROTOCOL.md section 7).
struct QuietStartLogHandler: LogHandler {
    /// Flipped once the server listens.
    static let serving = NIOLockedValueBox(false)

    private var inner: StreamLogHandler

    init(label: String, level: Logger.Level) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = level
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= .warning || Self.serving.withLockedValue({ $0 }) else { return }
        inner.log(event: event)
    }
}
