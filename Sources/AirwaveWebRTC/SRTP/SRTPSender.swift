import COpenSSL

/// Outbound SRTP and SRTCP on OpenSSL, keyed once per session: `SRTPGCMSender` for
/// AEAD_AES_128_GCM, `SRTPCMSender` for AES_CM_128_HMAC_SHA1_80.
///
/// Why not libsrtp for what the server sends: Debian's libsrtp2 encrypts through NSS, which sets
/// up a cipher context for every packet; measured with 1,000 WHEP listeners that was about 38 %
/// of the server's CPU, more than everything else of a listener's packet together. What comes
/// in goes through `SRTPReceiver`. Not thread-safe (one per session).
protocol SRTPSender: AnyObject {
    /// Encrypts and authenticates an RTP packet in place; false for a packet too short for its
    /// own header or a cipher failure (the packet must then not be sent).
    func protectRTP(_ packet: inout [UInt8]) -> Bool
    /// Encrypts and authenticates an RTCP compound in place; false as for RTP, or once the
    /// SSRC's 31-bit SRTCP index is used up.
    func protectRTCP(_ packet: inout [UInt8]) -> Bool
}

/// The sender for `profile` keyed with `masterKeyAndSalt` (the sending side's DTLS export:
/// key, then salt), or nil if OpenSSL cannot set it up.
func makeSRTPSender(profile: SRTPProfile, masterKeyAndSalt: [UInt8]) -> (any SRTPSender)? {
    switch profile {
    case .aeadAES128GCM: SRTPGCMSender(masterKeyAndSalt: masterKeyAndSalt)
    case .aes128CMHMACSHA1_80: SRTPCMSender(masterKeyAndSalt: masterKeyAndSalt)
    }
}

/// The packet indices a sender encrypts with, by SSRC, counted as libsrtp counts them so that
/// both produce the same bytes.
struct SRTPSenderIndices {
    /// RTP: the index is the extended sequence number, so a retransmission from before a wrap
    /// still gets its own rollover counter (ROC).
    private var rtp: [UInt32: RTPSequenceExtender] = [:]
    /// SRTCP: the last index used; the first packet of an SSRC gets 1.
    private var rtcp: [UInt32: UInt32] = [:]

    /// The rollover counter of an RTP packet.
    mutating func rollover(ssrc: UInt32, sequence: UInt16) -> UInt32 {
        rtp[ssrc, default: RTPSequenceExtender()].extend(sequence) >> 16
    }

    /// The next SRTCP index of `ssrc`, nil once 2^31 − 1 have been used (RFC 3711 3.3.1: the
    /// key must not be used further).
    mutating func nextRTCPIndex(ssrc: UInt32) -> UInt32? {
        let last = rtcp[ssrc, default: 0]
        guard last < 0x7FFF_FFFF else { return nil }
        rtcp[ssrc] = last + 1
        return last + 1
    }
}

/// Where the parts of an RTP or RTCP packet are.
enum SRTPPacketLayout {
    /// The length of an RTP packet's header with its CSRCs and extension, nil if the packet is
    /// shorter than that.
    static func rtpHeaderLength(_ packet: [UInt8]) -> Int? {
        guard packet.count >= 12 else { return nil }
        var length = 12 + 4 * Int(packet[0] & 0x0F)
        if packet[0] & 0x10 != 0 {
            guard packet.count >= length + 4 else { return nil }
            length += 4 + 4 * (Int(packet[length + 2]) << 8 | Int(packet[length + 3]))
        }
        return packet.count >= length ? length : nil
    }

    /// The first 8 bytes of RTCP (version, count, type, length, sender SSRC) stay clear.
    static let rtcpHeaderLength = 8

    /// The 32-bit big-endian word at `offset` (the caller checked the length).
    static func word(_ packet: [UInt8], at offset: Int) -> UInt32 {
        UInt32(packet[offset]) << 24 | UInt32(packet[offset + 1]) << 16 | UInt32(packet[offset + 2]) << 8
            | UInt32(packet[offset + 3])
    }
    /// XORs `value`, big-endian, into `block` at `offset` (IVs and counter blocks).
    static func xor(_ block: inout [UInt8], _ value: UInt32, at offset: Int) {
        for index in 0..<4 { block[offset + index] ^= UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    /// One session key or salt of RFC 3711 4.3.2 (label 0x00–0x05) from the master key and the
    /// 14-byte master salt; nil if OpenSSL fails.
    static func derive(masterKey: [UInt8], masterSalt: [UInt8], label: UInt8, length: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: length)
        return airwave_srtp_kdf(masterKey, masterSalt, label, &out, Int32(length)) == 1 ? out : nil
    }


    /// `value` as four big-endian bytes.
    /// Writes `value`, big-endian, over the first 4 bytes of `bytes`.
    static func copy(_ value: UInt32, into bytes: inout [UInt8]) {
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    /// Writes `source` over the start of `target` (which is at least as long): an IV made in
    /// a sender's own buffer instead of a new array per packet.
    static func copy(_ source: [UInt8], into target: inout [UInt8]) {
        precondition(target.count >= source.count)
        target.withUnsafeMutableBufferPointer { target in
            source.withUnsafeBufferPointer { source in
                target.baseAddress!.update(from: source.baseAddress!, count: source.count)
            }
        }
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
         UInt8(truncatingIfNeeded: value)]
    }
}
