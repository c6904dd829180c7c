/*
 * sfjwt: the assertion of Salesforce's OAuth 2.0 JWT bearer flow, as sfbridge
 * sends it: the private key read from SF_JWT_KEY_FILE (PEM, RSA, not
 * encrypted, readable only by its owner and group), the audience Salesforce
 * wants for a login URL, base64url, and the RS256-signed token
 * header.claims.signature with iss (the connected app's consumer key), sub
 * (the username), aud and exp.
 *
 * The key and the assertion are secrets: never logged, wiped after use.
 */
#ifndef SFJWT_H
#define SFJWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"
#include "sb.h"

#define SFJWT_AUD_MAX  512
#define SFJWT_LIFETIME 180 /* seconds: Salesforce wants exp within 3 minutes */

/* The RSA private key in a PEM buffer (PKCS#1 or PKCS#8, not encrypted).
 * BAD_JWT_KEY names what is wrong (never quotes the key). */
int sfjwt_key_from_pem(const char *pem, size_t len, EVP_PKEY **out, err_t *e) ERR_MUST_CHECK;
/* The file's bytes (at most 64 KiB) into *pem (caller wipes and frees); refused
 * when others can read it or anyone but its owner can change it. */
int sfjwt_read_key_file(const char *path, char **pem, size_t *len, err_t *e) ERR_MUST_CHECK;

/* aud for a login URL: https://test.salesforce.com for test.salesforce.com
 * and sandbox My Domains (*.sandbox.my.salesforce.com), https://login.salesforce.com
 * for login.salesforce.com and other Salesforce hosts (a production My
 * Domain), else the URL's origin (scheme://host[:port], as localforce wants
 * it). override, when set, is used as it is (an Experience Cloud site). */
void sfjwt_audience(const char *login_url, const char *override, char out[SFJWT_AUD_MAX]);

/* in as base64url without padding, appended to out. */
void sfjwt_b64url(sb *out, const unsigned char *in, size_t n);

/* The signed assertion into out (cleared first). */
int sfjwt_assertion(EVP_PKEY *key, const char *iss, const char *sub, const char *aud, int64_t exp,
                    sb *out, err_t *e) ERR_MUST_CHECK;

#endif
