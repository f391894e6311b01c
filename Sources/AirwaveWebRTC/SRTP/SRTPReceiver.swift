/// Inbound SRTCP on OpenSSL, keyed once per session: `SRTPGCMReceiver` for AEAD_AES_128_GCM,
/// `SRTPCMReceiver` for AES_CM_128_HMAC_SHA1_80, the inverse of the `SRTPSender`s.
///
/// Why not libsrtp: RTCP is all a WHEP listener sends, and libsrtp's receiving context (on
/// NSS) was the largest part of a listener's session once DTLS was freed (19.4 KiB, against
/// about 1 KiB for these; docs/performance.md). Not thread-safe (one per session).
protocol SRTPReceiver: AnyObject {
    /// Authenticates, replay-checks and decrypts an SRTCP packet in place, removing its index
    /// and tag; false (and the packet's bytes undefined) for one that is too short, forged,
    /// tampered with or replayed.
    func unprotectRTCP(_ packet: inout [UInt8]) -> Bool
}

/// The receiver for `profile` keyed with `masterKeyAndSalt` (the peer's DTLS export: key, then
/// salt), or nil if OpenSSL cannot set it up.
func makeSRTPReceiver(profile: SRTPProfile, masterKeyAndSalt: [UInt8]) -> (any SRTPReceiver)? {
    switch profile {
    case .aeadAES128GCM: SRTPGCMReceiver(masterKeyAndSalt: masterKeyAndSalt)
    case .aes128CMHMACSHA1_80: SRTPCMReceiver(masterKeyAndSalt: masterKeyAndSalt)
    }
}

/// The SRTCP replay windows of a receiver, one per sender SSRC (each SSRC counts its own
/// index; RFC 3711 3.3.2). Only authenticated packets add an SSRC.
struct SRTCPReplayWindows {
    private var windows: [UInt32: SRTPReplayWindow] = [:]

    func allows(ssrc: UInt32, index: UInt32) -> Bool {
        windows[ssrc]?.allows(UInt64(index)) ?? true
    }

    mutating func record(ssrc: UInt32, index: UInt32) {
        windows[ssrc, default: SRTPReplayWindow()].record(UInt64(index))
    }
}
