import COpenSSL

/// Inbound SRTP and SRTCP for AES_CM_128_HMAC_SHA1_80 (RFC 3711) on OpenSSL's HMAC-SHA1 and
/// AES-128-CTR, keyed once per session (see `SRTPReceiver` for why not libsrtp).
final class SRTPCMReceiver: SRTPReceiver {
    private let rtcpCipher: OpaquePointer
    private let rtcpMAC: UnsafeMutablePointer<airwave_hmac_sha1>
    private let rtcpSalt: [UInt8]
    private var rtcpReplay = SRTPReplayWindows()
    private let rtpKeys: SRTPSessionKeys
    /// Made with the first SRTP packet (`rtpContexts`).
    private var rtpCipher: OpaquePointer?
    private var rtpMAC: UnsafeMutablePointer<airwave_hmac_sha1>?
    private var rtpReplay = SRTPReplayWindows()

    /// `masterKeyAndSalt`: the peer's 16-byte master key followed by its 14-byte master salt.
    init?(masterKeyAndSalt: [UInt8]) {
        guard let keys = SRTPSessionKeys(profile: .aes128CMHMACSHA1_80, masterKeyAndSalt: masterKeyAndSalt, rtcp: true),
              let rtpKeys = SRTPSessionKeys(profile: .aes128CMHMACSHA1_80, masterKeyAndSalt: masterKeyAndSalt, rtcp: false)
        else { return nil }
        let cipher = airwave_aes128ctr_context(keys.encryption)
        let mac = airwave_hmac_sha1_new(keys.authentication, 20)
        guard let cipher, let mac else {
            EVP_CIPHER_CTX_free(cipher)
            airwave_hmac_sha1_free(mac)
            return nil
        }
        rtcpCipher = cipher
        rtcpMAC = mac
        rtcpSalt = keys.salt
        self.rtpKeys = rtpKeys
    }

    deinit {
        EVP_CIPHER_CTX_free(rtcpCipher)
        airwave_hmac_sha1_free(rtcpMAC)
        EVP_CIPHER_CTX_free(rtpCipher)
        airwave_hmac_sha1_free(rtpMAC)
    }

    /// RFC 3711 3.1 and 4.2: header || ciphertext || tag, the tag the HMAC of header and
    /// ciphertext followed by the rollover counter; checked before anything is decrypted.
    func unprotectRTP(_ packet: inout [UInt8]) -> Bool {
        let tagLength = SRTPCMSender.tagLength
        guard let (headerLength, ssrc, index) = rtpReplay.check(packet, tagLength: tagLength), let (cipher, mac) = rtpContexts()
        else { return false }
        let rollover = UInt32(truncatingIfNeeded: index >> 16)
        var iv = [UInt8](repeating: 0, count: 16)
        SRTPCMSender.counterBlock(&iv, salt: rtpKeys.salt, ssrc: ssrc)
        SRTPPacketLayout.xor(&iv, rollover, at: 8)
        iv[12] ^= UInt8(truncatingIfNeeded: index >> 8)
        iv[13] ^= UInt8(truncatingIfNeeded: index)
        let authenticatedLength = packet.count - tagLength
        let roc = SRTPPacketLayout.bytes(rollover)
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_cm_unprotect(cipher, mac, iv, buffer.baseAddress, Int32(headerLength),
                                      Int32(authenticatedLength), Int32(authenticatedLength), roc, Int32(roc.count))
        }
        guard status == 1 else { return false }
        rtpReplay.record(ssrc: ssrc, index: index)
        packet.removeLast(tagLength)
        return true
    }

    /// The SRTP cipher and MAC, made on first use; nil if OpenSSL fails.
    private func rtpContexts() -> (OpaquePointer, UnsafeMutablePointer<airwave_hmac_sha1>)? {
        if let rtpCipher, let rtpMAC { return (rtpCipher, rtpMAC) }
        if rtpCipher == nil { rtpCipher = airwave_aes128ctr_context(rtpKeys.encryption) }
        if rtpMAC == nil { rtpMAC = airwave_hmac_sha1_new(rtpKeys.authentication, 20) }
        guard let rtpCipher, let rtpMAC else { return nil }
        return (rtpCipher, rtpMAC)
    }

    /// RFC 3711 3.4: header || ciphertext || E flag and SRTCP index || tag, the tag the HMAC of
    /// all before it; checked before anything is decrypted.
    func unprotectRTCP(_ packet: inout [UInt8]) -> Bool {
        let headerLength = SRTPPacketLayout.rtcpHeaderLength
        let tagLength = SRTPCMSender.tagLength
        guard packet.count >= headerLength + 4 + tagLength, packet.count <= 65536 else { return false }
        let authenticatedLength = packet.count - tagLength
        let trailer = SRTPPacketLayout.word(packet, at: authenticatedLength - 4)
        let index = trailer & 0x7FFF_FFFF
        let ssrc = SRTPPacketLayout.word(packet, at: 4)
        guard rtcpReplay.allows(ssrc: ssrc, index: UInt64(index)) else { return false }
        var iv = [UInt8](repeating: 0, count: 16)
        SRTPCMSender.counterBlock(&iv, salt: rtcpSalt, ssrc: ssrc)
        SRTPPacketLayout.xor(&iv, index, at: 10)
        // E clear: the payload was sent unencrypted, only authenticated.
        let encryptedEnd = trailer & 0x8000_0000 != 0 ? authenticatedLength - 4 : headerLength
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_cm_unprotect(rtcpCipher, rtcpMAC, iv, buffer.baseAddress, Int32(headerLength),
                                      Int32(encryptedEnd), Int32(authenticatedLength), nil, 0)
        }
        guard status == 1 else { return false }
        rtcpReplay.record(ssrc: ssrc, index: UInt64(index))
        packet.removeLast(4 + tagLength)
        return true
    }
}
