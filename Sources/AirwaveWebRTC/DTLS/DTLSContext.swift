import COpenSSL

/// Why DTLS set-up or a handshake failed.
public enum DTLSError: Error, Equatable, Sendable {
    /// OpenSSL failed; the text is its error queue.
    case openSSL(String)
    case unsupportedFingerprintAlgorithm(String)
    /// The peer's certificate does not match the SDP's `a=fingerprint`.
    case fingerprintMismatch
    case noSRTPProfile
}

/// The server's DTLS identity: a self-signed ECDSA P-256 certificate made at start, and an
/// OpenSSL context (DTLS 1.2, peer certificate required, `use_srtp`) from which every session's
/// `DTLSEndpoint` is made: the certificate and key are shared by every session. Immutable once
/// made; OpenSSL allows one context to serve sessions on several
/// threads.
public final class DTLSContext: @unchecked Sendable {
    let context: OpaquePointer
    private let key: OpaquePointer
    private let certificate: OpaquePointer
    /// SHA-256 fingerprint of the certificate, for the SDP answer.
    public let fingerprint: CertificateFingerprint

    /// Makes a key pair and a certificate (CN `commonName`, valid from a day ago for
    /// `validityDays`).
    public init(commonName: String = "airwave", validityDays: Int = 30) throws(DTLSError) {
        guard let key = airwave_ec_p256_generate() else { throw .openSSL(Self.errorQueue()) }
        guard let certificate = X509_new() else {
            EVP_PKEY_free(key)
            throw .openSSL(Self.errorQueue())
        }
        self.key = key
        self.certificate = certificate
        var ok = X509_set_version(certificate, 2) == 1
        // A random positive 63-bit serial number.
        let serial = Crypto.randomBytes(8).reduce(0) { $0 << 8 | Int($1) } & Int.max
        ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial) == 1
        ok = ok && X509_gmtime_adj(X509_getm_notBefore(certificate), -86400) != nil
        ok = ok && X509_gmtime_adj(X509_getm_notAfter(certificate), validityDays * 86400) != nil
        ok = ok && X509_set_pubkey(certificate, key) == 1
        let name = X509_get_subject_name(certificate)
        let mbstringASCII: Int32 = 0x1001  // MBSTRING_ASC
        ok = ok && X509_NAME_add_entry_by_txt(name, "CN", mbstringASCII, Array(commonName.utf8), Int32(commonName.utf8.count), -1, 0) == 1
        ok = ok && X509_set_issuer_name(certificate, name) == 1
        ok = ok && X509_sign(certificate, key, EVP_sha256()) > 0
        guard ok, let digest = Self.digest(of: certificate, algorithm: "sha-256"),
              let context = SSL_CTX_new(DTLS_method())
        else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw .openSSL(Self.errorQueue())
        }
        self.context = context
        self.fingerprint = CertificateFingerprint(algorithm: "sha-256", value: CertificateFingerprint.format(digest))
        ok = airwave_ssl_ctx_set_dtls12_minimum(context) == 1
        ok = ok && SSL_CTX_use_certificate(context, certificate) == 1
        ok = ok && SSL_CTX_use_PrivateKey(context, key) == 1
        ok = ok && SSL_CTX_check_private_key(context) == 1
        guard ok else {
            let error = Self.errorQueue()
            SSL_CTX_free(context)
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw .openSSL(error)
        }
        // Self-signed certificates on both sides: chain verification is replaced by the SDP
        // fingerprint check after the handshake, but the peer must present one.
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) { _, _ in 1 }
    }

    deinit {
        SSL_CTX_free(context)
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    /// The digest of a certificate's DER encoding with an SDP-named hash (`sha-256`, `sha-1`,
    /// `sha-384`, `sha-512`), or nil if OpenSSL does not know the hash.
    static func digest(of certificate: OpaquePointer, algorithm: String) -> [UInt8]? {
        let opensslName = algorithm.lowercased().filter { $0 != "-" }
        guard ["sha1", "sha224", "sha256", "sha384", "sha512"].contains(opensslName),
              let type = EVP_get_digestbyname(opensslName)
        else { return nil }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, type, &digest, &length) == 1 else { return nil }
        return Array(digest[0..<Int(length)])
    }

    /// Drains OpenSSL's thread-local error queue into text.
    static func errorQueue() -> String {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "unknown error" : messages.joined(separator: "; ")
    }
}
