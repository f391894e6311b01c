/// The session keys of one side's RTP or of its RTCP (RFC 3711 4.3.2), derived from that side's
/// master key and salt (its DTLS export, key then salt): a sender of that side and the peer's
/// receiver key their ciphers with the same ones.
struct SRTPSessionKeys {
    /// The AES-128 key.
    let encryption: [UInt8]
    /// The HMAC-SHA1 key of AES_CM_128_HMAC_SHA1_80; empty for AEAD_AES_128_GCM.
    let authentication: [UInt8]
    /// The session salt: 14 bytes for AES_CM (counter blocks), 12 for GCM (IVs).
    let salt: [UInt8]

    /// Nil if `masterKeyAndSalt` has the wrong length for `profile` or OpenSSL fails.
    init?(profile: SRTPProfile, masterKeyAndSalt: [UInt8], rtcp: Bool) {
        guard masterKeyAndSalt.count == profile.keyLength + profile.saltLength else { return nil }
        let masterKey = Array(masterKeyAndSalt[0..<profile.keyLength])
        // The PRF takes a 14-byte salt; GCM's 12-byte one is padded with zeros, as libsrtp does.
        let masterSalt = Array(masterKeyAndSalt[profile.keyLength...]) + repeatElement(0, count: 14 - profile.saltLength)
        // Labels: 0x00-0x02 RTP's encryption key, authentication key and salt, 0x03-0x05 RTCP's.
        let base: UInt8 = rtcp ? 0x03 : 0x00
        func derive(_ label: UInt8, _ length: Int) -> [UInt8]? {
            SRTPPacketLayout.derive(masterKey: masterKey, masterSalt: masterSalt, label: base + label, length: length)
        }
        let isCM = profile == .aes128CMHMACSHA1_80
        guard let encryption = derive(0, 16), let salt = derive(2, isCM ? 14 : 12),
              let authentication = isCM ? derive(1, 20) : []
        else { return nil }
        self.encryption = encryption
        self.authentication = authentication
        self.salt = salt
    }
}
