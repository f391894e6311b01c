import CSRTP

@testable import AirwaveWebRTC

/// libsrtp2, the reference the OpenSSL senders and receivers are compared with byte for byte
/// (the server itself no longer uses it). One context per direction, as `SRTPSession` was
/// before issue 17 moved both directions to OpenSSL.
final class LibsrtpSession {
    private static let initialized: Bool = srtp_init() == srtp_err_status_ok
    private let outbound: srtp_t?
    private let inbound: srtp_t

    /// `receiveOnly`: no sending context (what a WHEP listener's session held before, for the
    /// memory report). `replayWindow` as libsrtp counts it (the server's was 1,024).
    /// `rtcpAuthenticationOnly`: SRTCP sent unencrypted (E flag clear), only authenticated.
    init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole, replayWindow: UInt = 1024, receiveOnly: Bool = false,
         rtcpAuthenticationOnly: Bool = false) throws {
        guard Self.initialized else { throw SRTPError.creation(5) }
        outbound = receiveOnly ? nil : try Self.context(keyingMaterial.profile, key: keyingMaterial.sendingKey(for: role),
                                                        direction: ssrc_any_outbound, window: replayWindow,
                                                        rtcpAuthenticationOnly: rtcpAuthenticationOnly)
        do {
            inbound = try Self.context(keyingMaterial.profile, key: keyingMaterial.receivingKey(for: role),
                                       direction: ssrc_any_inbound, window: replayWindow,
                                       rtcpAuthenticationOnly: rtcpAuthenticationOnly)
        } catch {
            if let outbound { srtp_dealloc(outbound) }
            throw error
        }
    }

    deinit {
        if let outbound { srtp_dealloc(outbound) }
        srtp_dealloc(inbound)
    }

    private static func context(_ profile: SRTPProfile, key: [UInt8], direction: srtp_ssrc_type_t, window: UInt,
                                rtcpAuthenticationOnly: Bool) throws -> srtp_t {
        var policy = srtp_policy_t()
        switch profile {
        case .aes128CMHMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        }
        if rtcpAuthenticationOnly { policy.rtcp.sec_serv = sec_serv_auth }
        policy.ssrc.type = direction
        policy.window_size = window
        policy.allow_repeat_tx = 1
        var keyBytes = key
        var session: srtp_t?
        let status = keyBytes.withUnsafeMutableBufferPointer { buffer in
            policy.key = buffer.baseAddress
            return srtp_create(&session, &policy)  // copies the key
        }
        guard status == srtp_err_status_ok, let session else { throw SRTPError.creation(Int32(bitPattern: status.rawValue)) }
        return session
    }

    func protectRTP(_ packet: inout [UInt8]) throws {
        guard let outbound else { throw SRTPError.protect(2) }
        if let code = transform(&packet, grow: true, { srtp_protect(outbound, $0, $1) }) { throw SRTPError.protect(code) }
    }

    func unprotectRTP(_ packet: inout [UInt8]) throws {
        if let code = transform(&packet, grow: false, { srtp_unprotect(inbound, $0, $1) }) { throw SRTPError.unprotect(code) }
    }

    func protectRTCP(_ packet: inout [UInt8]) throws {
        guard let outbound else { throw SRTPError.protect(2) }
        if let code = transform(&packet, grow: true, { srtp_protect_rtcp(outbound, $0, $1) }) { throw SRTPError.protect(code) }
    }

    func unprotectRTCP(_ packet: inout [UInt8]) throws {
        if let code = transform(&packet, grow: false, { srtp_unprotect_rtcp(inbound, $0, $1) }) { throw SRTPError.unprotect(code) }
    }

    private func transform(_ packet: inout [UInt8], grow: Bool,
                           _ body: (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t) -> Int32? {
        guard packet.count >= 12, packet.count <= 65536 else { return Int32(bitPattern: srtp_err_status_bad_param.rawValue) }
        var length = Int32(packet.count)
        if grow { packet.append(contentsOf: repeatElement(0, count: SRTPSession.trailerCapacity)) }
        let status = packet.withUnsafeMutableBytes { body($0.baseAddress!, &length) }
        guard status == srtp_err_status_ok else {
            if grow { packet.removeLast(SRTPSession.trailerCapacity) }
            return Int32(bitPattern: status.rawValue)
        }
        packet.removeLast(packet.count - Int(length))
        return nil
    }
}

/// What the tests protect and unprotect with: the server's `SRTPSession` or the reference.
protocol SRTPProtecting {
    func protectRTP(_ packet: inout [UInt8]) throws
    func unprotectRTP(_ packet: inout [UInt8]) throws
    func protectRTCP(_ packet: inout [UInt8]) throws
    func unprotectRTCP(_ packet: inout [UInt8]) throws
}

extension SRTPSession: SRTPProtecting {}
extension LibsrtpSession: SRTPProtecting {}
