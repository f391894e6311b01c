import AirwaveAuth
import ArgumentParser
import Foundation

/// `airwave token`: prints an HS256 token for a user.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Print an HS256 token for a user.")

    @Option(name: .customLong("user-id"), help: "The user id (claim user_id).") var userID: String
    @Option(help: "The display name (claim username).") var username: String?
    @Option(help: "Seconds the token stays valid (default 3600).") var ttl: Int?
    @Option(name: .customLong("jwt-secret"), help: "HS256 shared secret; default: the development secret in --data-dir.") var jwtSecret: String?
    @Option(name: .customLong("jwt-issuer"), help: "Issuer claim (iss).") var jwtIssuer: String?
    @Option(name: .customLong("jwt-audience"), help: "Audience claim (aud).") var jwtAudience: String?
    @Option(name: .customLong("data-dir"), help: "Where serve keeps its development secret (default ./data).") var dataDir: String?
    @Option(help: "JSON file of settings (flag names as keys).") var config: String?

    func run() async throws {
        let settings = try Settings(configFile: config)
        let ttl = try settings.int("ttl", ttl, default: 3600)
        guard ttl > 0 else { throw ConfigurationError("--ttl must be a positive number of seconds.") }
        var secret = settings.string("jwt-secret", jwtSecret)
        if secret == nil {
            let path = URL(fileURLWithPath: settings.string("data-dir", dataDir) ?? "./data").appendingPathComponent("dev-jwt-secret").path
            secret = FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret != nil else {
                throw ConfigurationError("--jwt-secret is required (no development secret at \(path); run airwave serve once to make one).")
            }
        }
        do {
            let token = try TokenMinter.hs256(
                userID: userID, username: username, ttl: .seconds(ttl), secret: secret!,
                issuer: settings.string("jwt-issuer", jwtIssuer), audience: settings.string("jwt-audience", jwtAudience))
            print(token)
        } catch {
            throw ConfigurationError("\(error)")
        }
    }
}
