import AirwaveCore
import AirwaveProtocol

/// Who may open one more WebRTC session (issue 13). Every event shares one session table, and
/// an anonymous WHEP session costs its maker one HTTP request, so anonymous listeners get:
/// a share of the table (`maximumSessions` minus a reserve that only WHIP publishers and
/// listeners with a token may use, so the host can still publish when players have filled
/// theirs), a number of sessions per IP address, and a rate of offers per IP address (a token
/// bucket). IPv6 addresses count per /64, what one subscriber usually holds. Offers with a
/// token count against the table only: a token names who made them.
///
/// Pure state: the gateway keeps it under its table's lock; time is an input.
struct WebRTCAdmission: Sendable {
    struct Limits: Sendable, Equatable {
        var maximumSessions: Int
        var reservedSessions: Int
        var anonymousPerIP: Int
        var anonymousOfferRate: RateLimit

        init(maximumSessions: Int, reservedSessions: Int, anonymousPerIP: Int, anonymousOfferRate: RateLimit) {
            self.maximumSessions = maximumSessions
            self.reservedSessions = reservedSessions
            self.anonymousPerIP = anonymousPerIP
            self.anonymousOfferRate = anonymousOfferRate
        }

        init(_ settings: WebRTCSettings) {
            self.init(maximumSessions: settings.maximumSessions, reservedSessions: settings.effectiveReservedSessions,
                      anonymousPerIP: settings.anonymousSessionsPerIP, anonymousOfferRate: settings.anonymousOfferRate)
        }
    }

    /// Why an offer gets no session.
    enum Refusal: Error, Equatable, Sendable {
        /// Every session is taken (503).
        case full
        /// Anonymous listeners have taken their share; the reserve is left (503).
        case anonymousShareFull
        /// This address has its most anonymous sessions (429).
        case addressFull
        /// This address made anonymous offers faster than the rate (429).
        case addressTooFast
    }

    /// Who holds a session, as it was admitted; given back to `release`.
    struct Holder: Sendable, Hashable {
        /// The address key (IPv4 address or IPv6 /64), for anonymous sessions only.
        let address: String?
        var anonymous: Bool { address != nil }
    }

    let limits: Limits
    private(set) var sessions = 0
    private(set) var anonymousSessions = 0
    private var perAddress: [String: Int] = [:]
    /// Each address's bucket and when it last offered.
    private var offers: [String: (bucket: TokenBucket, lastOffer: Timestamp)] = [:]
    /// `offers` is swept of full buckets when it grows past this (then twice its size left).
    private var sweepAt = 1024

    init(limits: Limits) {
        self.limits = limits
    }

    /// Admits one session: anonymous (no token) from `address`, or not. The offer counts
    /// against the address's rate even when it is refused for another reason.
    mutating func admit(anonymousFrom address: String?, now: Timestamp) -> Result<Holder, Refusal> {
        guard let address else {
            guard sessions < limits.maximumSessions else { return .failure(.full) }
            sessions += 1
            return .success(Holder(address: nil))
        }
        var bucket = offers[address]?.bucket
            ?? TokenBucket(rate: limits.anonymousOfferRate.perSecond, burst: limits.anonymousOfferRate.burst)
        let allowed = bucket.take(now: now)
        offers[address] = (bucket, now)
        if offers.count >= sweepAt { sweep(now: now) }
        guard allowed else { return .failure(.addressTooFast) }
        guard perAddress[address, default: 0] < limits.anonymousPerIP else { return .failure(.addressFull) }
        guard sessions < limits.maximumSessions else { return .failure(.full) }
        guard anonymousSessions < limits.maximumSessions - limits.reservedSessions else { return .failure(.anonymousShareFull) }
        sessions += 1
        anonymousSessions += 1
        perAddress[address, default: 0] += 1
        return .success(Holder(address: address))
    }

    /// Gives back a session admitted as `holder`.
    mutating func release(_ holder: Holder) {
        sessions -= 1
        guard let address = holder.address else { return }
        anonymousSessions -= 1
        let left = perAddress[address, default: 1] - 1
        perAddress[address] = left > 0 ? left : nil
    }

    /// The number of anonymous sessions of `address` (tests, metrics).
    func anonymousSessions(of address: String) -> Int { perAddress[address, default: 0] }

    /// Forgets the buckets that have refilled since their last offer (such an address is as if
    /// new), so that the table holds only the addresses of the last few seconds.
    private mutating func sweep(now: Timestamp) {
        let refill = Duration.milliseconds(Int64((limits.anonymousOfferRate.burst / limits.anonymousOfferRate.perSecond * 1000).rounded(.up)))
        offers = offers.filter { now - $0.value.lastOffer < refill }
        sweepAt = max(1024, 2 * offers.count)
    }

    /// Addresses whose offer bucket is remembered (tests).
    var rememberedAddresses: Int { offers.count }
}
