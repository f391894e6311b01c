import COpenSSL

/// Inbound SRTP and SRTCP for AEAD_AES_128_GCM (RFC 7714) on OpenSSL's AES-GCM, keyed once per
/// session (see `SRTPReceiver` for why not libsrtp).
final class SRTPGCMReceiver: SRTPReceiver {
    private let rtcpContext: OpaquePointer
    private let rtcpSalt: [UInt8]
    private var rtcpReplay = SRTPReplayWindows()
    private let rtpKeys: SRTPSessionKeys
    /// Made with the first SRTP packet.
    private var rtpContext: OpaquePointer?
    private var rtpReplay = SRTPReplayWindows()

    /// `masterKeyAndSalt`: the peer's 16-byte master key followed by its 12-byte master salt.
    init?(masterKeyAndSalt: [UInt8]) {
        guard let keys = SRTPSessionKeys(profile: .aeadAES128GCM, masterKeyAndSalt: masterKeyAndSalt, rtcp: true),
              let rtpKeys = SRTPSessionKeys(profile: .aeadAES128GCM, masterKeyAndSalt: masterKeyAndSalt, rtcp: false),
              let context = airwave_aes128gcm_decrypt_context(keys.encryption)
        else { return nil }
        rtcpContext = context
        rtcpSalt = keys.salt
        self.rtpKeys = rtpKeys
    }

    deinit {
        EVP_CIPHER_CTX_free(rtcpContext)
        EVP_CIPHER_CTX_free(rtpContext)
    }

    /// RFC 7714 section 8: header || ciphertext || tag; the AAD is the header.
    func unprotectRTP(_ packet: inout [UInt8]) -> Bool {
        let tagLength = SRTPGCMSender.tagLength
        guard let (headerLength, ssrc, index) = rtpReplay.check(packet, tagLength: tagLength) else { return false }
        if rtpContext == nil { rtpContext = airwave_aes128gcm_decrypt_context(rtpKeys.encryption) }
        guard let rtpContext else { return false }
        // IV (RFC 7714 8.1): 00 00 || SSRC || ROC || SEQ, xor the session salt.
        var iv = rtpKeys.salt
        SRTPPacketLayout.xor(&iv, ssrc, at: 2)
        SRTPPacketLayout.xor(&iv, UInt32(truncatingIfNeeded: index >> 16), at: 6)
        iv[10] ^= UInt8(truncatingIfNeeded: index >> 8)
        iv[11] ^= UInt8(truncatingIfNeeded: index)
        let payloadLength = packet.count - headerLength - tagLength
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_gcm_unprotect(rtpContext, iv, buffer.baseAddress, Int32(headerLength), Int32(payloadLength), nil, 0)
        }
        guard status == 1 else { return false }
        rtpReplay.record(ssrc: ssrc, index: index)
        packet.removeLast(tagLength)
        return true
    }

    /// RFC 7714 section 9: header || ciphertext || tag || E flag and SRTCP index; the AAD is the
    /// header and the trailer word (with E clear, the whole packet before the tag).
    func unprotectRTCP(_ packet: inout [UInt8]) -> Bool {
        let headerLength = SRTPPacketLayout.rtcpHeaderLength
        let tagLength = SRTPGCMSender.tagLength
        guard packet.count >= headerLength + tagLength + 4, packet.count <= 65536 else { return false }
        let trailerWord = SRTPPacketLayout.word(packet, at: packet.count - 4)
        let index = trailerWord & 0x7FFF_FFFF
        let ssrc = SRTPPacketLayout.word(packet, at: 4)
        guard rtcpReplay.allows(ssrc: ssrc, index: UInt64(index)) else { return false }
        // IV (RFC 7714 9.1): 00 00 || SSRC || 00 00 || 0 || SRTCP index, xor the session salt.
        var iv = rtcpSalt
        SRTPPacketLayout.xor(&iv, ssrc, at: 2)
        SRTPPacketLayout.xor(&iv, index, at: 8)
        let trailer = Array(packet[(packet.count - 4)...])
        let bodyEnd = packet.count - 4 - tagLength
        let encrypted = trailerWord & 0x8000_0000 != 0
        let aadLength = encrypted ? headerLength : bodyEnd
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_gcm_unprotect(rtcpContext, iv, buffer.baseAddress, Int32(aadLength), Int32(bodyEnd - aadLength),
                                       trailer, Int32(trailer.count))
        }
        guard status == 1 else { return false }
        rtcpReplay.record(ssrc: ssrc, index: UInt64(index))
        packet.removeLast(tagLength + 4)
        return true
    }
}
