// Thin shim over OpenSSL 3 libcrypto: includes plus typed wrappers for the few
// macros and variadic calls Swift cannot import.
#ifndef ENROLL_AGENT_COPENSSL_SHIM_H
#define ENROLL_AGENT_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/// BIO_get_mem_data is a macro.
static inline long enroll_BIO_get_mem_data(BIO *bio, const unsigned char **data) {
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    *data = (const unsigned char *)p;
    return n;
}

/// OPENSSL_free is a macro.
static inline void enroll_OPENSSL_free(void *p) { OPENSSL_free(p); }

/// Loads the legacy provider (single DES, which scepserver and step-ca use for
/// every CertRep) together with the default one: loading any provider
/// explicitly stops the default from loading implicitly. Returns 1 when both load.
static inline int enroll_load_providers(void) {
    static int loaded = -1;
    if (loaded < 0) {
        OSSL_PROVIDER *def = OSSL_PROVIDER_load(NULL, "default");
        OSSL_PROVIDER *legacy = OSSL_PROVIDER_load(NULL, "legacy");
        loaded = (def != NULL && legacy != NULL) ? 1 : 0;
    }
    return loaded;
}

#endif
