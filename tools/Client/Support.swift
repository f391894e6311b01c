import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging

@main
struct AirwaveClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airwave-client",
        abstract: "Broadcast to or listen to an Airwave live event.",
        subcommands: [Broadcast.self, Listen.self]
    )
}

/// Fails the command with a message and exit status 1.
struct ClientFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Client {
    static let logger: Logger = {
        var logger = Logger(label: "airwave-client")
        logger.logLevel = .warning
        return logger
    }()

    static var configuration: WebSocketClientConfiguration {
        WebSocketClientConfiguration(maxFrameSize: 1 << 20, closeTimeout: .seconds(5))
    }

    /// Percent-encodes one path segment.
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func query(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// `base` (ws://host:port, any trailing slash) joined with `path`.
    static func url(_ base: String, _ path: String, token: String?) -> String {
        var root = base
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasPrefix("http://") { root = "ws://" + root.dropFirst(7) }
        if root.hasPrefix("https://") { root = "wss://" + root.dropFirst(8) }
        var url = root + path
        if let token { url += "?token=" + query(token) }
        return url
    }

    /// The JSON object of a text frame, or nil.
    static func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    static func json(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// One line per control message, written at once (unbuffered, for pipes).
    static func printLine(_ text: String) {
        FileHandle.standardOutput.write(Data((text.replacingOccurrences(of: "\n", with: " ") + "\n").utf8))
    }

    static func warn(_ text: String) {
        FileHandle.standardError.write(Data("airwave-client: \(text)\n".utf8))
    }

    /// A description of a close frame for messages.
    static func describe(_ close: WebSocketCloseFrame?) -> (code: Int?, text: String) {
        guard let close else { return (nil, "connection closed without a close frame") }
        let code: Int?
        switch close.closeCode {
        case .normalClosure: code = 1000
        case .goingAway: code = 1001
        case .unknown(let value): code = Int(value)
        default: code = nil
        }
        return (code, "closed with \(code.map(String.init) ?? "\(close.closeCode)")\(close.reason.map { " (\($0))" } ?? "")")
    }
}

/// SIGINT (and SIGTERM) as an async stream; the default action is disabled while it lives.
enum Signals {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func interrupts() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        return stream
    }
}

/// Exits the process after `seconds` unless cancelled: a bound on every shutdown path.
@discardableResult
func watchdog(seconds: Double, status: Int32, message: String) -> Task<Void, Never> {
    Task.detached {
        try? await Task.sleep(for: .seconds(seconds))
        if Task.isCancelled { return }
        Client.warn(message)
        exit(status)
    }
}
