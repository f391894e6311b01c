/// Inbound SRTP and SRTCP on OpenSSL, keyed once per session: `SRTPGCMReceiver` for
/// AEAD_AES_128_GCM, `SRTPCMReceiver` for AES_CM_128_HMAC_SHA1_80, the inverse of the
/// `SRTPSender`s. The SRTP half (cipher contexts) is made with the first SRTP packet: a WHEP
/// listener sends only RTCP.
///
/// Why not libsrtp: libsrtp's receiving context (on NSS) was the largest part of a listener's
/// session once DTLS was freed (19.4 KiB, against about 1 KiB for these; docs/performance.md).
/// Not thread-safe (one per session).
protocol SRTPReceiver: AnyObject {
    /// Authenticates, replay-checks and decrypts an SRTP packet in place, removing its tag;
    /// false (and the packet's bytes undefined) for one that is too short, forged, tampered
    /// with or replayed. The rollover counter is estimated per SSRC (RFC 3711 3.3.1).
    func unprotectRTP(_ packet: inout [UInt8]) -> Bool
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
