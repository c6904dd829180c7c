/*
 * jwt: the assertion of the OAuth 2.0 JWT bearer grant, as localforce reads it:
 * three base64url parts, a header whose alg is RS256, claims iss, sub (or prn,
 * which wins, as in Salesforce), aud (a string or an array of them) and exp
 * (a number, or a string of digits as Salesforce's own examples write it),
 * and an RS256 signature checked against a connected app's X.509 certificate.
 * Pure: no store, no HTTP; the token endpoint (oauth.c) decides what the
 * claims must say.
 */
#ifndef JWT_H
#define JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX       8192 /* the longest assertion read */
#define JWT_CLAIM_MAX 256
#define JWT_AUD_MAX   4

typedef struct jwt_token {
    char iss[JWT_CLAIM_MAX];
    char sub[JWT_CLAIM_MAX];
    char aud[JWT_AUD_MAX][JWT_CLAIM_MAX];
    int naud;
    int64_t exp; /* seconds since 1970; valid when has_exp */
    bool has_exp;
    const char *input; /* header.claims, inside the parsed assertion: what was signed */
    size_t input_len;
    unsigned char sig[1024];
    size_t sig_len;
} jwt_token;

/* Parses assertion (which must outlive t). -1 when it is not a well-formed
 * RS256 JWT. */
int jwt_parse(const char *assertion, jwt_token *t);
/* 0 when t's signature verifies with the RSA key of cert_pem (a PEM X.509
 * certificate), -1 otherwise. */
int jwt_verify(const jwt_token *t, const char *cert_pem);
/* Whether pem holds a PEM X.509 certificate with an RSA key (the org file's
 * check); *why says what is wrong when not. */
bool jwt_cert_ok(const char *pem, const char **why);
/* Whether aud is among t's audiences (a trailing '/' on either is ignored). */
bool jwt_has_audience(const jwt_token *t, const char *aud);

#endif
