import ArgumentParser
import Foundation

/// `airwave`: the command line of PROTOCOL.md section 7.
@main
struct AirwaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airwave",
        abstract: "A media-relay server for live audio rooms.",
        subcommands: [ServeCommand.self, TokenCommand.self])

    /// Parses and runs; every configuration error is one line on standard error and status 2.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("airwave: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let line = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("airwave: \(line)\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// A problem with flags, variables, the config file or start-up: printed as one line, exit 2.
struct ConfigurationError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
