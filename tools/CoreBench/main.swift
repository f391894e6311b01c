import AirwaveCore
import AirwaveProtocol
import Foundation
import NIOCore

// airwave-core-bench: what the live-event engine costs per join, per chat message and per
// coalesced notice, without sockets. Run: swift run -c release airwave-core-bench [listeners]

struct Result {
    var name: String
    var count: Int
    var seconds: Double
    var extra: String
}

func measure(_ name: String, count: Int, extra: () -> String = { "" }, _ body: () -> Void) -> Result {
    let clock = ContinuousClock()
    let elapsed = clock.measure(body)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Result(name: name, count: count, seconds: seconds, extra: extra())
}

/// Counts wire frames as the driver would send them: `.all` goes to every current connection.
struct FrameCounter {
    var frames = 0
    var bytes = 0
    var connections = 1

    mutating func drain(_ event: inout LiveEvent) {
        while let output = event.pollOutput() {
            guard case .send(let message, let route) = output else { continue }
            var buffer = ByteBuffer()
            message.json.write(into: &buffer)  // encoded once, as the driver does
            let n: Int
            switch route.sockets {
            case .none: n = 0
            case .one: n = 1
            case .only(let list): n = list.count
            case .all: n = connections
            case .allExcept: n = connections - 1
            }
            frames += n
            bytes += n * buffer.readableBytes
        }
    }
}

let listeners = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 10_000
let host = UserIdentity(userID: "host", username: "Host", verified: true)
var results: [Result] = []

// A join storm: every listener joins within 5 simulated seconds.
var event = LiveEvent(eventID: "bench", host: host, now: Timestamp(milliseconds: 0))
var counter = FrameCounter()
event.handle(.hostConnected(ConnectionID(1), joinURL: "ws://bench/"), now: Timestamp(milliseconds: 0))
counter.drain(&event)
results.append(measure("join storm", count: listeners, extra: { "" }) {
    for i in 0..<listeners {
        let now = Timestamp(milliseconds: Int64(i * 5000 / listeners))
        event.handle(.join(ConnectionID(UInt64(i + 2)), UserIdentity(userID: "u\(i)", username: "User \(i)", verified: i % 2 == 0)), now: now)
        counter.connections = i + 2
        counter.drain(&event)
    }
    event.handle(.tick, now: Timestamp(milliseconds: 6000))
    counter.drain(&event)
})
let joinFrames = counter.frames
let perJoin = String(format: "%.1f", Double(joinFrames) / Double(listeners))
results[results.count - 1].extra = "\(joinFrames) frames (\(perJoin) per join; N² would be \(listeners * listeners)), \(counter.bytes / 1024) KiB"

// Chat into the full event: one message, one encoding, fanned out to everyone.
counter.frames = 0
counter.bytes = 0
let messages = 1000
results.append(measure("chat fan-out", count: messages) {
    for i in 0..<messages {
        event.handle(.command(ConnectionID(2), .chat("message \(i)")), now: Timestamp(milliseconds: 7000 + Int64(i) * 200))
        counter.drain(&event)
    }
})
results[results.count - 1].extra = "\(counter.frames / messages) recipients per message"

// A leave storm.
counter.frames = 0
results.append(measure("leave storm", count: listeners) {
    for i in 0..<listeners {
        event.handle(.disconnected(ConnectionID(UInt64(i + 2))), now: Timestamp(milliseconds: 300_000 + Int64(i * 5000 / listeners)))
        counter.connections = listeners - i
        counter.drain(&event)
    }
})
results[results.count - 1].extra = "\(counter.frames) frames"

print("airwave-core-bench: \(listeners) listeners")
print("| case | operations | total ms | µs per operation | notes |")
print("|---|---|---|---|---|")
for r in results {
    print("| \(r.name) | \(r.count) | \(String(format: "%.1f", r.seconds * 1000)) | \(String(format: "%.2f", r.seconds * 1e6 / Double(r.count))) | \(r.extra) |")
}
