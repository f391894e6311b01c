import COpenSSL

/// Outbound SRTP for AEAD_AES_128_GCM (RFC 7714) on OpenSSL's AES-GCM, keyed once per session.
///
/// Why not libsrtp for this: Debian's libsrtp2 encrypts through NSS, which sets up a cipher
/// context for every packet; measured with 1,000 WHEP listeners that was about 38 % of the
/// server's CPU, more than everything else of a listener's packet together. Inbound packets
/// and RTCP, far fewer, stay with libsrtp. Not thread-safe (one per session).
final class SRTPGCMSender {
    static let tagLength = 16
    private let context: OpaquePointer
    /// The 12-byte session salt the IVs are made from.
    private let salt: [UInt8]
    /// Rollover counters by SSRC: a packet's index is its extended sequence number, so a
    /// retransmission from before a wrap still gets its own ROC.
    private var indices: [UInt32: RTPSequenceExtender] = [:]

    /// `masterKeyAndSalt`: the 16-byte master key followed by the 12-byte master salt of the
    /// sending side (the DTLS export). Nil if OpenSSL cannot set the cipher up.
    init?(masterKeyAndSalt: [UInt8]) {
        guard masterKeyAndSalt.count == 28 else { return nil }
        let masterKey = Array(masterKeyAndSalt[0..<16])
        let salt14 = Array(masterKeyAndSalt[16..<28]) + [0, 0]
        var sessionKey = [UInt8](repeating: 0, count: 16)
        var sessionSalt = [UInt8](repeating: 0, count: 12)
        // Labels of RFC 3711 4.3.2: 0x00 the RTP encryption key, 0x02 the RTP salt.
        guard airwave_srtp_kdf(masterKey, salt14, 0x00, &sessionKey, 16) == 1,
              airwave_srtp_kdf(masterKey, salt14, 0x02, &sessionSalt, 12) == 1,
              let context = airwave_aes128gcm_context(sessionKey)
        else { return nil }
        self.context = context
        salt = sessionSalt
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Encrypts and authenticates an RTP packet in place; false for a packet too short for
    /// its own header.
    func protect(_ packet: inout [UInt8]) -> Bool {
        guard packet.count >= 12 else { return false }
        var headerLength = 12 + 4 * Int(packet[0] & 0x0F)
        if packet[0] & 0x10 != 0 {
            guard packet.count >= headerLength + 4 else { return false }
            headerLength += 4 + 4 * (Int(packet[headerLength + 2]) << 8 | Int(packet[headerLength + 3]))
        }
        guard packet.count >= headerLength else { return false }
        let payloadLength = packet.count - headerLength
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let ssrc = UInt32(packet[8]) << 24 | UInt32(packet[9]) << 16 | UInt32(packet[10]) << 8 | UInt32(packet[11])
        let rollover = indices[ssrc, default: RTPSequenceExtender()].extend(sequence) >> 16
        // IV (RFC 7714 8.1): 00 00 || SSRC || ROC || SEQ, xor the session salt.
        var iv = salt
        for index in 0..<4 {
            iv[2 + index] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * index))
            iv[6 + index] ^= UInt8(truncatingIfNeeded: rollover >> (24 - 8 * index))
        }
        iv[10] ^= UInt8(sequence >> 8)
        iv[11] ^= UInt8(truncatingIfNeeded: sequence)
        packet.append(contentsOf: repeatElement(0, count: Self.tagLength))
        let status = packet.withUnsafeMutableBufferPointer { buffer in
            airwave_srtp_gcm_protect(context, iv, buffer.baseAddress, Int32(headerLength), Int32(payloadLength))
        }
        guard status == 1 else {
            packet.removeLast(Self.tagLength)
            return false
        }
        return true
    }
}
