/// The ICE-lite side of one WebRTC session (RFC 8445 §2.5, RFC 7675).
///
/// The server only answers connectivity checks: it never sends one. A check is accepted when
/// its USERNAME is `localUfrag:remoteUfrag`, its MESSAGE-INTEGRITY verifies with the local
/// password, and its FINGERPRINT (if any) is right; the answer is a success response with
/// XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT.
///
/// Nomination: a check with USE-CANDIDATE nominates the address it came from. With regular
/// nomination there is one such check (or a later one to move the session, which is followed);
/// with aggressive nomination every check carries it, and the address with the highest
/// PRIORITY wins, so a low-priority relay path that happened to answer first is replaced by a
/// better one. A nominated address is replaced by a lower-priority one only once it has gone
/// `switchAfter` without a check.
///
/// Consent (RFC 7675): the peer keeps sending checks on the selected address (browsers every
/// ≈5 s); when none has verified for `consentTimeout`, the session is `expired`. Time is an
/// input: the agent reads no clock.
public struct ICELiteAgent: Sendable {
    public struct Configuration: Sendable {
        /// Without a verified check on the selected address for this long, consent is lost.
        public var consentTimeout: Duration = .seconds(30)
        /// A session that never gets a verified check expires after this long.
        public var connectTimeout: Duration = .seconds(30)
        /// A nominated address with no check for this long can be replaced by a lower-priority
        /// nomination.
        public var switchAfter: Duration = .seconds(2)
        public init() {}
    }

    /// What happened to a datagram passed to `handleSTUN`.
    public enum Outcome: Equatable, Sendable {
        /// Send `response` back to the sender.
        case respond(response: [UInt8])
        /// Answer with this error response (400 or 401), as RFC 8489 asks.
        case reject(response: [UInt8])
        /// Not for this agent or malformed: drop silently.
        case ignore
    }

    public enum State: Equatable, Sendable {
        /// No nominated address yet.
        case checking
        /// Media flows to `selected`.
        case connected
        /// Consent lost or never obtained; the session should be closed.
        case expired
    }

    public let localUfrag: String
    public let localPassword: String
    public let remoteUfrag: String
    public let configuration: Configuration

    public private(set) var state: State = .checking
    /// The nominated remote address media is sent to.
    public private(set) var selected: TransportAddress?
    private var selectedPriority: UInt32 = 0
    private var lastCheckOnSelected: ContinuousClock.Instant?
    private let createdAt: ContinuousClock.Instant
    /// Addresses that have sent a verified check (media from others is dropped).
    public private(set) var validatedAddresses: Set<TransportAddress> = []

    public init(localUfrag: String, localPassword: String, remoteUfrag: String,
                configuration: Configuration = Configuration(), now: ContinuousClock.Instant) {
        self.localUfrag = localUfrag
        self.localPassword = localPassword
        self.remoteUfrag = remoteUfrag
        self.configuration = configuration
        self.createdAt = now
    }

    /// The USERNAME a check addressed to this agent carries.
    public var expectedUsername: String { "\(localUfrag):\(remoteUfrag)" }

    /// The local ufrag from a check's USERNAME (`local:remote`): how the driver finds the
    /// session a first check belongs to.
    public static func localUfrag(fromUsername username: String) -> Substring? {
        guard let colon = username.firstIndex(of: ":") else { return nil }
        return username[..<colon]
    }

    /// Handles a STUN datagram from `source`.
    public mutating func handleSTUN(_ datagram: [UInt8], from source: TransportAddress,
                                    now: ContinuousClock.Instant) -> Outcome {
        guard state != .expired, let message = try? STUNMessage.parse(datagram) else { return .ignore }
        // Responses and indications (keep-alive Binding indications) need no answer.
        guard message.messageClass == .request else { return .ignore }
        guard message.method == STUNMessage.bindingMethod else {
            return .reject(response: errorResponse(to: message, code: 400, reason: "Bad Request"))
        }
        guard let username = message.attribute(.username)?.stringValue,
              message.attribute(.messageIntegrity) != nil
        else {
            return .reject(response: errorResponse(to: message, code: 400, reason: "Bad Request"))
        }
        guard username == expectedUsername,
              (try? STUNMessage.verifyMessageIntegrity(datagram, password: localPassword)) != nil
        else {
            return .reject(response: errorResponse(to: message, code: 401, reason: "Unauthorized"))
        }
        validatedAddresses.insert(source)
        let priority = message.attribute(.priority)?.uint32Value ?? 0
        if message.attribute(.useCandidate) != nil {
            nominate(source, priority: priority, now: now)
        }
        if source == selected { lastCheckOnSelected = now }
        let response = STUNMessage(
            messageClass: .successResponse, transactionID: message.transactionID,
            attributes: [.xorMappedAddress(source, transactionID: message.transactionID)])
        return .respond(response: response.serialized(integrityPassword: localPassword, fingerprint: true))
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

    /// Whether media from `source` may be accepted: only from addresses that passed a check.
    public func accepts(mediaFrom source: TransportAddress) -> Bool {
        validatedAddresses.contains(source)
    }

    /// Advances time: expires the session when consent (or the first nomination) times out.
    public mutating func handleTimer(now: ContinuousClock.Instant) {
        switch state {
        case .checking:
            if now - createdAt >= configuration.connectTimeout { state = .expired }
        case .connected:
            if let last = lastCheckOnSelected, now - last >= configuration.consentTimeout { state = .expired }
        case .expired:
            break
        }
    }

    /// When `handleTimer` should next run.
    public var nextTimer: ContinuousClock.Instant? {
        switch state {
        case .checking: createdAt + configuration.connectTimeout
        case .connected: lastCheckOnSelected.map { $0 + configuration.consentTimeout }
        case .expired: nil
        }
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
