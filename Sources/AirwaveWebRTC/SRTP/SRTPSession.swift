/// Why SRTP set-up, protection or unprotection failed. The codes are libsrtp2's for the same
/// cases (what this code and its tools reported when libsrtp did the work): 2 a packet too
/// short or too long, 5 set-up failed, 7 authentication or replay check failed.
public enum SRTPError: Error, Equatable, Sendable {
    case creation(Int32)
    case protect(Int32)
    case unprotect(Int32)
}

/// The SRTP/SRTCP protection of one session on OpenSSL: what this side sends (its own key from
/// the DTLS export) through an `SRTPSender`, what it receives (the peer's key) through an
/// `SRTPReceiver`, either profile. Retransmissions of the same packet are allowed, which NACK
/// answers need; received packets are replay-checked. Not thread-safe.
///
/// libsrtp2 is no longer used by the server: the tests keep it as the reference these are
/// compared with byte for byte (`LibsrtpSession` in AirwaveWebRTCTests).
public final class SRTPSession {
    public let profile: SRTPProfile
    private let sender: any SRTPSender
    private let receiver: any SRTPReceiver
    /// Room a protected packet may grow by (authentication tag, SRTCP index), reserved when a
    /// packet is serialized so protection does not reallocate; libsrtp's 148 (with its MKI),
    /// kept so that the tests' reference fits too.
    static let trailerCapacity = 148

    /// `role` is this side's DTLS role: it picks which exported key is sent with.
    public init(keyingMaterial: SRTPKeyingMaterial, role: DTLSRole) throws(SRTPError) {
        profile = keyingMaterial.profile
        guard let sender = makeSRTPSender(profile: profile, masterKeyAndSalt: keyingMaterial.sendingKey(for: role)),
              let receiver = makeSRTPReceiver(profile: profile, masterKeyAndSalt: keyingMaterial.receivingKey(for: role))
        else { throw .creation(5) }
        self.sender = sender
        self.receiver = receiver
    }

    /// Encrypts and authenticates an RTP packet in place.
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        guard packet.count <= 65536, sender.protectRTP(&packet) else { throw .protect(2) }
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet in place.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        guard receiver.unprotectRTP(&packet) else { throw .unprotect(7) }
    }

    /// Encrypts and authenticates an RTCP compound in place.
    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        guard packet.count <= 65536, sender.protectRTCP(&packet) else { throw .protect(2) }
    }

    /// Authenticates, replay-checks and decrypts an SRTCP packet in place.
    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        guard receiver.unprotectRTCP(&packet) else { throw .unprotect(7) }
    }
}
