import AirwaveWHEPClient
import AirwaveWebRTC
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One connected WHEP listener and the URL that hangs it up.
struct WHEPMember: Sendable {
    let listener: WHEPListener
    /// `Location` of the 201 answer: `/whep/{eventId}/{sessionId}`.
    let location: String?
    /// Index of its event loop in the fleet's list.
    let loopIndex: Int
}

/// Opens WHEP listeners against `POST /whep/{eventId}`: `connectRate` new listeners a second,
/// at most `concurrency` offers or handshakes in flight (one blocking worker thread each, since
/// the HTTP exchange is a plain socket), each listener bounded by its connect timeout. Listeners
/// are spread round-robin over the event loops. Runs on the calling (main) thread.
struct WHEPFleet {
    let loops: [EventLoop]
    let port: Int
    let eventID: String
    let context: DTLSContext
    let configuration: WHEPListenerConfiguration
    let connectRate: Int
    let concurrency: Int
    let runTag: String

    struct Outcome {
        var members: [WHEPMember]
        var failures: [String: Int]
        var wallSeconds: Double
        /// POST to connected, per listener.
        var connectHistogram: LatencyHistogram
    }

    func open(count: Int) -> Outcome {
        let state = FleetState()
        let started = monotonicNanos()
        let spacing = 1_000_000_000 / UInt64(max(1, connectRate))
        let workers = max(1, min(concurrency, count))
        let done = DispatchGroup()
        for _ in 0..<workers {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                while let index = state.next(below: count) {
                    let due = started + UInt64(index) * spacing
                    let now = monotonicNanos()
                    if due > now { usleepNanos(due - now) }
                    let begun = monotonicNanos()
                    switch connect(index: index) {
                    case .success(let member): state.record(member, micros: (monotonicNanos() - begun) / 1000)
                    case .failure(let error): state.record(failure: String(error.description.prefix(80)))
                    }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        return state.outcome(wallSeconds: Double(monotonicNanos() - started) / 1e9)
    }

    private func connect(index: Int) -> Result<WHEPMember, BenchError> {
        let loopIndex = index % loops.count
        let listener: WHEPListener
        do {
            listener = try WHEPListener.bind(on: loops[loopIndex], context: context, configuration: configuration,
                                             ufrag: "w\(runTag)x\(index)").wait()
        } catch {
            return .failure(BenchError("bind: \(error)"))
        }
        let offer = listener.offer().sdp
        guard let response = HTTPExchange.send(
            port: port, method: "POST", path: "/whep/\(eventID)",
            headers: ["Content-Type": "application/sdp", "Accept": "application/sdp"], body: Array(offer.utf8))
        else {
            _ = try? listener.close().wait()
            return .failure(BenchError("POST /whep: no response"))
        }
        guard response.status == 201 else {
            _ = try? listener.close().wait()
            return .failure(BenchError("POST /whep: HTTP \(response.status) \(response.errorCode ?? "")"))
        }
        do {
            let answer = try WHEPAnswer(sdp: String(decoding: response.body, as: UTF8.self))
            try listener.start(answer: answer).wait()
        } catch {
            if let location = response.headers["location"] {
                _ = HTTPExchange.send(port: port, method: "DELETE", path: location, headers: [:], body: [])
            }
            _ = try? listener.close().wait()
            return .failure(BenchError("\(error)"))
        }
        return .success(WHEPMember(listener: listener, location: response.headers["location"], loopIndex: loopIndex))
    }

    /// Hangs every member up: `DELETE` its session (by `concurrency` threads), then close_notify
    /// and the socket. Returns the DELETE statuses by code.
    static func close(_ members: [WHEPMember], port: Int, concurrency: Int) -> [String: Int] {
        let state = FleetState()
        let done = DispatchGroup()
        for _ in 0..<max(1, min(concurrency, members.count)) {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                while let index = state.next(below: members.count) {
                    let member = members[index]
                    var status = "no location"
                    if let location = member.location {
                        let response = HTTPExchange.send(port: port, method: "DELETE", path: location, headers: [:], body: [])
                        status = response.map { String($0.status) } ?? "no response"
                    }
                    _ = try? member.listener.close().wait()
                    state.record(failure: status)
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        return state.outcome(wallSeconds: 0).failures
    }

    /// The members' counters summed, and each member's RTP packets (in a fixed order), one task
    /// per event loop (so the snapshot is short).
    static func counters(_ members: [WHEPMember], loops: [EventLoop]) -> (total: WHEPCounters, packets: [Int]) {
        var total = WHEPCounters()
        var packets: [Int] = []
        for (loopIndex, loop) in loops.enumerated() {
            let mine = members.filter { $0.loopIndex == loopIndex }.map(\.listener)
            let part = try? loop.submit { () -> (WHEPCounters, [Int]) in
                var sum = WHEPCounters()
                var each: [Int] = []
                for listener in mine {
                    let counters = listener.countersOnLoop()
                    sum.add(counters)
                    each.append(counters.rtpPackets)
                }
                return (sum, each)
            }.wait()
            if let part { total.add(part.0); packets += part.1 }
            else { packets += Array(repeating: 0, count: mine.count) }
        }
        return (total, packets)
    }
}

/// The fleet's shared progress: the next index to open, and the results. Locked.
final class FleetState: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private var members: [WHEPMember] = []
    private var failures: [String: Int] = [:]
    private var histogram = LatencyHistogram()

    func next(below count: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard nextIndex < count else { return nil }
        defer { nextIndex += 1 }
        return nextIndex
    }

    func record(_ member: WHEPMember, micros: UInt64) {
        lock.lock(); defer { lock.unlock() }
        members.append(member)
        histogram.record(micros: micros)
    }

    func record(failure: String) {
        lock.lock(); defer { lock.unlock() }
        failures[failure, default: 0] += 1
    }

    func outcome(wallSeconds: Double) -> WHEPFleet.Outcome {
        lock.lock(); defer { lock.unlock() }
        return WHEPFleet.Outcome(members: members, failures: failures, wallSeconds: wallSeconds, connectHistogram: histogram)
    }
}

/// A blocking HTTP/1.0 exchange over 127.0.0.1 (one connection per request, 10 s timeouts): the
/// load generator's WHEP offers and hang-ups. Small on purpose; WHEP needs nothing more.
struct HTTPExchange {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: [UInt8]

    /// The `code` of an Airwave JSON error body, if there is one.
    var errorCode: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return object["code"] as? String
    }

    static func send(port: Int, method: String, path: String, headers: [String: String], body: [UInt8]) -> HTTPExchange? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var head = "\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return nil }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while response.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return parse(response)
    }

    /// Splits a raw response into status, headers and body (up to Content-Length, if given).
    static func parse(_ response: [UInt8]) -> HTTPExchange? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<$0 + 4]) == separator }) else {
            return nil
        }
        let head = String(decoding: response[..<split], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(response[(split + 4)...])
        if let length = headers["content-length"].flatMap(Int.init), length < body.count { body = Array(body.prefix(length)) }
        return HTTPExchange(status: status, headers: headers, body: body)
    }
}
