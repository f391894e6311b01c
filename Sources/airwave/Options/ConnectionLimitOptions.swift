import AirwaveServer
import ArgumentParser

/// Flags of `ConnectionLimits` (PROTOCOL.md section 10; docs/security.md lists them).
struct ConnectionLimitOptions: ParsableArguments {
    @Option(name: .customLong("request-timeout"), help: "Seconds a connection has to send its request head or WebSocket upgrade (default 10).") var requestTimeout: Int?
    @Option(name: .customLong("idle-timeout"), help: "Seconds an idle HTTP keep-alive connection stays open (default 60).") var idleTimeout: Int?
    @Option(name: .customLong("max-connections"), help: "Most open client connections; more are answered 503 server_busy (default 20000, lowered to fit the open-file limit).") var maxConnections: Int?
    @Option(name: .customLong("max-connections-per-ip"), help: "Most open client connections from one IP address; raise it behind a proxy (default 1000).") var maxConnectionsPerIP: Int?
    @Option(name: .customLong("fragment-timeout"), help: "Seconds a fragmented WebSocket message (or a stalled frame) has to complete; else close 1008 (default 10).") var fragmentTimeout: Int?
    @Option(name: .customLong("max-text-message"), help: "Largest WebSocket text message in bytes (default 65536).") var maxTextMessage: Int?
    @Option(name: .customLong("max-speaker-binary-message"), help: "Largest binary message on a host's or verified listener's socket (default 1048576).") var maxSpeakerBinaryMessage: Int?
    @Option(name: .customLong("max-binary-message"), help: "Largest binary message on every other socket (default 65536).") var maxBinaryMessage: Int?

    func apply(_ settings: Settings, to limits: inout ConnectionLimits) throws(ConfigurationError) {
        limits.requestHeadTimeout = .seconds(try settings.positive("request-timeout", requestTimeout, default: Int(limits.requestHeadTimeout.components.seconds)))
        limits.idleTimeout = .seconds(try settings.positive("idle-timeout", idleTimeout, default: Int(limits.idleTimeout.components.seconds)))
        limits.maxConnections = try settings.positive("max-connections", maxConnections, default: limits.maxConnections)
        limits.maxConnectionsPerIP = try settings.positive("max-connections-per-ip", maxConnectionsPerIP, default: limits.maxConnectionsPerIP)
        limits.fragmentTimeout = .seconds(try settings.positive("fragment-timeout", fragmentTimeout, default: Int(limits.fragmentTimeout.components.seconds)))
        limits.maxTextMessage = try settings.positive("max-text-message", maxTextMessage, default: limits.maxTextMessage)
        limits.maxSpeakerBinaryMessage = try settings.positive("max-speaker-binary-message", maxSpeakerBinaryMessage, default: limits.maxSpeakerBinaryMessage)
        limits.maxBinaryMessage = try settings.positive("max-binary-message", maxBinaryMessage, default: limits.maxBinaryMessage)
    }
}
