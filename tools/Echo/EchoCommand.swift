import AirwaveServer
import ArgumentParser
import Foundation
import Logging

/// `airwave-echo`: Airwave's own WebSocket transport with one endpoint, `/`, that echoes every
/// message — what `tools/autobahn/run` points the Autobahn cases at.
@main
struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airwave-echo", abstract: "WebSocket echo server on Airwave's transport (for the Autobahn cases).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 9001
    @Option(name: .customLong("max-message-bytes"), help: "Largest message echoed; larger ones close with 1009.")
    var maxMessageBytes = 16 * 1024 * 1024

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard maxMessageBytes > 0 else { throw ValidationError("--max-message-bytes must be positive") }
    }

    func run() async throws {
        var logger = Logger(label: "airwave-echo")
        logger.logLevel = .warning
        let host = self.host
        try await EchoServer(host: host, port: port, maxMessageBytes: maxMessageBytes).run(logger: logger) { port in
            // The one line a script waits for (tools/autobahn/run).
            FileHandle.standardOutput.write(Data("airwave-echo: serving on ws://\(host):\(port)/\n".utf8))
        }
    }
}
