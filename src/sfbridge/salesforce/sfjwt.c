/*
 * sfjwt: the JWT bearer flow's assertion (see sfjwt.h).
 */
#include "sfjwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "util.h"

#define KEY_FILE_MAX ((size_t)64 << 10)

/* OpenSSL asks for a passphrase through this: an encrypted key fails at once
 * instead of prompting on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf, (void)size, (void)rwflag, (void)ud;
    return -1;
}

int
sfjwt_key_from_pem(const char *pem, size_t len, EVP_PKEY **out, err_t *e)
{
    *out = NULL;
    if (len > KEY_FILE_MAX)
        return err_set(e, 400, "BAD_JWT_KEY", "the key is over %zu KiB", KEY_FILE_MAX >> 10);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL)
        return err_set(e, 500, "BAD_JWT_KEY", "out of memory reading the key");
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    int rc = 0;
    if (k == NULL) {
        unsigned long why = ERR_peek_last_error();
        bool encrypted = memmem(pem, len, "ENCRYPTED", 9) != NULL;
        rc = err_set(e, 400, "BAD_JWT_KEY", "%s",
                     encrypted ? "the key is encrypted; sfbridge needs it unencrypted (openssl "
                                 "pkey -in KEY -out KEY.plain), in a file only sfbridge can read"
                     : why     ? "it is not a PEM private key (-----BEGIN PRIVATE KEY----- or "
                                 "-----BEGIN RSA PRIVATE KEY-----)"
                               : "it holds no PEM private key");
    } else if (!EVP_PKEY_is_a(k, "RSA")) {
        rc = err_set(e, 400, "BAD_JWT_KEY",
                     "the key is not an RSA key (Salesforce's JWT bearer flow signs with RS256)");
        EVP_PKEY_free(k);
        k = NULL;
    }
    ERR_clear_error();
    *out = k;
    return rc;
}

int
sfjwt_read_key_file(const char *path, char **pem, size_t *len, err_t *e)
{
    *pem = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, 400, "BAD_JWT_KEY", "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        err_set(e, 400, "BAD_JWT_KEY", "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (util_secret_mode(st.st_mode, path, "", "it is a private key", "BAD_JWT_KEY", e) != 0)
        goto out;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > KEY_FILE_MAX) {
        err_set(e, 400, "BAD_JWT_KEY", "%s is not a key file (a PEM file of at most %zu KiB)", path,
                KEY_FILE_MAX >> 10);
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err_set(e, 400, "BAD_JWT_KEY", "cannot read %s: %s", path,
                    n < 0 ? strerror(errno) : "it shrank while being read");
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *pem = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return rc;
}

/* host ends with suffix (case-insensitive), at a label boundary or whole. */
static bool
host_is(const char *host, size_t hl, const char *suffix)
{
    size_t sl = strlen(suffix);
    if (hl < sl || strncasecmp(host + hl - sl, suffix, sl) != 0)
        return false;
    return hl == sl || suffix[0] == '.';
}

void
sfjwt_audience(const char *login_url, const char *override, char out[SFJWT_AUD_MAX])
{
    if (override && *override) {
        snprintf(out, SFJWT_AUD_MAX, "%s", override);
        return;
    }
    const char *url = login_url ? login_url : "";
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    size_t hl = strcspn(host, ":/?#"); /* the host, without a port */
    size_t ol = (size_t)(host - url) + strcspn(host, "/?#");
    if (host_is(host, hl, "test.salesforce.com") || host_is(host, hl, ".sandbox.my.salesforce.com"))
        snprintf(out, SFJWT_AUD_MAX, "https://test.salesforce.com");
    else if (host_is(host, hl, "login.salesforce.com") || host_is(host, hl, ".salesforce.com") ||
             host_is(host, hl, ".force.com"))
        snprintf(out, SFJWT_AUD_MAX, "https://login.salesforce.com");
    else
        snprintf(out, SFJWT_AUD_MAX, "%.*s", (int)(ol < SFJWT_AUD_MAX ? ol : SFJWT_AUD_MAX - 1),
                 url);
}

void
sfjwt_b64url(sb *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
        sb_append(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        char q[2] = {abc[v >> 18], abc[(v >> 12) & 63]};
        sb_append(out, q, 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        char q[3] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63]};
        sb_append(out, q, 3);
    }
}

int
sfjwt_assertion(EVP_PKEY *key, const char *iss, const char *sub, const char *aud, int64_t exp,
                sb *out, err_t *e)
{
    sb_clear(out);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", iss ? iss : "", "sub", sub ? sub : "",
                               "aud", aud ? aud : "", "exp", (json_int_t)exp);
    char *text = claims ? json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(claims);
    if (text == NULL)
        return err_set(e, 400, "BAD_JWT_KEY", "cannot build the assertion's claims (not UTF-8?)");
    static const char header[] = "{\"alg\":\"RS256\"}";
    sfjwt_b64url(out, (const unsigned char *)header, sizeof header - 1);
    sb_putc(out, '.');
    sfjwt_b64url(out, (const unsigned char *)text, strlen(text));
    free(text);
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->buf, out->len) != 1) {
        rc = err_set(e, 400, "BAD_JWT_KEY", "cannot sign the assertion with the key (RS256)");
        sb_clear(out);
    } else {
        sb_putc(out, '.');
        sfjwt_b64url(out, sig, siglen);
    }
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}
