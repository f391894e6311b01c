import AirwaveProtocol
import Foundation

/// Resolves one setting the way PROTOCOL.md section 7 orders them: the flag, then the
/// `AIRWAVE_…` environment variable, then the `--config` file, then the default.
struct Settings {
    private let environment: [String: String]
    private let file: [String: JSONValue]

    init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) {
        self.environment = environment
        let path = configFile ?? environment["AIRWAVE_CONFIG"]
        guard let path, !path.isEmpty else {
            file = [:]
            return
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read the config file \(path).")
        }
        guard case .object(let members) = try? JSONParser.parse(Array(data)) else {
            throw ConfigurationError("the config file \(path) must be a JSON object of flag names to values.")
        }
        // Accept "jwt-secret", "jwt_secret" and "AIRWAVE_JWT_SECRET" spellings alike.
        file = Dictionary(members.map { (Self.normalize($0.key), $0.value) }, uniquingKeysWith: { _, last in last })
    }

    private static func normalize(_ key: String) -> String {
        var key = key.lowercased().replacingOccurrences(of: "_", with: "-")
        if key.hasPrefix("airwave-") { key.removeFirst("airwave-".count) }
        return key
    }

    private static func environmentName(_ flag: String) -> String {
        "AIRWAVE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The text value of `flag` (without dashes, e.g. "jwt-secret").
    func string(_ flag: String, _ value: String?) -> String? {
        if let value { return value }
        if let env = environment[Self.environmentName(flag)], !env.isEmpty { return env }
        switch file[flag] {
        case .string(let s)?: return s
        case .number?: return file[flag]!.jsonText
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }

    func int(_ flag: String, _ value: Int?, default fallback: Int) throws(ConfigurationError) -> Int {
        guard let text = string(flag, value.map(String.init)) else { return fallback }
        guard let number = Int(text) else { throw ConfigurationError("--\(flag) must be an integer, not \(text).") }
        return number
    }

    func bool(_ flag: String, _ value: Bool) throws(ConfigurationError) -> Bool {
        if value { return true }
        guard let text = string(flag, nil) else { return false }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: throw ConfigurationError("--\(flag) must be true or false, not \(text).")
        }
    }

    /// A positive integer setting; zero or less is a configuration error.
    func positive(_ flag: String, _ value: Int?, default fallback: Int) throws(ConfigurationError) -> Int {
        let number = try int(flag, value, default: fallback)
        guard number > 0 else { throw ConfigurationError("--\(flag) must be a positive integer, not \(number).") }
        return number
    }
}
