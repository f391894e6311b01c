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
