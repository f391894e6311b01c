import CSRTP

/// Why SRTP set-up, protection or unprotection failed (libsrtp2's status code).
public enum SRTPError: Error, Equatable, Sendable {
    case initialization(Int32)
    case creation(Int32)
    case protect(Int32)
    case unprotect(Int32)
}

/// libsrtp2 must be initialized once per process; Swift runs a global's initializer once.
private let srtpLibraryStatus: Int32 = Int32(bitPattern: srtp_init().rawValue)

/// The SRTP/SRTCP protection of one session on OpenSSL: what this side sends (its own key from
/// the DTLS export) through an `SRTPSender`, what it receives (the peer's key) through an
/// `SRTPReceiver`, either profile. Retransmissions of the same packet are allowed, which NACK
/// answers need; received packets are replay-checked. Not thread-safe.
public final class SRTPSession {
    public let profile: SRTPProfile
    /// libsrtp's contexts: only when the tests ask for the reference.
    private let outbound: srtp_t?
    private let inbound: srtp_t?
    private let sender: (any SRTPSender)?
    private let receiver: (any SRTPReceiver)?
    /// Room a protected packet may grow by (authentication tag, SRTCP index; libsrtp's MKI):
    /// what serializing reserves, so protection does not reallocate.
    static let trailerCapacity = 148

    /// `role` is this side's DTLS role: it picks which exported key is sent with.
    /// `replayWindow` is the reference's (libsrtp); the session's is `SRTPReplayWindow.size`.
    public convenience init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole, replayWindow: UInt = 1024) throws(SRTPError) {
        try self.init(keyingMaterial: keyingMaterial, role: role, replayWindow: replayWindow, openSSL: true)
    }

    /// `openSSL: false` protects and unprotects everything with libsrtp instead (the reference
    /// the tests compare with).
    init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole, replayWindow: UInt = 1024, openSSL: Bool) throws(SRTPError) {
        guard srtpLibraryStatus == 0 else { throw .initialization(srtpLibraryStatus) }
        profile = keyingMaterial.profile
        let receivingKey = keyingMaterial.receivingKey(for: role)
        if openSSL {
            guard let sender = makeSRTPSender(profile: profile, masterKeyAndSalt: keyingMaterial.sendingKey(for: role)),
                  let receiver = makeSRTPReceiver(profile: profile, masterKeyAndSalt: receivingKey)
            else {
                throw .creation(Int32(bitPattern: srtp_err_status_init_fail.rawValue))
            }
            self.sender = sender
            self.receiver = receiver
            outbound = nil
            inbound = nil
        } else {
            sender = nil
            receiver = nil
            outbound = try Self.makeContext(
                profile: keyingMaterial.profile, key: keyingMaterial.sendingKey(for: role),
                direction: ssrc_any_outbound, window: replayWindow)
            do {
                inbound = try Self.makeContext(profile: profile, key: receivingKey, direction: ssrc_any_inbound,
                                                  window: replayWindow)
            } catch {
                if let outbound { srtp_dealloc(outbound) }
                throw error
            }
        }
    }

    deinit {
        if let outbound { srtp_dealloc(outbound) }
        if let inbound { srtp_dealloc(inbound) }
    }

    private static func makeContext(profile: SRTPProfile, key: [UInt8], direction: srtp_ssrc_type_t,
                                    window: UInt) throws(SRTPError) -> srtp_t {
        var policy = srtp_policy_t()
        switch profile {
        case .aes128CMHMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        }
        policy.ssrc.type = direction
        policy.window_size = window
        policy.allow_repeat_tx = 1
        var keyBytes = key
        var session: srtp_t?
        let status = keyBytes.withUnsafeMutableBufferPointer { buffer in
            policy.key = buffer.baseAddress
            return srtp_create(&session, &policy)  // copies the key
        }
        guard status == srtp_err_status_ok, let session else {
            throw .creation(Int32(bitPattern: status.rawValue))
        }
        return session
    }

    /// Encrypts and authenticates an RTP packet in place.
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let sender {
            guard packet.count <= 65536, sender.protectRTP(&packet) else { throw Self.senderFailure }
        } else if let outbound {
            if let code = transform(&packet, grow: true, { srtp_protect(outbound, $0, $1) }) { throw .protect(code) }
        }
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet in place.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let receiver {
            guard receiver.unprotectRTP(&packet) else { throw Self.receiverFailure }
        } else if let inbound {
            if let code = transform(&packet, grow: false, { srtp_unprotect(inbound, $0, $1) }) { throw .unprotect(code) }
        }
    }

    /// Encrypts and authenticates an RTCP compound in place.
    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let sender {
            guard packet.count <= 65536, sender.protectRTCP(&packet) else { throw Self.senderFailure }
        } else if let outbound {
            if let code = transform(&packet, grow: true, { srtp_protect_rtcp(outbound, $0, $1) }) { throw .protect(code) }
        }
    }

    /// What a refusal of the OpenSSL sender is reported as: libsrtp's code for the same cases.
    private static let senderFailure = SRTPError.protect(Int32(bitPattern: srtp_err_status_bad_param.rawValue))

    /// Authenticates, replay-checks and decrypts an SRTCP packet in place.
    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let receiver {
            guard receiver.unprotectRTCP(&packet) else { throw Self.receiverFailure }
        } else if let inbound {
            if let code = transform(&packet, grow: false, { srtp_unprotect_rtcp(inbound, $0, $1) }) {
                throw .unprotect(code)
            }
        }
    }

    /// What a refusal of the OpenSSL receiver is reported as (it does not tell a forged packet
    /// from a replayed one): libsrtp's code for a failed authentication.
    private static let receiverFailure = SRTPError.unprotect(Int32(bitPattern: srtp_err_status_auth_fail.rawValue))

    private func transform(_ packet: inout [UInt8], grow: Bool,
                           _ body: (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t)
        -> Int32?
    {
        guard packet.count >= 12, packet.count <= 65536 else {
            return Int32(bitPattern: srtp_err_status_bad_param.rawValue)
        }
        var length = Int32(packet.count)
        if grow { packet.append(contentsOf: repeatElement(0, count: Self.trailerCapacity)) }
        let status = packet.withUnsafeMutableBytes { body($0.baseAddress!, &length) }
        guard status == srtp_err_status_ok else {
            if grow { packet.removeLast(Self.trailerCapacity) }
            return Int32(bitPattern: status.rawValue)
        }
        packet.removeLast(packet.count - Int(length))
        return nil
    }
}
