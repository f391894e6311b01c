import Foundation
import Testing

@testable import AirwaveWebRTC

/// What a WHEP session's parts cost in memory (issue 17), measured as the earlier numbers in
/// docs/performance.md were: 2,000 objects of a kind in this process, resident memory after
/// `malloc_trim` before and after, divided by 2,000. Only with `AIRWAVE_MEMORY_REPORT=1` and
/// alone (`--filter MemoryReport`: other tests running at the same time move the RSS); prints
/// KiB per object. Debug-build numbers.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["AIRWAVE_MEMORY_REPORT"] != nil))
struct MemoryReportTests {
    static let objects = 2000

    /// glibc's `malloc_trim` (not in Swift's Glibc module), so freed pages leave the RSS.
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    static func residentBytes() -> Int {
        _ = mallocTrim?(0)
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// KiB per object of what `make` returns, printed as `memory: <name> <KiB>`.
    @discardableResult
    static func measure<T>(_ name: String, _ make: (Int) throws -> T) rethrows -> Double {
        var kept: [T] = []
        kept.reserveCapacity(objects)
        let before = residentBytes()
        for index in 0..<objects { kept.append(try make(index)) }
        let after = residentBytes()
        withExtendedLifetime(kept) {}
        let kib = Double(after - before) / Double(objects) / 1024
        print("memory: \(name) \(String(format: "%.2f", kib)) KiB")
        return kib
    }

    @Test func kibPerObject() throws {
        for profile in SRTPProfile.allCases {
            let material = SRTPSenderTests.material(profile)
            let peer = try SRTPSession(keyingMaterial: material, role: .client)
            var rtcp = RTCPPacket.serializeCompound([.receiverReport(.init(ssrc: 5, reports: []))])
            try peer.protectRTCP(&rtcp)
            var rtp = SRTPSenderTests.packet(sequence: 1)
            try peer.protectRTP(&rtp)
            let key = material.receivingKey(for: .server)
            // Before issue 17's change: what a listener's session received SRTCP through.
            try Self.measure("\(profile) libsrtp receiving context, one SRTCP packet taken (before)") { _ in
                let context = try LibsrtpSession(keyingMaterial: material, role: .server, receiveOnly: true)
                var packet = rtcp
                try context.unprotectRTCP(&packet)
                return context
            }
            try Self.measure("\(profile) OpenSSL receiver, SRTCP half only") { _ in
                try #require(makeSRTPReceiver(profile: profile, masterKeyAndSalt: key))
            }
            try Self.measure("\(profile) OpenSSL sender") { _ in
                try #require(makeSRTPSender(profile: profile, masterKeyAndSalt: material.sendingKey(for: .server)))
            }
            // A listener's: sender and SRTCP receiver, one receiver report taken.
            try Self.measure("\(profile) SRTPSession of a listener") { _ in
                let session = try SRTPSession(keyingMaterial: material, role: .server)
                var packet = rtcp
                try session.unprotectRTCP(&packet)
                return session
            }
            // A speaker's: the same plus the receiver's SRTP half, made by the first packet.
            try Self.measure("\(profile) SRTPSession of a speaker") { _ in
                let session = try SRTPSession(keyingMaterial: material, role: .server)
                var packet = rtp
                try session.unprotectRTP(&packet)
                return session
            }
        }
        Self.measure("NACK history of 128, empty") { _ in RTPRetransmissionHistory(capacity: 128) }
        // The mix's payload is one array for every listener; each history refers to it.
        let payload = [UInt8](repeating: 0xFC, count: 120)
        let start = ContinuousClock.now
        Self.measure("NACK history of 128, 1 s of audio at 50 packets/s") { _ in
            var history = RTPRetransmissionHistory(capacity: 128)
            for index in 0..<100 {
                history.store(RTPPacket(payloadType: 111, sequenceNumber: UInt16(index), timestamp: UInt32(index * 960),
                                        ssrc: 7, payload: payload), now: start + .milliseconds(20 * index))
            }
            return history
        }
        Self.measure("NACK history of 128, full (128 packets at once)") { _ in
            var history = RTPRetransmissionHistory(capacity: 128)
            for index in 0..<128 {
                history.store(RTPPacket(payloadType: 111, sequenceNumber: UInt16(index), timestamp: UInt32(index * 960),
                                        ssrc: 7, payload: payload), now: start)
            }
            return history
        }
    }
}
