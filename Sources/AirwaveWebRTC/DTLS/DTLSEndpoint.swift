import COpenSSL

/// One session's DTLS 1.2 endpoint, sans-IO: datagrams go in through `handleDatagram`, the
/// datagrams to send come out of every call, and `handleTimeout` retransmits a lost flight when
/// `timeout` says so. OpenSSL runs over memory BIOs; its output is cut into datagrams of at most
/// `mtu` bytes at DTLS record boundaries.
///
/// After the handshake the peer's certificate is checked against the SDP fingerprint, and the
/// SRTP keys are exported. Not thread-safe: one owner (the session) drives it.
///
/// The retransmission timer is OpenSSL's own (it reads the clock); `timeout` reports how long
/// until it fires, so the owner only needs to call back then.
///
/// Once connected, `release` frees OpenSSL's connection (about 43 KB after a handshake, more
/// than everything else of a session) and keeps only the close_notify it will send on `close`.
public final class DTLSEndpoint {
    public enum State: Equatable {
        case handshaking
        case connected(SRTPKeyingMaterial)
        case failed(DTLSError)
        /// The peer sent close_notify.
        case closed
    }

    public let role: DTLSRole
    public let remoteFingerprint: CertificateFingerprint
    public let mtu: Int
    public private(set) var state: State = .handshaking

    private let context: DTLSContext
    /// Nil once released.
    private var ssl: OpaquePointer?
    private let incoming: OpaquePointer
    private let outgoing: OpaquePointer
    /// The close_notify made when the connection was released, for `close`.
    private var releasedCloseNotify: [[UInt8]]?

    /// Whether `release` freed the connection: DTLS datagrams are ignored from then on.
    public var isReleased: Bool { ssl == nil }

    public init(context: DTLSContext, role: DTLSRole, remoteFingerprint: CertificateFingerprint,
                profiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80], mtu: Int = 1200) throws(DTLSError) {
        guard DTLSContext.digestLength(remoteFingerprint.algorithm) != nil else {
            throw .unsupportedFingerprintAlgorithm(remoteFingerprint.algorithm)
        }
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else { throw .openSSL(DTLSContext.errorQueue()) }
        guard let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .openSSL(DTLSContext.errorQueue())
        }
        airwave_bio_set_retry_on_empty(incoming)
        airwave_bio_set_retry_on_empty(outgoing)
        SSL_set_bio(ssl, incoming, outgoing)  // the SSL owns both BIOs now
        self.context = context
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        self.role = role
        self.remoteFingerprint = remoteFingerprint
        self.mtu = mtu
        airwave_ssl_set_mtu(ssl, mtu)
        guard SSL_set_tlsext_use_srtp(ssl, profiles.map(\.openSSLName).joined(separator: ":")) == 0 else {
            throw .openSSL(DTLSContext.errorQueue())
        }
        switch role {
        case .client: SSL_set_connect_state(ssl)
        case .server: SSL_set_accept_state(ssl)
        }
    }

    deinit {
        if let ssl { SSL_free(ssl) }  // frees the BIOs too
    }

    /// Frees the OpenSSL connection of a connected endpoint: what stays is the state (and the
    /// keys in it) and the close_notify `close` will send, made now. Made now it is still
    /// valid then: no other record goes out after the handshake, so its sequence number is
    /// the next one. From here on a datagram from the peer is ignored (a retransmitted flight
    /// is not answered, a close_notify not seen), so the owner releases only once the peer has
    /// stopped sending handshake flights.
    public func release() {
        guard case .connected = state, let ssl else { return }
        ERR_clear_error()
        SSL_shutdown(ssl)
        releasedCloseNotify = takeOutgoing()
        SSL_free(ssl)
        self.ssl = nil
    }

    /// Starts the handshake: the client's first flight (ClientHello); nothing for a server.
    public func start() -> [[UInt8]] {
        guard role == .client, state == .handshaking, ssl != nil else { return [] }
        advanceHandshake()
        return takeOutgoing()
    }

    /// Feeds one received DTLS datagram; returns the datagrams to send.
    public func handleDatagram(_ datagram: [UInt8]) -> [[UInt8]] {
        guard !datagram.isEmpty, datagram.count <= 65536, ssl != nil else { return [] }
        switch state {
        case .handshaking:
            _ = datagram.withUnsafeBytes { BIO_write(incoming, $0.baseAddress, Int32($0.count)) }
            advanceHandshake()
        case .connected:
            _ = datagram.withUnsafeBytes { BIO_write(incoming, $0.baseAddress, Int32($0.count)) }
            readApplicationData()
        case .failed, .closed:
            return []
        }
        return takeOutgoing()
    }

    /// How long until `handleTimeout` should be called, or nil when no timer runs.
    public var timeout: Duration? {
        guard state == .handshaking, let ssl else { return nil }
        let microseconds = airwave_dtls_timeout_microseconds(ssl)
        return microseconds < 0 ? nil : .microseconds(microseconds)
    }

    /// Retransmits the last flight if OpenSSL's timer has expired.
    public func handleTimeout() -> [[UInt8]] {
        guard state == .handshaking, let ssl else { return [] }
        ERR_clear_error()
        if airwave_dtls_handle_timeout(ssl) < 0 {
            state = .failed(.openSSL(DTLSContext.errorQueue()))
        }
        return takeOutgoing()
    }

    /// Sends close_notify.
    public func close() -> [[UInt8]] {
        guard case .connected = state else { return [] }
        guard let ssl else {
            state = .closed
            return releasedCloseNotify ?? []
        }
        SSL_shutdown(ssl)
        state = .closed
        return takeOutgoing()
    }

    private func advanceHandshake() {
        guard let ssl else { return }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            finishHandshake()
            return
        }
        let error = SSL_get_error(ssl, result)
        if error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE {
            state = .failed(.openSSL(DTLSContext.errorQueue()))
        }
    }

    private func finishHandshake() {
        guard let ssl, let peer = SSL_get1_peer_certificate(ssl) else {
            state = .failed(.fingerprintMismatch)
            return
        }
        defer { X509_free(peer) }
        guard let digest = DTLSContext.digest(of: peer, algorithm: remoteFingerprint.algorithm),
              CertificateFingerprint.format(digest) == remoteFingerprint.value
        else {
            state = .failed(.fingerprintMismatch)
            return
        }
        guard let selected = SSL_get_selected_srtp_profile(ssl),
              let profile = SRTPProfile(rawValue: UInt16(truncatingIfNeeded: selected.pointee.id))
        else {
            state = .failed(.noSRTPProfile)
            return
        }
        let length = 2 * (profile.keyLength + profile.saltLength)
        var exported = [UInt8](repeating: 0, count: length)
        let label = "EXTRACTOR-dtls_srtp"
        let status = SSL_export_keying_material(ssl, &exported, length, label, label.utf8.count, nil, 0, 0)
        guard status == 1 else {
            state = .failed(.openSSL(DTLSContext.errorQueue()))
            return
        }
        state = .connected(SRTPKeyingMaterial(profile: profile, exported: exported))
    }

    /// Consumes records after the handshake: there is no application data in DTLS-SRTP, but
    /// alerts (close_notify) and retransmitted handshake flights must be processed.
    private func readApplicationData() {
        guard let ssl else { return }
        var buffer = [UInt8](repeating: 0, count: 2048)
        ERR_clear_error()
        while true {
            let count = SSL_read(ssl, &buffer, Int32(buffer.count))
            if count > 0 { continue }
            let error = SSL_get_error(ssl, count)
            if error == SSL_ERROR_ZERO_RETURN { state = .closed }
            ERR_clear_error()
            return
        }
    }

    /// Takes what OpenSSL wrote and cuts it into datagrams at record boundaries.
    private func takeOutgoing() -> [[UInt8]] {
        let pending = Int(airwave_bio_pending(outgoing))
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = BIO_read(outgoing, &bytes, Int32(pending))
        guard read > 0 else { return [] }
        return Self.datagrams(fromRecords: bytes[0..<Int(read)], mtu: mtu)
    }

    /// Groups consecutive DTLS records (13-byte header, 16-bit length at offset 11) into
    /// datagrams no larger than `mtu` (a single larger record gets its own datagram).
    static func datagrams(fromRecords bytes: ArraySlice<UInt8>, mtu: Int) -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var current: [UInt8] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard bytes.endIndex - index >= 13 else { break }
            let length = Int(bytes[index + 11]) << 8 | Int(bytes[index + 12])
            let end = min(index + 13 + length, bytes.endIndex)
            if !current.isEmpty, current.count + (end - index) > mtu {
                datagrams.append(current)
                current = []
            }
            current += bytes[index..<end]
            index = end
        }
        if !current.isEmpty { datagrams.append(current) }
        return datagrams
    }
}

extension DTLSContext {
    /// Digest size for an SDP hash name, or nil if unsupported.
    static func digestLength(_ algorithm: String) -> Int? {
        switch algorithm.lowercased() {
        case "sha-1": 20
        case "sha-224": 28
        case "sha-256": 32
        case "sha-384": 48
        case "sha-512": 64
        default: nil
        }
    }
}
