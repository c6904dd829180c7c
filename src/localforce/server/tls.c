/*
 * tls: HTTPS certificates (see tls.h).
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"

#define PEM_FILE_MAX ((size_t)64 << 10)

static int
no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf, (void)size, (void)rwflag, (void)ud;
    return -1;
}

/* A memory BIO's contents as a C string (caller frees). */
static char *
bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = xmalloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The certificate's fields, extensions and signature. */
static int
fill_cert(X509 *x, EVP_PKEY *k)
{
    BIGNUM *serial = BN_new();
    X509_NAME *n = X509_get_subject_name(x);
    int ok = serial && BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL &&
             X509_set_version(x, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) &&
             X509_set_pubkey(x, k) == 1 &&
             X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"localforce",
                                        -1, -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                        -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, n) == 1;
    BN_free(serial);
    if (!ok || add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") != 0 ||
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign") != 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth") != 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, NID_authority_key_identifier, "keyid:always") != 0)
        return -1;
    return X509_sign(x, k, EVP_sha256()) > 0 ? 0 : -1;
}

int
tls_generate(char **cert_pem, char **key_pem, err_t *e)
{
    *cert_pem = *key_pem = NULL;
    EVP_PKEY *k = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    int rc = -1;
    if (k && x && cb && kb && fill_cert(x, k) == 0 && PEM_write_bio_X509(cb, x) == 1 &&
        PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1) {
        *cert_pem = bio_text(cb);
        *key_pem = bio_text(kb);
        rc = 0;
    } else {
        err_set(e, 500, "TLS_SETUP", "cannot make a self-signed certificate: %s",
                ERR_reason_error_string(ERR_peek_last_error())
                    ? ERR_reason_error_string(ERR_peek_last_error())
                    : "OpenSSL failed");
    }
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

/* path's bytes as a C string (caller frees); at most PEM_FILE_MAX. */
static int
read_text(const char *path, char **out, err_t *e)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return err_set(e, 400, "TLS_SETUP", "cannot open %s: %s", path, strerror(errno));
    char *buf = xmalloc(PEM_FILE_MAX + 1);
    size_t n = fread(buf, 1, PEM_FILE_MAX + 1, f);
    bool bad = ferror(f) || n > PEM_FILE_MAX;
    fclose(f);
    if (bad) {
        OPENSSL_cleanse(buf, PEM_FILE_MAX + 1);
        free(buf);
        return err_set(e, 400, "TLS_SETUP", "cannot read %s (or it is over %zu KiB)", path,
                       PEM_FILE_MAX >> 10);
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int
tls_read(const char *cert_path, const char *key_path, char **cert_pem, char **key_pem, err_t *e)
{
    *cert_pem = *key_pem = NULL;
    if (read_text(cert_path, cert_pem, e) != 0 || read_text(key_path, key_pem, e) != 0)
        goto fail;
    BIO *cb = BIO_new_mem_buf(*cert_pem, -1), *kb = BIO_new_mem_buf(*key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    int rc = 0;
    if (x == NULL)
        rc = err_set(e, 400, "TLS_SETUP", "%s holds no PEM certificate", cert_path);
    else if (k == NULL)
        rc = err_set(e, 400, "TLS_SETUP", "%s holds no PEM private key (or it is encrypted)",
                     key_path);
    else if (X509_check_private_key(x, k) != 1)
        rc = err_set(e, 400, "TLS_SETUP", "the key in %s is not the certificate's (%s)", key_path,
                     cert_path);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    if (rc == 0)
        return 0;
fail:
    free(*cert_pem);
    if (*key_pem)
        OPENSSL_cleanse(*key_pem, strlen(*key_pem));
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
    return -1;
}

/* Writes text to path (new, mode), through a temporary file and a rename. */
static int
write_new(const char *path, const char *text, mode_t mode, err_t *e)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    size_t n = strlen(text);
    bool ok = fd >= 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(e, 400, "TLS_SETUP", "cannot write %s: %s", path,
                       strerror(ok ? errno : err));
    }
    return 0;
}

int
tls_self_signed(const char *dir, char **cert_pem, char **key_pem, err_t *e)
{
    char crt[4096], key[4096];
    snprintf(crt, sizeof crt, "%s/%s", dir, TLS_CERT_NAME);
    snprintf(key, sizeof key, "%s/%s", dir, TLS_KEY_NAME);
    bool has_crt = access(crt, F_OK) == 0, has_key = access(key, F_OK) == 0;
    if (has_crt && has_key)
        return tls_read(crt, key, cert_pem, key_pem, e);
    if (has_crt || has_key)
        return err_set(e, 400, "TLS_SETUP", "%s has %s but not %s: remove it to make a new pair",
                       dir, has_crt ? TLS_CERT_NAME : TLS_KEY_NAME,
                       has_crt ? TLS_KEY_NAME : TLS_CERT_NAME);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(e, 400, "TLS_SETUP", "cannot make %s: %s", dir, strerror(errno));
    if (tls_generate(cert_pem, key_pem, e) != 0)
        return -1;
    if (write_new(key, *key_pem, 0600, e) != 0 || write_new(crt, *cert_pem, 0644, e) != 0) {
        unlink(key);
        free(*cert_pem);
        OPENSSL_cleanse(*key_pem, strlen(*key_pem));
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
        return -1;
    }
    return 0;
}
