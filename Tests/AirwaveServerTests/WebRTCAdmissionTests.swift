import AirwaveProtocol
import NIOCore
import Testing

@testable import AirwaveServer

/// Issue 13 finding 1: anonymous WHEP sessions filled the one session table (the host's WHIP
/// then got 503), and one client made 1,600 a second. ``WebRTCAdmission`` decides, with time
/// as an input; every answer is compared.
@Suite struct WebRTCAdmissionTests {
    let start = Timestamp(milliseconds: 1_000_000)

    func admission(maximum: Int = 10, reserved: Int = 2, perIP: Int = 100, rate: Double = 1000, burst: Double = 1000) -> WebRTCAdmission {
        WebRTCAdmission(limits: .init(maximumSessions: maximum, reservedSessions: reserved, anonymousPerIP: perIP,
                                      anonymousOfferRate: RateLimit(perSecond: rate, burst: burst)))
    }

    @Test func anonymousListenersFillTheirShareAndTheReserveStaysForTokenHolders() {
        var admission = admission(maximum: 10, reserved: 2)
        var holders: [WebRTCAdmission.Holder] = []
        for index in 0..<8 {
            let result = admission.admit(anonymousFrom: "198.51.100.\(index % 3)", now: start)
            #expect(result == .success(WebRTCAdmission.Holder(address: "198.51.100.\(index % 3)")))
            if case .success(let holder) = result { holders.append(holder) }
        }
        #expect(admission.admit(anonymousFrom: "203.0.113.1", now: start) == .failure(.anonymousShareFull))
        // The host's WHIP and a listener with a token take the reserve…
        #expect(admission.admit(anonymousFrom: nil, now: start) == .success(WebRTCAdmission.Holder(address: nil)))
        #expect(admission.admit(anonymousFrom: nil, now: start) == .success(WebRTCAdmission.Holder(address: nil)))
        // …and then the table is full for everyone.
        #expect(admission.admit(anonymousFrom: nil, now: start) == .failure(.full))
        #expect(admission.admit(anonymousFrom: "203.0.113.1", now: start) == .failure(.full))
        #expect(admission.sessions == 10)
        #expect(admission.anonymousSessions == 8)
        // A listener leaving frees an anonymous place.
        admission.release(holders[0])
        #expect(admission.anonymousSessions(of: "198.51.100.0") == 2)
        #expect(admission.admit(anonymousFrom: "203.0.113.1", now: start) == .success(WebRTCAdmission.Holder(address: "203.0.113.1")))
    }

    @Test func tokenHoldersMayTakeEveryPlace() {
        var admission = admission(maximum: 3, reserved: 1)
        for _ in 0..<3 { #expect(admission.admit(anonymousFrom: nil, now: start) == .success(WebRTCAdmission.Holder(address: nil))) }
        #expect(admission.admit(anonymousFrom: nil, now: start) == .failure(.full))
        #expect(admission.admit(anonymousFrom: "198.51.100.1", now: start) == .failure(.full))
    }

    @Test func oneAddressHasAtMostItsAnonymousSessions() {
        var admission = admission(maximum: 100, reserved: 0, perIP: 2)
        let first = admission.admit(anonymousFrom: "198.51.100.1", now: start)
        #expect(first == .success(WebRTCAdmission.Holder(address: "198.51.100.1")))
        #expect(admission.admit(anonymousFrom: "198.51.100.1", now: start) == .success(WebRTCAdmission.Holder(address: "198.51.100.1")))
        #expect(admission.admit(anonymousFrom: "198.51.100.1", now: start) == .failure(.addressFull))
        #expect(admission.admit(anonymousFrom: "198.51.100.2", now: start) == .success(WebRTCAdmission.Holder(address: "198.51.100.2")))
        #expect(admission.admit(anonymousFrom: nil, now: start) == .success(WebRTCAdmission.Holder(address: nil)))
        if case .success(let holder) = first { admission.release(holder) }
        #expect(admission.admit(anonymousFrom: "198.51.100.1", now: start) == .success(WebRTCAdmission.Holder(address: "198.51.100.1")))
    }

    @Test func oneAddressOffersAtMostAtItsRate() {
        var admission = admission(maximum: 10_000, reserved: 0, perIP: 10_000, rate: 5, burst: 3)
        // 1,600 offers in one second: the burst, then five a second.
        var admitted = 0
        var refusals: [WebRTCAdmission.Refusal: Int] = [:]
        for index in 0..<1600 {
            switch admission.admit(anonymousFrom: "198.51.100.1", now: start + .milliseconds(Int64(index * 1000 / 1600))) {
            case .success: admitted += 1
            case .failure(let refusal): refusals[refusal, default: 0] += 1
            }
        }
        #expect(admitted == 3 + 4)  // tokens at 200, 400, 600, 800 ms
        #expect(refusals == [.addressTooFast: 1593])
        // Another address is not affected; a token holder neither.
        #expect(admission.admit(anonymousFrom: "198.51.100.2", now: start) == .success(WebRTCAdmission.Holder(address: "198.51.100.2")))
        #expect(admission.admit(anonymousFrom: nil, now: start + .milliseconds(999)) == .success(WebRTCAdmission.Holder(address: nil)))
    }

    @Test func forgottenAddressesDoNotPileUp() {
        var admission = admission(maximum: 100_000, reserved: 0, perIP: 1, rate: 5, burst: 20)
        for index in 0..<3000 {
            _ = admission.admit(anonymousFrom: "10.0.\(index / 256).\(index % 256)", now: start + .seconds(Int64(index / 100)))
        }
        // Buckets refill in 4 s: only the last seconds' addresses are remembered.
        #expect(admission.rememberedAddresses <= 1024)
    }

    @Test func addressesCountPerIPv4AndPerIPv6Slash64() throws {
        #expect(WebRTCGateway.admissionKey(try SocketAddress(ipAddress: "198.51.100.7", port: 4000)) == "198.51.100.7")
        #expect(WebRTCGateway.admissionKey(try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 4000)) == "2001:db8:1:2::/64")
        #expect(WebRTCGateway.admissionKey(try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::9", port: 4000)) == "2001:db8:1:2::/64")
        #expect(WebRTCGateway.admissionKey(try SocketAddress(ipAddress: "::ffff:198.51.100.7", port: 4000)) == "198.51.100.7")
        #expect(WebRTCGateway.admissionKey(nil) == "?")
    }

    @Test func theDefaultReserveIsATenthOfTheSessions() {
        var settings = WebRTCSettings()
        #expect(settings.effectiveReservedSessions == 1000)
        settings.maximumSessions = 1
        #expect(settings.effectiveReservedSessions == 0)
        settings.reservedSessions = 5
        #expect(settings.effectiveReservedSessions == 1)
    }
}
