/*
 * jwt: the JWT bearer grant's assertion (see jwt.h).
 */
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util.h"

/* base64url (no padding, or with it) into out; -1 on a bad character, a bad
 * length or more than outsz bytes. */
static int
b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outsz)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = o;
    return 0;
}

/* One part decoded as a JSON object (the caller json_decref's it). */
static json_t *
part_json(const char *in, size_t n)
{
    unsigned char buf[JWT_MAX];
    size_t len;
    if (b64url_decode(in, n, buf, sizeof buf, &len) != 0 ||
        !util_valid_utf8((const char *)buf, len))
        return NULL;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int
copy_claim(char out[JWT_CLAIM_MAX], json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) >= JWT_CLAIM_MAX)
        return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* exp: an integer, or a string of digits. */
static int
read_exp(jwt_token *t, json_t *v)
{
    int64_t n;
    if (json_is_integer(v)) {
        n = (int64_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strspn(s, "0123456789") != strlen(s) || util_parse_i64(s, &n) != 0)
            return -1;
    } else {
        return v == NULL ? 0 : -1;
    }
    t->exp = n;
    t->has_exp = true;
    return 0;
}

static int
read_claims(jwt_token *t, json_t *c)
{
    json_t *sub = json_object_get(c, "prn") ? json_object_get(c, "prn") : json_object_get(c, "sub");
    json_t *aud = json_object_get(c, "aud");
    if (copy_claim(t->iss, json_object_get(c, "iss")) != 0 || copy_claim(t->sub, sub) != 0 ||
        read_exp(t, json_object_get(c, "exp")) != 0)
        return -1;
    if (json_is_string(aud))
        return copy_claim(t->aud[t->naud++], aud);
    if (!json_is_array(aud) || json_array_size(aud) == 0 || json_array_size(aud) > JWT_AUD_MAX)
        return -1;
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (copy_claim(t->aud[t->naud++], json_array_get(aud, i)) != 0)
            return -1;
    return 0;
}

int
jwt_parse(const char *assertion, jwt_token *t)
{
    memset(t, 0, sizeof *t);
    size_t n = assertion ? strlen(assertion) : 0;
    const char *d1 = n && n < JWT_MAX ? strchr(assertion, '.') : NULL;
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || strchr(d2 + 1, '.') || d1 == assertion || d2 == d1 + 1 || d2[1] == '\0')
        return -1;
    json_t *h = part_json(assertion, (size_t)(d1 - assertion));
    json_t *c = h ? part_json(d1 + 1, (size_t)(d2 - d1 - 1)) : NULL;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int rc = -1;
    if (c && alg && strcmp(alg, "RS256") == 0 && read_claims(t, c) == 0 &&
        b64url_decode(d2 + 1, strlen(d2 + 1), t->sig, sizeof t->sig, &t->sig_len) == 0 &&
        t->sig_len > 0) {
        t->input = assertion;
        t->input_len = (size_t)(d2 - assertion);
        rc = 0;
    }
    json_decref(h);
    json_decref(c);
    return rc;
}

static X509 *
read_cert(const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

int
jwt_verify(const jwt_token *t, const char *cert_pem)
{
    X509 *x = read_cert(cert_pem);
    EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
    EVP_MD_CTX *md = k ? EVP_MD_CTX_new() : NULL;
    int rc = -1;
    if (md && EVP_PKEY_is_a(k, "RSA") &&
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestVerify(md, t->sig, t->sig_len, (const unsigned char *)t->input, t->input_len) ==
            1)
        rc = 0;
    EVP_MD_CTX_free(md);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

bool
jwt_cert_ok(const char *pem, const char **why)
{
    X509 *x = read_cert(pem);
    EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
    bool ok = k && EVP_PKEY_is_a(k, "RSA");
    if (!ok)
        *why = x ? "the certificate's key is not an RSA key (the JWT bearer flow uses RS256)"
                 : "not a PEM certificate (-----BEGIN CERTIFICATE-----)";
    X509_free(x);
    ERR_clear_error();
    return ok;
}

/* a and b equal, a trailing '/' on either ignored. */
static bool
same_url(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

bool
jwt_has_audience(const jwt_token *t, const char *aud)
{
    for (int i = 0; i < t->naud; i++)
        if (same_url(t->aud[i], aud))
            return true;
    return false;
}
