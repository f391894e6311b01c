import COpenSSL

/// Outbound SRTP and SRTCP for AEAD_AES_128_GCM (RFC 7714) on OpenSSL's AES-GCM, keyed once per
/// session for each of RTP and RTCP (see `SRTPSender` for why not libsrtp).
final class SRTPGCMSender: SRTPSender {
    static let tagLength = 16
    private let rtpContext: OpaquePointer
    private let rtcpContext: OpaquePointer
    /// The 12-byte session salts the IVs are made from.
    private let rtpSalt: [UInt8]
    private let rtcpSalt: [UInt8]
    private var indices = SRTPSenderIndices()
    /// The IV of the packet being protected: made in place, not allocated per packet.
    private var iv = [UInt8](repeating: 0, count: 12)

    /// `masterKeyAndSalt`: the 16-byte master key followed by the 12-byte master salt of the
    /// sending side (the DTLS export). Nil if OpenSSL cannot set the cipher up.
    init?(masterKeyAndSalt: [UInt8]) {
        guard let rtp = SRTPSessionKeys(profile: .aeadAES128GCM, masterKeyAndSalt: masterKeyAndSalt, rtcp: false),
              let rtcp = SRTPSessionKeys(profile: .aeadAES128GCM, masterKeyAndSalt: masterKeyAndSalt, rtcp: true),
              let rtpContext = airwave_aes128gcm_context(rtp.encryption)
        else { return nil }
        guard let rtcpContext = airwave_aes128gcm_context(rtcp.encryption) else {
            EVP_CIPHER_CTX_free(rtpContext)
            return nil
        }
        self.rtpContext = rtpContext
        self.rtcpContext = rtcpContext
        rtpSalt = rtp.salt
        rtcpSalt = rtcp.salt
    }

    deinit {
        EVP_CIPHER_CTX_free(rtpContext)
        EVP_CIPHER_CTX_free(rtcpContext)
    }

    func protectRTP(_ packet: inout [UInt8]) -> Bool {
        guard let headerLength = SRTPPacketLayout.rtpHeaderLength(packet) else { return false }
        let payloadLength = packet.count - headerLength
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let ssrc = SRTPPacketLayout.word(packet, at: 8)
        let rollover = indices.rollover(ssrc: ssrc, sequence: sequence)
        // IV (RFC 7714 8.1): 00 00 || SSRC || ROC || SEQ, xor the session salt.
        SRTPPacketLayout.copy(rtpSalt, into: &iv)
        SRTPPacketLayout.xor(&iv, ssrc, at: 2)
        SRTPPacketLayout.xor(&iv, rollover, at: 6)
        iv[10] ^= UInt8(sequence >> 8)
        iv[11] ^= UInt8(truncatingIfNeeded: sequence)
        packet.append(contentsOf: repeatElement(0, count: Self.tagLength))
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_gcm_protect(rtpContext, iv, buffer.baseAddress, Int32(headerLength), Int32(payloadLength), nil, 0)
        }
        guard status == 1 else {
            packet.removeLast(Self.tagLength)
            return false
        }
        return true
    }

    /// RFC 7714 section 9: header || ciphertext || tag || E flag and SRTCP index.
    func protectRTCP(_ packet: inout [UInt8]) -> Bool {
        let headerLength = SRTPPacketLayout.rtcpHeaderLength
        guard packet.count >= headerLength else { return false }
        let ssrc = SRTPPacketLayout.word(packet, at: 4)
        guard let index = indices.nextRTCPIndex(ssrc: ssrc) else { return false }
        // IV (RFC 7714 9.1): 00 00 || SSRC || 00 00 || 0 || SRTCP index, xor the session salt.
        SRTPPacketLayout.copy(rtcpSalt, into: &iv)
        SRTPPacketLayout.xor(&iv, ssrc, at: 2)
        SRTPPacketLayout.xor(&iv, index, at: 8)
        let trailer = SRTPPacketLayout.bytes(0x8000_0000 | index)  // E: the payload is encrypted
        let payloadLength = packet.count - headerLength
        packet.append(contentsOf: repeatElement(0, count: Self.tagLength))
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_gcm_protect(rtcpContext, iv, buffer.baseAddress, Int32(headerLength), Int32(payloadLength),
                                     trailer, Int32(trailer.count))
        }
        guard status == 1 else {
            packet.removeLast(Self.tagLength)
            return false
        }
        packet += trailer
        return true
    }
}
