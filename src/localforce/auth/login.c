/*
 * login: what the login flows share: users and connected apps copied out of the
 * store under its lock, the org's ids, constant-time secret comparison,
 * base64 and URL encoding, form and query parameters, token logging.
 */
#include "login.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* ----- small helpers -------------------------------------------------------- */

void
login_copy(char *dst, size_t sz, const char *src)
{
    snprintf(dst, sz, "%s", src ? src : "");
}

/* Constant-time equality of two secrets (the length is not hidden). */
bool
login_secret_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

/* The org's ids: 18 characters and the 15-character prefix used in tokens and URLs. */
void
login_org_ids(store *st, char org18[19], char org15[16])
{
    const char *id = NULL;
    if (st) {
        store_lock(st);
        id = store_org_id(st);
        login_copy(org18, 19, id && strlen(id) >= 15 ? id : "00D000000000000AAA");
        store_unlock(st);
    } else {
        login_copy(org18, 19, "00D000000000000AAA");
    }
    memcpy(org15, org18, 15);
    org15[15] = '\0';
}

void
login_base64(const unsigned char *in, size_t n, char *out, size_t outsz, bool url)
{
    if (outsz < 4 * ((n + 2) / 3) + 1) {
        if (outsz)
            out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    if (url) {
        char *w = out;
        for (char *r = out; *r; r++) {
            if (*r == '=')
                continue;
            *w++ = *r == '+' ? '-' : *r == '/' ? '_' : *r;
        }
        *w = '\0';
    }
}

void
login_url_encode(sb *s, const char *str)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)str; p && *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sb_putc(s, (char)*p);
        } else {
            sb_putc(s, '%');
            sb_putc(s, hex[*p >> 4]);
            sb_putc(s, hex[*p & 15]);
        }
    }
}

/* A version string as in URLs: digits, a dot, digits ("59.0"). */
bool
login_valid_version(const char *v)
{
    const char *p = v;
    if (v == NULL || !(*p >= '0' && *p <= '9'))
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != '.' || !(*p >= '0' && *p <= '9'))
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p == '\0' && p - v <= 8;
}

void
login_log_token(const char *what, const char *token)
{
    char red[40];
    log_debug("auth: %s %s", what, log_redact(token, red, sizeof red));
}

/* ----- users and apps (copied out of the store under its lock) ------------- */

static void
user_copy(const lf_user *u, user_info *out)
{
    login_copy(out->id, sizeof out->id, u->id);
    login_copy(out->username, sizeof out->username, u->username);
    login_copy(out->first, sizeof out->first, u->first_name);
    login_copy(out->last, sizeof out->last, u->last_name);
    login_copy(out->email, sizeof out->email, u->email);
    out->active = u->active;
}

/* Check a username and password. 0 fills *out; -1 for an unknown or inactive
 * user or a wrong password (all indistinguishable to the caller, on purpose). */
int
login_user(store *st, const char *username, const char *password, user_info *out)
{
    if (username == NULL || password == NULL || *username == '\0' || *password == '\0')
        return -1;
    int rc = -1;
    store_lock(st);
    const lf_user *u = store_user_by_name(st, username);
    if (u && u->active && u->username && strlen(u->username) < sizeof out->username &&
        login_secret_eq(u->password, password)) {
        user_copy(u, out);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

/* Copy the user that find() finds by key. 0 or -1 (no such user). */
static int
user_copy_found(store *st, const lf_user *(*find)(store *, const char *), const char *key,
                user_info *out)
{
    int rc = -1;
    store_lock(st);
    const lf_user *u = find(st, key);
    if (u) {
        user_copy(u, out);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

int
login_user_by_id(store *st, const char *id, user_info *out)
{
    return user_copy_found(st, store_user_by_id, id, out);
}

int
login_user_by_name(store *st, const char *name, user_info *out)
{
    return user_copy_found(st, store_user_by_name, name, out);
}

int
login_app(store *st, const char *client_id, app_info *out)
{
    if (client_id == NULL || *client_id == '\0' || strlen(client_id) >= sizeof out->client_id)
        return -1;
    int rc = -1;
    store_lock(st);
    const lf_app *app = store_app(st, client_id);
    if (app) {
        login_copy(out->client_id, sizeof out->client_id, client_id);
        login_copy(out->name, sizeof out->name, app->name);
        login_copy(out->secret, sizeof out->secret, app->client_secret);
        login_copy(out->run_as, sizeof out->run_as, app->run_as);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

int
login_app_cert(store *st, const char *client_id, char *out, size_t sz)
{
    int rc = -1;
    store_lock(st);
    const lf_app *app = client_id ? store_app(st, client_id) : NULL;
    if (app && app->jwt_cert && strlen(app->jwt_cert) < sz) {
        login_copy(out, sz, app->jwt_cert);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

bool
login_app_preauthorized(store *st, const char *client_id, const char *username)
{
    bool ok = false;
    store_lock(st);
    const lf_app *app = client_id ? store_app(st, client_id) : NULL;
    for (size_t i = 0; app && i < app->npreauth && !ok; i++)
        ok = strcasecmp(app->preauth[i], username) == 0;
    store_unlock(st);
    return ok;
}

void
login_full_name(const user_info *u, char *out, size_t sz)
{
    snprintf(out, sz, "%s%s%s", u->first, u->first[0] && u->last[0] ? " " : "", u->last);
    if (out[0] == '\0')
        login_copy(out, sz, u->username);
}
/* A parameter from the form body, else from the query string. NULL if absent
 * or too long to be real. */
const char *
login_param(http_req *req, const char *name, char *buf, size_t bufsz)
{
    const char *v = http_form(req, name, buf, bufsz);
    if (v)
        return v;
    v = http_query(req, name);
    if (v == NULL || strlen(v) >= bufsz)
        return NULL;
    login_copy(buf, bufsz, v);
    return buf;
}

const char *
login_nonempty(const char *s)
{
    return s && *s ? s : NULL;
}
