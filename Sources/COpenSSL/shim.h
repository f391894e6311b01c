// COpenSSL: the system OpenSSL 3 (Debian/Ubuntu: libssl-dev), used by AirwaveWebRTC for DTLS,
// the certificate and its fingerprint, STUN's HMAC-SHA1 and outbound SRTP/SRTCP and inbound SRTCP.
//
// Several calls AirwaveWebRTC needs are function-like macros (SSL_ctrl wrappers) or variadic,
// which Swift cannot import; they are wrapped below as non-variadic inline functions.
#ifndef AIRWAVE_COPENSSL_SHIM_H
#define AIRWAVE_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <string.h>

/// A fresh ECDSA P-256 key pair, or NULL.
static inline EVP_PKEY *airwave_ec_p256_generate(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/// Restricts the context to DTLS 1.2 and later.
static inline int airwave_ssl_ctx_set_dtls12_minimum(SSL_CTX *context) {
    return (int)SSL_CTX_set_min_proto_version(context, DTLS1_2_VERSION);
}

/// Fixes the path MTU: memory BIOs cannot be asked for it.
static inline void airwave_ssl_set_mtu(SSL *ssl, long mtu) {
    SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(ssl, mtu);
}

/// Microseconds until OpenSSL's DTLS retransmission timer fires, or -1 when none is running.
static inline long long airwave_dtls_timeout_microseconds(SSL *ssl) {
    struct timeval remaining;
    if (DTLSv1_get_timeout(ssl, &remaining) != 1) return -1;
    return (long long)remaining.tv_sec * 1000000 + (long long)remaining.tv_usec;
}

/// Lets OpenSSL retransmit its last flight if the timer expired; 1 when it did, 0 when not due,
/// -1 on error.
static inline int airwave_dtls_handle_timeout(SSL *ssl) {
    return (int)DTLSv1_handle_timeout(ssl);
}

/// Number of bytes waiting in a memory BIO.
static inline size_t airwave_bio_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}

/// Makes an empty memory BIO return "retry" instead of end-of-file, as a datagram transport
/// that has nothing yet does.
static inline void airwave_bio_set_retry_on_empty(BIO *bio) {
    BIO_set_mem_eof_return(bio, -1);
}

/// SRTP key derivation (RFC 3711 section 4.3.1, AES-CM PRF, key derivation rate 0): `length`
/// bytes (at most 32) of the session key, salt or authentication key named by `label`.
/// `salt14` is the master salt in 14 bytes (a 12-byte AEAD salt padded with two zeros, as
/// libsrtp does). Returns 1 on success.
static inline int airwave_srtp_kdf(const unsigned char *master_key, const unsigned char *salt14, unsigned char label,
                                   unsigned char *out, int length) {
    if (length <= 0 || length > 32) return 0;
    unsigned char iv[16] = {0};
    unsigned char zeros[32] = {0};
    memcpy(iv, salt14, 14);
    iv[7] ^= label;
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL) return 0;
    int written = 0;
    int ok = EVP_EncryptInit_ex(context, EVP_aes_128_ctr(), NULL, master_key, iv) == 1
        && EVP_EncryptUpdate(context, out, &written, zeros, length) == 1 && written == length;
    EVP_CIPHER_CTX_free(context);
    return ok;
}

/// An AES-128-GCM context with a 12-byte IV, keyed once for a whole session: for encryption
/// when `encrypt` is 1, for decryption when it is 0.
static inline EVP_CIPHER_CTX *airwave_aes128gcm_cipher_context(const unsigned char *key, int encrypt) {
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL) return NULL;
    if (EVP_CipherInit_ex(context, EVP_aes_128_gcm(), NULL, NULL, NULL, encrypt) != 1
        || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
        || EVP_CipherInit_ex(context, NULL, NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(context);
        return NULL;
    }
    return context;
}

/// An AES-128-GCM encryption context (`airwave_aes128gcm_cipher_context`).
static inline EVP_CIPHER_CTX *airwave_aes128gcm_context(const unsigned char *key) {
    return airwave_aes128gcm_cipher_context(key, 1);
}

/// SRTP/SRTCP AEAD_AES_128_GCM protection of one packet in place (RFC 7714 sections 8 and 9):
/// the header and then `extra_aad` (SRTCP's E flag and index; NULL for RTP) are authenticated,
/// the payload encrypted, and the 16-byte tag written after it (the buffer must have room).
/// Returns 1 on success.
static inline int airwave_srtp_gcm_protect(EVP_CIPHER_CTX *context, const unsigned char *iv, unsigned char *packet,
                                           int header_length, int payload_length,
                                           const unsigned char *extra_aad, int extra_aad_length) {
    int written = 0;
    unsigned char *payload = packet + header_length;
    if (EVP_EncryptInit_ex(context, NULL, NULL, NULL, iv) != 1) return 0;
    if (EVP_EncryptUpdate(context, NULL, &written, packet, header_length) != 1) return 0;
    if (extra_aad_length > 0 && EVP_EncryptUpdate(context, NULL, &written, extra_aad, extra_aad_length) != 1) return 0;
    if (payload_length > 0 && EVP_EncryptUpdate(context, payload, &written, payload, payload_length) != 1) return 0;
    if (EVP_EncryptFinal_ex(context, payload + payload_length, &written) != 1) return 0;
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, payload + payload_length) == 1;
}

/// An AES-128-CTR encryption context, keyed once for a whole session (the IV is set per packet).
static inline EVP_CIPHER_CTX *airwave_aes128ctr_context(const unsigned char *key) {
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL) return NULL;
    if (EVP_EncryptInit_ex(context, EVP_aes_128_ctr(), NULL, key, NULL) != 1) {
        EVP_CIPHER_CTX_free(context);
        return NULL;
    }
    return context;
}

/// HMAC-SHA1 (RFC 2104) keyed once for a whole session: the SHA-1 states after the inner and
/// the outer padded key. Each packet copies them, where `EVP_MAC_init`/`EVP_MAC_final` would
/// duplicate provider contexts (allocations) per packet: measured at 1,000 WHEP listeners, that
/// made AES_CM cost about 1.5 times what GCM does. SHA1_Init and friends are deprecated in
/// OpenSSL 3 for general use, not removed; the states are plain structs.
typedef struct {
    SHA_CTX inner;
    SHA_CTX outer;
} airwave_hmac_sha1;

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline airwave_hmac_sha1 *airwave_hmac_sha1_new(const unsigned char *key, int key_length) {
    if (key_length < 0 || key_length > 64) return NULL;
    airwave_hmac_sha1 *mac = OPENSSL_malloc(sizeof *mac);
    if (mac == NULL) return NULL;
    unsigned char pad[64];
    memset(pad, 0x36, sizeof pad);
    for (int index = 0; index < key_length; index++) pad[index] ^= key[index];
    int ok = SHA1_Init(&mac->inner) == 1 && SHA1_Update(&mac->inner, pad, sizeof pad) == 1;
    memset(pad, 0x5c, sizeof pad);
    for (int index = 0; index < key_length; index++) pad[index] ^= key[index];
    ok = ok && SHA1_Init(&mac->outer) == 1 && SHA1_Update(&mac->outer, pad, sizeof pad) == 1;
    OPENSSL_cleanse(pad, sizeof pad);
    if (!ok) {
        OPENSSL_clear_free(mac, sizeof *mac);
        return NULL;
    }
    return mac;
}

static inline void airwave_hmac_sha1_free(airwave_hmac_sha1 *mac) {
    OPENSSL_clear_free(mac, sizeof *mac);
}

/// The HMAC-SHA1 of `data` followed by `extra` (may be NULL), into `digest` (20 bytes).
static inline int airwave_hmac_sha1_compute(const airwave_hmac_sha1 *mac, const unsigned char *data, size_t length,
                                            const unsigned char *extra, size_t extra_length, unsigned char *digest) {
    SHA_CTX context = mac->inner;
    unsigned char inner[SHA_DIGEST_LENGTH];
    int ok = SHA1_Update(&context, data, length) == 1
        && (extra_length == 0 || SHA1_Update(&context, extra, extra_length) == 1)
        && SHA1_Final(inner, &context) == 1;
    context = mac->outer;
    ok = ok && SHA1_Update(&context, inner, sizeof inner) == 1 && SHA1_Final(digest, &context) == 1;
    OPENSSL_cleanse(&context, sizeof context);
    return ok;
}
#pragma clang diagnostic pop

/// SRTP/SRTCP AES_CM_128_HMAC_SHA1_80 protection of one packet in place (RFC 3711 sections 4.1.1
/// and 4.2.1): `packet[encrypt_from..<encrypt_to]` is encrypted with AES-128 in counter mode from
/// `iv`, then the HMAC-SHA1 of `packet[0..<auth_length]` followed by `extra` (the rollover
/// counter for RTP; NULL for RTCP, whose E flag and index are in the packet) is written,
/// truncated to 10 bytes, at `packet + auth_length` (the buffer must have room). Returns 1 on
/// success.
static inline int airwave_srtp_cm_protect(EVP_CIPHER_CTX *cipher, const airwave_hmac_sha1 *mac, const unsigned char *iv,
                                          unsigned char *packet, int encrypt_from, int encrypt_to, int auth_length,
                                          const unsigned char *extra, int extra_length) {
    int written = 0;
    if (encrypt_to > encrypt_from) {
        if (EVP_EncryptInit_ex(cipher, NULL, NULL, NULL, iv) != 1) return 0;
        if (EVP_EncryptUpdate(cipher, packet + encrypt_from, &written, packet + encrypt_from,
                              encrypt_to - encrypt_from) != 1) return 0;
    }
    unsigned char digest[20];
    if (!airwave_hmac_sha1_compute(mac, packet, (size_t)auth_length, extra, (size_t)extra_length, digest)) return 0;
    memcpy(packet + auth_length, digest, 10);
    return 1;
}

/// The inverse of `airwave_srtp_cm_protect`: checks the 10-byte tag at `packet + auth_length`
/// against the HMAC-SHA1 of `packet[0..<auth_length]` followed by `extra`, in constant time,
/// and only then decrypts `packet[decrypt_from..<decrypt_to]` in place. Returns 1 for an
/// authentic packet, 0 otherwise (then nothing was decrypted).
static inline int airwave_srtp_cm_unprotect(EVP_CIPHER_CTX *cipher, const airwave_hmac_sha1 *mac, const unsigned char *iv,
                                            unsigned char *packet, int decrypt_from, int decrypt_to, int auth_length,
                                            const unsigned char *extra, int extra_length) {
    unsigned char digest[20];
    int written = 0;
    if (!airwave_hmac_sha1_compute(mac, packet, (size_t)auth_length, extra, (size_t)extra_length, digest)) return 0;
    if (CRYPTO_memcmp(digest, packet + auth_length, 10) != 0) return 0;
    if (decrypt_to > decrypt_from) {
        // Counter mode: decryption is encryption.
        if (EVP_EncryptInit_ex(cipher, NULL, NULL, NULL, iv) != 1) return 0;
        if (EVP_EncryptUpdate(cipher, packet + decrypt_from, &written, packet + decrypt_from,
                              decrypt_to - decrypt_from) != 1) return 0;
    }
    return 1;
}

/// An AES-128-GCM decryption context (`airwave_aes128gcm_cipher_context`).
static inline EVP_CIPHER_CTX *airwave_aes128gcm_decrypt_context(const unsigned char *key) {
    return airwave_aes128gcm_cipher_context(key, 0);
}

/// The inverse of `airwave_srtp_gcm_protect`: `packet[0..<header_length]` and then `extra_aad`
/// are authenticated, `payload_length` bytes after the header decrypted in place, and the 16-byte
/// tag that follows them checked. Returns 1 for an authentic packet, 0 otherwise (the payload
/// bytes are then undefined).
static inline int airwave_srtp_gcm_unprotect(EVP_CIPHER_CTX *context, const unsigned char *iv, unsigned char *packet,
                                             int header_length, int payload_length,
                                             const unsigned char *extra_aad, int extra_aad_length) {
    int written = 0;
    unsigned char *payload = packet + header_length;
    unsigned char final_block[16];
    if (EVP_DecryptInit_ex(context, NULL, NULL, NULL, iv) != 1) return 0;
    if (EVP_DecryptUpdate(context, NULL, &written, packet, header_length) != 1) return 0;
    if (extra_aad_length > 0 && EVP_DecryptUpdate(context, NULL, &written, extra_aad, extra_aad_length) != 1) return 0;
    if (payload_length > 0 && EVP_DecryptUpdate(context, payload, &written, payload, payload_length) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, 16, payload + payload_length) != 1) return 0;
    return EVP_DecryptFinal_ex(context, final_block, &written) > 0;
}

#endif
