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

/// The SRTP/SRTCP contexts of one session (libsrtp2): one for what this side sends (its own
/// key from the DTLS export) and one for what it receives (the peer's). Retransmissions of the
/// same packet are allowed (`allow_repeat_tx`), which NACK answers need. Not thread-safe.
public final class SRTPSession {
    public let profile: SRTPProfile
    private let outbound: srtp_t
    private let inbound: srtp_t
    /// RTP this side sends under AEAD_AES_128_GCM, on OpenSSL (see `SRTPGCMSender`).
    private let gcmSender: SRTPGCMSender?
    /// Room libsrtp may append (authentication tag, MKI) when protecting.
    static let trailerCapacity = 148

    /// `role` is this side's DTLS role: it picks which exported key is sent with.
    public convenience init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole, replayWindow: UInt = 1024) throws(SRTPError) {
        try self.init(keyingMaterial: keyingMaterial, role: role, replayWindow: replayWindow, openSSLForGCM: true)
    }

    /// `openSSLForGCM: false` keeps libsrtp for everything (the tests compare the two).
    init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole, replayWindow: UInt = 1024, openSSLForGCM: Bool) throws(SRTPError) {
        guard srtpLibraryStatus == 0 else { throw .initialization(srtpLibraryStatus) }
        profile = keyingMaterial.profile
        gcmSender = openSSLForGCM && profile == .aeadAES128GCM
            ? SRTPGCMSender(masterKeyAndSalt: keyingMaterial.sendingKey(for: role)) : nil
        outbound = try Self.makeContext(
            profile: keyingMaterial.profile, key: keyingMaterial.sendingKey(for: role),
            direction: ssrc_any_outbound, window: replayWindow)
        do {
            inbound = try Self.makeContext(
                profile: keyingMaterial.profile, key: keyingMaterial.receivingKey(for: role),
                direction: ssrc_any_inbound, window: replayWindow)
        } catch {
            srtp_dealloc(outbound)
            throw error
        }
    }

    deinit {
        srtp_dealloc(outbound)
        srtp_dealloc(inbound)
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
        if let gcmSender {
            guard packet.count <= 65536, gcmSender.protect(&packet) else {
                throw .protect(Int32(bitPattern: srtp_err_status_bad_param.rawValue))
            }
            return
        }
        if let code = transform(&packet, grow: true, { srtp_protect(outbound, $0, $1) }) { throw .protect(code) }
    }

    /// Authenticates and decrypts an SRTP packet in place.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let code = transform(&packet, grow: false, { srtp_unprotect(inbound, $0, $1) }) { throw .unprotect(code) }
    }

    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let code = transform(&packet, grow: true, { srtp_protect_rtcp(outbound, $0, $1) }) { throw .protect(code) }
    }

    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        if let code = transform(&packet, grow: false, { srtp_unprotect_rtcp(inbound, $0, $1) }) { throw .unprotect(code) }
    }

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
