import AirwaveAuth
import AirwaveServer
import ArgumentParser
import Foundation
import Logging

/// `airwave serve`: runs the server until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the Airwave server.")

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 8000).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Folder for the SQLite database and the development secret (default ./data).") var dataDir: String?
    @Option(help: "Store URL: empty for SQLite in --data-dir, sqlite://PATH, or postgres://USER:PASS@HOST:PORT/DB.") var database: String?
    @Option(name: .customLong("jwt-secret"), help: "HS256 shared secret (at least 32 bytes).") var jwtSecret: String?
    @Option(name: .customLong("jwt-public-key"), help: "PEM file with an RS256 or ES256 public key.") var jwtPublicKey: String?
    @Option(help: "JWKS file or URL.") var jwks: String?
    @Option(name: .customLong("jwt-issuer"), help: "Required token issuer (iss).") var jwtIssuer: String?
    @Option(name: .customLong("jwt-audience"), help: "Required token audience (aud).") var jwtAudience: String?
    @Option(name: .customLong("user-claim"), help: "Claim holding the user id (default user_id, then sub).") var userClaim: String?
    @Option(name: .customLong("user-lookup-url"), help: "URL with {user_id} that answers the user's name.") var userLookupURL: String?
    @Flag(name: .customLong("require-join-token"), help: "Refuse joins without a token.") var requireJoinToken = false
    @Option(name: .customLong("host-grace"), help: "Seconds a dropped host may take to come back (default 30).") var hostGrace: Int?
    @Option(name: .customLong("web-dir"), help: "Folder of the browser client served at / (default: Web/ next to the binary or in the source tree; none turns it off).") var webDir: String?
    @Option(name: .customLong("webrtc-port"), help: "UDP port of every WHEP/WHIP session (default: the --port number; 0 picks a free one).") var webRTCPort: Int?
    @Option(name: .customLong("webrtc-announce"), help: "Comma-separated IP addresses the WebRTC answers announce (NAT, containers; default: the --host address, or every interface's for 0.0.0.0).") var webRTCAnnounce: String?
    @Flag(name: .customLong("disable-webrtc"), help: "No UDP port; /whep and /whip answer 503.") var disableWebRTC = false
    @Option(help: "JSON file of settings (flag names as keys).") var config: String?
    @OptionGroup(title: "Connection limits") var connectionLimits: ConnectionLimitOptions
    @OptionGroup(title: "Media limits") var mediaLimits: MediaLimitOptions
    @OptionGroup(title: "Listening-room limits") var roomLimits: RoomLimitOptions
    @OptionGroup(title: "WebRTC limits") var webRTCLimits: WebRTCLimitOptions
    @OptionGroup(title: "Several nodes") var cluster: ClusterOptions

    func run() async throws {
        let settings = try Settings(configFile: config)
        var configuration = ServerConfiguration()
        configuration.host = settings.string("host", host) ?? "127.0.0.1"
        configuration.port = try settings.int("port", port, default: 8000)
        configuration.dataDirectory = settings.string("data-dir", dataDir) ?? "./data"
        configuration.databaseURL = settings.string("database", database)
        configuration.auth.hs256Secret = settings.string("jwt-secret", jwtSecret)
        configuration.auth.publicKeyPEMPath = settings.string("jwt-public-key", jwtPublicKey)
        configuration.auth.jwks = settings.string("jwks", jwks)
        configuration.auth.issuer = settings.string("jwt-issuer", jwtIssuer)
        configuration.auth.audience = settings.string("jwt-audience", jwtAudience)
        configuration.auth.userClaim = settings.string("user-claim", userClaim)
        configuration.auth.userLookupURL = settings.string("user-lookup-url", userLookupURL)
        configuration.requireJoinToken = try settings.bool("require-join-token", requireJoinToken)
        let grace = try settings.int("host-grace", hostGrace, default: 30)
        guard grace >= 0 else { throw ConfigurationError("--host-grace must be 0 or more seconds.") }
        configuration.liveEvent.hostGrace = .seconds(grace)
        try applyTuning(settings, to: &configuration)
        configuration.webDirectory = try WebDirectory.resolve(settings.string("web-dir", webDir))
        configuration.webRTC.enabled = try !settings.bool("disable-webrtc", disableWebRTC)
        if let port = settings.string("webrtc-port", webRTCPort.map(String.init)) {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError("--webrtc-port must be between 0 and 65535, not \(port).")
            }
            configuration.webRTC.port = number
        } else if configuration.port == 0 {
            configuration.webRTC.port = 0
        }
        configuration.webRTC.announcedAddresses = (settings.string("webrtc-announce", webRTCAnnounce) ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        try connectionLimits.apply(settings, to: &configuration.connections)
        try mediaLimits.apply(settings, to: &configuration.media)
        try roomLimits.apply(settings, to: &configuration.rooms)
        try roomLimits.apply(settings, recordingLimit: &configuration.liveEvent.recordingLimit)
        try webRTCLimits.apply(settings, to: &configuration.webRTC)
        configuration.cluster = try cluster.settings(settings)

        let auth = configuration.auth
        if auth.hs256Secret == nil, auth.publicKeyPEMPath == nil, auth.jwks == nil {
            let secret = try DevelopmentSecret.loadOrCreate(in: configuration.dataDirectory)
            configuration.auth.hs256Secret = secret.value
            DevelopmentSecret.announce(secret, dataDirectory: configuration.dataDirectory)
        }

        raiseOpenFileLimit()
        let level = ProcessInfo.processInfo.environment["AIRWAVE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in QuietStartLogHandler(label: label, level: level) }
        let logger = Logger(label: "airwave")
        let server: AirwaveServer
        do {
            server = try await AirwaveServer.make(configuration: configuration, logger: logger)
        } catch {
            throw ConfigurationError(error.description)
        }
        let listenHost = configuration.host
        let webFolder = configuration.webDirectory
        do {
            try await server.run { port in
                QuietStartLogHandler.serving.withLockedValue { $0 = true }
                logger.info("serving", metadata: ["address": "http://\(listenHost):\(port)"])
                if let web = webFolder {
                    logger.info("web client", metadata: ["folder": "\(web)", "url": "http://\(listenHost):\(port)/"])
                } else {
                    logger.notice("no web client folder found: / answers 404 (set --web-dir)")
                }
            }
        } catch let error as ServerStartError {
            throw ConfigurationError(error.description)
        }
        logger.info("stopped")
    }
}

/// Every connection is a file descriptor: take the hard limit, not the (often 1,024) soft one.
private func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Settings without a flag, read from `AIRWAVE_…` variables or the config file: limits and
/// intervals an operator rarely changes (docs/operations.md lists them).
private func applyTuning(_ settings: Settings, to configuration: inout ServerConfiguration) throws(ConfigurationError) {
    func positive(_ key: String, _ current: Int) throws(ConfigurationError) -> Int {
        let value = try settings.int(key, nil, default: current)
        guard value > 0 else { throw ConfigurationError("\(key) must be a positive integer.") }
        return value
    }
    var live = configuration.liveEvent
    live.inviteLifetime = .seconds(try positive("invite-lifetime", Int(live.inviteLifetime.components.seconds)))
    live.individualNoticeLimit = try positive("individual-notice-limit", live.individualNoticeLimit)
    live.listListenerLimit = try positive("list-listener-limit", live.listListenerLimit)
    live.noticeInterval = .milliseconds(try positive("notice-interval-ms", Int(live.noticeInterval.milliseconds)))
    configuration.liveEvent = live
    configuration.directoryInterval = .milliseconds(try positive("directory-interval-ms", Int(configuration.directoryInterval.milliseconds)))
    configuration.chatRate.perSecond = Double(try positive("chat-rate", Int(configuration.chatRate.perSecond)))
    configuration.chatRate.burst = Double(try positive("chat-burst", Int(configuration.chatRate.burst)))
    configuration.controlRate.perSecond = Double(try positive("control-rate", Int(configuration.controlRate.perSecond)))
    configuration.controlRate.burst = Double(try positive("control-burst", Int(configuration.controlRate.burst)))
    configuration.pingInterval = .seconds(try positive("ping-interval", Int(configuration.pingInterval.components.seconds)))
}

/// The secret `serve` makes when no key is configured, kept in the data folder so tokens
/// stay valid across restarts.
struct DevelopmentSecret {
    var value: String
    var path: String
    var created: Bool

    static func loadOrCreate(in dataDirectory: String) throws(ConfigurationError) -> DevelopmentSecret {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("dev-jwt-secret").path
        if let data = FileManager.default.contents(atPath: path),
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), text.utf8.count >= 32
        {
            return DevelopmentSecret(value: text, path: path, created: false)
        }
        var generator = SystemRandomNumberGenerator()
        let value = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: Data((value + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ConfigurationError("cannot write the development secret to \(path).")
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot create the data folder \(dataDirectory): \(error.localizedDescription)")
        }
        return DevelopmentSecret(value: value, path: path, created: true)
    }

    static func announce(_ secret: DevelopmentSecret, dataDirectory: String) {
        let note = """
            No --jwt-secret, --jwt-public-key or --jwks given: using the development secret in \(secret.path)\(secret.created ? " (new)" : "").
            Mint a host token with:  \(CommandLine.arguments.first ?? "airwave") token --user-id host1 --username Host --data-dir \(dataDirectory)

            """
        FileHandle.standardError.write(Data(note.utf8))
    }
}
