// COpenSSL: the system OpenSSL 3 (Debian/Ubuntu: libssl-dev), used by AirwaveWebRTC for DTLS,
// the certificate and its fingerprint, and STUN's HMAC-SHA1.
//
// Several calls AirwaveWebRTC needs are function-like macros (SSL_ctrl wrappers) or variadic,
// which Swift cannot import; they are wrapped below as non-variadic inline functions.
#ifndef AIRWAVE_COPENSSL_SHIM_H
#define AIRWAVE_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

#endif
