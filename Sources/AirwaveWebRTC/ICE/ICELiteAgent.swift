/// The ICE-lite side of one WebRTC session (RFC 8445 §2.5, RFC 7675).
///
/// The peer's connectivity checks are answered: a check is verified when its USERNAME is
/// `localUfrag:remoteUfrag`, its MESSAGE-INTEGRITY verifies with the local password, and its
/// FINGERPRINT (if any) is right; the answer is a success response with XOR-MAPPED-ADDRESS,
/// MESSAGE-INTEGRITY and FINGERPRINT.
///
/// Consent before a new address (RFC 7675 §5.1): a verified check proves only that the peer
/// knows the password, not that the address it appears to come from wants traffic, since a UDP
/// source is easy to forge. So the first verified check from an address makes the agent send
/// a check of its own there (USERNAME `remoteUfrag:localUfrag`, the peer's password,
/// ICE-CONTROLLED, a random 96-bit transaction ID), sent again after `probeInterval`,
/// doubling, at most `probeAttempts` times. Only when the address answers it with a success
/// response carrying that transaction ID and the peer's MESSAGE-INTEGRITY is it *consented*:
/// nothing but STUN answers goes to an address before that, and a nomination from it waits
/// until then. A forged check can make the server send one answer and a few small checks to
/// the forged address, never media.
///
/// Nomination: a check with USE-CANDIDATE nominates the (consented) address it came from.
/// With regular nomination there is one such check (or a later one to move the session, which
/// is followed); with aggressive nomination every check carries it, and the address with the
/// highest PRIORITY wins, so a low-priority relay path that happened to answer first is
/// replaced by a better one. A nominated address is replaced by a lower-priority one only once
/// it has gone `switchAfter` without a check.
///
/// Consent freshness: the peer keeps sending checks on the selected address (browsers every
/// ≈5 s); when none has verified (and no check of the agent's own was answered there) for
/// `consentTimeout`, the session is `expired`. Time is an input: the agent reads no clock.
public struct ICELiteAgent: Sendable {
    public struct Configuration: Sendable {
        /// Without a verified check on the selected address for this long, consent is lost.
        public var consentTimeout: Duration = .seconds(30)
        /// A session that never gets a verified check expires after this long.
        public var connectTimeout: Duration = .seconds(30)
        /// A nominated address with no check for this long can be replaced by a lower-priority
        /// nomination.
        public var switchAfter: Duration = .seconds(2)
        /// The agent's own check to a new address is sent again after this, then after twice
        /// as long, and so on.
        public var probeInterval: Duration = .milliseconds(250)
        /// Transmissions of one check to an address before the agent gives up on it (a later
        /// verified check from there starts again).
        public var probeAttempts = 5
        /// Addresses checked at once; a verified check from one more is answered but not probed.
        public var maximumProbes = 4
        /// Addresses remembered as having sent a verified check (the UDP driver routes their
        /// datagrams to the session); more are answered but not remembered.
        public var maximumAddresses = 16
        public init() {}
    }

    /// What the owner must do after `handleSTUN` or `handleTimer`, in order.
    public enum Action: Equatable, Sendable {
        /// Send this datagram: an answer to a check, or a check of the agent's own.
        case send([UInt8], to: TransportAddress)
        /// This address answered the agent's check: from now on it may be sent to, and held
        /// datagrams from it can be processed.
        case consented(TransportAddress)
    }

    public enum State: Equatable, Sendable {
        /// No nominated address yet.
        case checking
        /// Media flows to `selected`.
        case connected
        /// Consent lost or never obtained; the session should be closed.
        case expired
    }

    /// A check of the agent's own, waiting for its answer.
    private struct Probe: Sendable {
        var transactionID: [UInt8]
        var transmissions: Int
        var nextTransmission: ContinuousClock.Instant
        /// The highest PRIORITY of a nominating check from the address while it was probed:
        /// the nomination takes effect when the address consents.
        var nomination: UInt32?
    }

    /// PRIORITY of the agent's own checks: a host candidate's (RFC 8445 §5.1.2.1, type 126,
    /// local preference 65535, component 1).
    static let probePriority: UInt32 = 126 << 24 | 65535 << 8 | 255

    public let localUfrag: String
    public let localPassword: String
    public let remoteUfrag: String
    /// The peer's `a=ice-pwd`: keys the agent's own checks and the answers to them.
    public let remotePassword: String
    public let configuration: Configuration

    public private(set) var state: State = .checking
    /// The nominated remote address media is sent to.
    public private(set) var selected: TransportAddress?
    private var selectedPriority: UInt32 = 0
    private var lastCheckOnSelected: ContinuousClock.Instant?
    private let createdAt: ContinuousClock.Instant
    /// Addresses that have sent a verified check.
    public private(set) var validatedAddresses: Set<TransportAddress> = []
    /// Addresses that answered the agent's own check: the only ones sent anything but answers,
    /// and the only ones whose DTLS, RTP and RTCP are accepted.
    public private(set) var consentedAddresses: Set<TransportAddress> = []
    private var probes: [TransportAddress: Probe] = [:]
    private let tieBreaker: [UInt8]

    public init(localUfrag: String, localPassword: String, remoteUfrag: String, remotePassword: String,
                configuration: Configuration = Configuration(), now: ContinuousClock.Instant) {
        self.localUfrag = localUfrag
        self.localPassword = localPassword
        self.remoteUfrag = remoteUfrag
        self.remotePassword = remotePassword
        self.configuration = configuration
        self.createdAt = now
        self.tieBreaker = Crypto.randomBytes(8)
    }

    /// The USERNAME a check addressed to this agent carries.
    public var expectedUsername: String { "\(localUfrag):\(remoteUfrag)" }

    /// The local ufrag from a check's USERNAME (`local:remote`): how the driver finds the
    /// session a first check belongs to.
    public static func localUfrag(fromUsername username: String) -> Substring? {
        guard let colon = username.firstIndex(of: ":") else { return nil }
        return username[..<colon]
    }

    /// Whether the agent is waiting for an answer from `address`.
    public func isProbing(_ address: TransportAddress) -> Bool { probes[address] != nil }

    /// Handles a STUN datagram from `source`: a check to answer, or an answer to the agent's own.
    public mutating func handleSTUN(_ datagram: [UInt8], from source: TransportAddress,
                                    now: ContinuousClock.Instant) -> [Action] {
        guard state != .expired, let message = try? STUNMessage.parse(datagram) else { return [] }
        switch message.messageClass {
        case .request:
            return handleRequest(message, datagram, from: source, now: now)
        case .successResponse:
            return handleSuccess(message, datagram, from: source, now: now)
        case .errorResponse, .indication:
            // Keep-alive indications need no answer; an error answer leaves the probe to its timer.
            return []
        }
    }

    private mutating func handleRequest(_ message: STUNMessage, _ datagram: [UInt8], from source: TransportAddress,
                                        now: ContinuousClock.Instant) -> [Action] {
        guard message.method == STUNMessage.bindingMethod else {
            return [.send(errorResponse(to: message, code: 400, reason: "Bad Request"), to: source)]
        }
        guard let username = message.attribute(.username)?.stringValue,
              message.attribute(.messageIntegrity) != nil
        else {
            return [.send(errorResponse(to: message, code: 400, reason: "Bad Request"), to: source)]
        }
        guard username == expectedUsername,
              (try? STUNMessage.verifyMessageIntegrity(datagram, password: localPassword)) != nil
        else {
            return [.send(errorResponse(to: message, code: 401, reason: "Unauthorized"), to: source)]
        }
        let response = STUNMessage(
            messageClass: .successResponse, transactionID: message.transactionID,
            attributes: [.xorMappedAddress(source, transactionID: message.transactionID)])
        var actions: [Action] = [.send(response.serialized(integrityPassword: localPassword, fingerprint: true), to: source)]
        if !validatedAddresses.contains(source), validatedAddresses.count < configuration.maximumAddresses {
            validatedAddresses.insert(source)
        }
        let priority = message.attribute(.priority)?.uint32Value ?? 0
        let nominates = message.attribute(.useCandidate) != nil
        if consentedAddresses.contains(source) {
            if nominates { nominate(source, priority: priority, now: now) }
            if source == selected { lastCheckOnSelected = now }
        } else if validatedAddresses.contains(source) {
            if probes[source] == nil, probes.count < configuration.maximumProbes {
                let probe = Probe(transactionID: Crypto.randomBytes(12), transmissions: 1,
                                  nextTransmission: now + configuration.probeInterval)
                probes[source] = probe
                actions.append(.send(check(probe.transactionID), to: source))
            }
            if nominates, var probe = probes[source] {
                probe.nomination = max(probe.nomination ?? 0, priority)
                probes[source] = probe
            }
        }
        return actions
    }

    private mutating func handleSuccess(_ message: STUNMessage, _ datagram: [UInt8], from source: TransportAddress,
                                        now: ContinuousClock.Instant) -> [Action] {
        // The answer must come from the address checked (RFC 8445 §7.2.5.2.1), name the
        // check's transaction and be signed with the peer's password.
        guard let probe = probes[source], probe.transactionID == message.transactionID,
              (try? STUNMessage.verifyMessageIntegrity(datagram, password: remotePassword)) != nil
        else { return [] }
        probes[source] = nil
        consentedAddresses.insert(source)
        if let priority = probe.nomination { nominate(source, priority: priority, now: now) }
        if source == selected { lastCheckOnSelected = now }
        return [.consented(source)]
    }

    private mutating func nominate(_ source: TransportAddress, priority: UInt32, now: ContinuousClock.Instant) {
        if let selected, selected != source {
            let stale = lastCheckOnSelected.map { now - $0 >= configuration.switchAfter } ?? true
            guard priority >= selectedPriority || stale else { return }
        }
        selected = source
        selectedPriority = priority
        lastCheckOnSelected = now
        state = .connected
    }

    /// The agent's own Binding request, as the controlled agent of the pair.
    private func check(_ transactionID: [UInt8]) -> [UInt8] {
        let priority = Self.probePriority
        let message = STUNMessage(
            messageClass: .request, transactionID: transactionID,
            attributes: [
                .username("\(remoteUfrag):\(localUfrag)"),
                STUNAttribute(.priority, value: [UInt8(priority >> 24), UInt8((priority >> 16) & 0xFF),
                                                  UInt8((priority >> 8) & 0xFF), UInt8(priority & 0xFF)]),
                STUNAttribute(.iceControlled, value: tieBreaker),
            ])
        return message.serialized(integrityPassword: remotePassword, fingerprint: true)
    }

    /// Whether media from `source` may be accepted: only from consented addresses.
    public func accepts(mediaFrom source: TransportAddress) -> Bool {
        consentedAddresses.contains(source)
    }

    /// Advances time: sends the agent's checks again (same transaction, RFC 8489 §6.2.1) or
    /// gives up on them, and expires the session when consent (or the first nomination) times out.
    public mutating func handleTimer(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .checking:
            if now - createdAt >= configuration.connectTimeout { state = .expired }
        case .connected:
            if let last = lastCheckOnSelected, now - last >= configuration.consentTimeout { state = .expired }
        case .expired:
            break
        }
        guard state != .expired else {
            probes = [:]
            return []
        }
        var actions: [Action] = []
        // Sorted so that the datagrams of one pass come out in a stable order.
        for address in probes.keys.sorted(by: { "\($0)" < "\($1)" }) {
            guard var probe = probes[address], now >= probe.nextTransmission else { continue }
            guard probe.transmissions < configuration.probeAttempts else {
                probes[address] = nil
                continue
            }
            probe.transmissions += 1
            probe.nextTransmission = now + configuration.probeInterval * (1 << (probe.transmissions - 1))
            probes[address] = probe
            actions.append(.send(check(probe.transactionID), to: address))
        }
        return actions
    }

    /// When `handleTimer` should next run.
    public var nextTimer: ContinuousClock.Instant? {
        let expiry: ContinuousClock.Instant? = switch state {
        case .checking: createdAt + configuration.connectTimeout
        case .connected: lastCheckOnSelected.map { $0 + configuration.consentTimeout }
        case .expired: nil
        }
        guard state != .expired else { return nil }
        // Asked for every session on every timer pass: no arrays.
        var earliest = expiry
        for probe in probes.values where earliest.map({ probe.nextTransmission < $0 }) ?? true {
            earliest = probe.nextTransmission
        }
        return earliest
    }

    /// An unsigned error response (the request could not be authenticated, so it is not
    /// signed either), with FINGERPRINT.
    private func errorResponse(to request: STUNMessage, code: Int, reason: String) -> [UInt8] {
        let response = STUNMessage(
            method: request.method, messageClass: .errorResponse, transactionID: request.transactionID,
            attributes: [.errorCode(code, reason: reason)])
        return response.serialized(fingerprint: true)
    }
}
