/// The DTLS-SRTP protection profiles (RFC 5764, RFC 7714) AirwaveWebRTC negotiates.
public enum SRTPProfile: UInt16, Sendable, CaseIterable {
    /// SRTP_AES128_CM_HMAC_SHA1_80.
    case aes128CMHMACSHA1_80 = 0x0001
    /// SRTP_AEAD_AES_128_GCM.
    case aeadAES128GCM = 0x0007

    /// The name OpenSSL's `use_srtp` list uses.
    var openSSLName: String {
        switch self {
        case .aes128CMHMACSHA1_80: "SRTP_AES128_CM_SHA1_80"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        }
    }

    /// Master key length in bytes.
    public var keyLength: Int { 16 }

    /// Master salt length in bytes.
    public var saltLength: Int {
        switch self {
        case .aes128CMHMACSHA1_80: 14
        case .aeadAES128GCM: 12
        }
    }
}

/// Keys exported from a DTLS handshake (`EXTRACTOR-dtls_srtp`, RFC 5764 §4.2): the client's and
/// the server's master key and salt.
public struct SRTPKeyingMaterial: Equatable, Sendable {
    public var profile: SRTPProfile
    public var clientKey: [UInt8]
    public var serverKey: [UInt8]
    public var clientSalt: [UInt8]
    public var serverSalt: [UInt8]

    /// Splits the exporter output: client key, server key, client salt, server salt.
    init(profile: SRTPProfile, exported: [UInt8]) {
        let key = profile.keyLength, salt = profile.saltLength
        self.profile = profile
        clientKey = Array(exported[0..<key])
        serverKey = Array(exported[key..<(2 * key)])
        clientSalt = Array(exported[(2 * key)..<(2 * key + salt)])
        serverSalt = Array(exported[(2 * key + salt)..<(2 * key + 2 * salt)])
    }

    /// Key followed by salt for what `role` sends.
    public func sendingKey(for role: DTLSRole) -> [UInt8] {
        role == .client ? clientKey + clientSalt : serverKey + serverSalt
    }

    /// Key followed by salt for what `role` receives.
    public func receivingKey(for role: DTLSRole) -> [UInt8] {
        role == .client ? serverKey + serverSalt : clientKey + clientSalt
    }
}
