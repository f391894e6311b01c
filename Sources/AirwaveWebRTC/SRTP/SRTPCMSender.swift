import COpenSSL

/// Outbound SRTP and SRTCP for AES_CM_128_HMAC_SHA1_80 (RFC 3711) on OpenSSL's AES-128-CTR and
/// HMAC-SHA1, each keyed once per session for RTP and for RTCP (see `SRTPSender` for why not
/// libsrtp). OBS and many SDKs offer only this profile.
final class SRTPCMSender: SRTPSender {
    /// HMAC-SHA1 truncated to 80 bits.
    static let tagLength = 10
    private let rtpCipher: OpaquePointer
    private let rtpMAC: UnsafeMutablePointer<airwave_hmac_sha1>
    private let rtcpCipher: OpaquePointer
    private let rtcpMAC: UnsafeMutablePointer<airwave_hmac_sha1>
    /// The 14-byte session salts the counter blocks are made from.
    private let rtpSalt: [UInt8]
    private let rtcpSalt: [UInt8]
    private var indices = SRTPSenderIndices()

    /// `masterKeyAndSalt`: the 16-byte master key followed by the 14-byte master salt of the
    /// sending side (the DTLS export). Nil if OpenSSL cannot set the ciphers up.
    init?(masterKeyAndSalt: [UInt8]) {
        guard let rtp = SRTPSessionKeys(profile: .aes128CMHMACSHA1_80, masterKeyAndSalt: masterKeyAndSalt, rtcp: false),
              let rtcp = SRTPSessionKeys(profile: .aes128CMHMACSHA1_80, masterKeyAndSalt: masterKeyAndSalt, rtcp: true)
        else { return nil }
        let rtpCipher = airwave_aes128ctr_context(rtp.encryption)
        let rtcpCipher = airwave_aes128ctr_context(rtcp.encryption)
        let rtpMAC = airwave_hmac_sha1_new(rtp.authentication, 20)
        let rtcpMAC = airwave_hmac_sha1_new(rtcp.authentication, 20)
        guard let rtpCipher, let rtcpCipher, let rtpMAC, let rtcpMAC else {
            EVP_CIPHER_CTX_free(rtpCipher)
            EVP_CIPHER_CTX_free(rtcpCipher)
            airwave_hmac_sha1_free(rtpMAC)
            airwave_hmac_sha1_free(rtcpMAC)
            return nil
        }
        self.rtpCipher = rtpCipher
        self.rtcpCipher = rtcpCipher
        self.rtpMAC = rtpMAC
        self.rtcpMAC = rtcpMAC
        rtpSalt = rtp.salt
        rtcpSalt = rtcp.salt
    }

    /// The counter block and rollover counter of the packet being protected: made in place, not
    /// allocated per packet.
    private var iv = [UInt8](repeating: 0, count: 16)
    private var roc = [UInt8](repeating: 0, count: 4)

    deinit {
        EVP_CIPHER_CTX_free(rtpCipher)
        EVP_CIPHER_CTX_free(rtcpCipher)
        airwave_hmac_sha1_free(rtpMAC)
        airwave_hmac_sha1_free(rtcpMAC)
    }

    /// RFC 3711 4.1.1 and 4.2: header || ciphertext || HMAC(header || ciphertext || ROC)[0..<10].
    func protectRTP(_ packet: inout [UInt8]) -> Bool {
        guard let headerLength = SRTPPacketLayout.rtpHeaderLength(packet) else { return false }
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let ssrc = SRTPPacketLayout.word(packet, at: 8)
        let rollover = indices.rollover(ssrc: ssrc, sequence: sequence)
        // Counter block: salt (14 bytes) || 00 00, xor SSRC at byte 4 and the 48-bit index
        // (ROC || SEQ) at byte 8.
        Self.counterBlock(&iv, salt: rtpSalt, ssrc: ssrc)
        SRTPPacketLayout.xor(&iv, rollover, at: 8)
        iv[12] ^= UInt8(sequence >> 8)
        iv[13] ^= UInt8(truncatingIfNeeded: sequence)
        let length = packet.count
        SRTPPacketLayout.copy(rollover, into: &roc)
        packet.append(contentsOf: repeatElement(0, count: Self.tagLength))
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_cm_protect(rtpCipher, rtpMAC, iv, buffer.baseAddress, Int32(headerLength), Int32(length),
                                    Int32(length), roc, Int32(roc.count))
        }
        guard status == 1 else {
            packet.removeLast(Self.tagLength)
            return false
        }
        return true
    }

    /// RFC 3711 3.4: header || ciphertext || E flag and SRTCP index || HMAC of all before it.
    func protectRTCP(_ packet: inout [UInt8]) -> Bool {
        let headerLength = SRTPPacketLayout.rtcpHeaderLength
        guard packet.count >= headerLength else { return false }
        let ssrc = SRTPPacketLayout.word(packet, at: 4)
        guard let index = indices.nextRTCPIndex(ssrc: ssrc) else { return false }
        Self.counterBlock(&iv, salt: rtcpSalt, ssrc: ssrc)
        SRTPPacketLayout.xor(&iv, index, at: 10)
        let length = packet.count
        packet += SRTPPacketLayout.bytes(0x8000_0000 | index)  // E: the payload is encrypted
        packet.append(contentsOf: repeatElement(0, count: Self.tagLength))
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_cm_protect(rtcpCipher, rtcpMAC, iv, buffer.baseAddress, Int32(headerLength), Int32(length),
                                    Int32(length + 4), nil, 0)
        }
        guard status == 1 else {
            packet.removeLast(4 + Self.tagLength)
            return false
        }
        return true
    }

    /// The counter block of a packet before its index is XORed in: salt || 00 00, xor the SSRC
    /// at byte 4 (RFC 3711 4.1.1; the receiver makes the same).
    static func counterBlock(_ block: inout [UInt8], salt: [UInt8], ssrc: UInt32) {
        SRTPPacketLayout.copy(salt, into: &block)
        block[14] = 0
        block[15] = 0
        SRTPPacketLayout.xor(&block, ssrc, at: 4)
    }
}
