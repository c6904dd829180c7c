/*
 * sessions: the session table behind auth.h: access tokens, refresh tokens and
 * authorization codes in one hash table keyed by the token, guarded by one
 * mutex (requests come from several HTTP threads); issuing, PKCE redemption,
 * lookup, revocation, expiry, and auth_check() on a request's Authorization
 * header. Expired entries are dropped when a lookup meets them and by a sweep
 * every few hundred insertions. Everything is in memory: a restart logs
 * everyone out, and clients recover by logging in again.
 *
 * Lock order: the store's lock is never requested while the table's mutex is
 * held (user and app data are copied out of the store first).
 */
#include "sessions.h"

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
#include "login.h"
#include "util.h"

typedef enum { TOK_ACCESS, TOK_REFRESH, TOK_CODE } tok_kind;

typedef struct tok {
    struct tok *next;
    uint64_t hash;
    tok_kind kind;
    char token[AUTH_TOKEN_MAX];
    lf_session s;                /* expires_ms 0 = never */
    char parent[AUTH_TOKEN_MAX]; /* access: the refresh token it came from */
    char *redirect_uri;          /* code: must match at the exchange */
    char *challenge;             /* code: PKCE code_challenge, or NULL */
    bool challenge_plain;
} tok;

struct auth {
    store *st;
    pthread_mutex_t mu;
    atomic_llong ttl_s; /* 0 = the store's setting */
    tok **b;
    size_t nb, n;
    uint64_t seed;
    unsigned since_sweep;
    int64_t started_ms;
};

static uint64_t
tok_hash(const auth *a, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ a->seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static void
tok_free(tok *t)
{
    if (t == NULL)
        return;
    free(t->redirect_uri);
    free(t->challenge);
    OPENSSL_cleanse(t->token, sizeof t->token);
    free(t);
}

static bool
tok_expired(const tok *t, int64_t now)
{
    return t->s.expires_ms != 0 && t->s.expires_ms <= now;
}

/* Link pointing at the entry for token (of any kind), or NULL. Caller holds mu. */
static tok **
tbl_find(auth *a, const char *token)
{
    uint64_t h = tok_hash(a, token);
    for (tok **l = &a->b[h % a->nb]; *l; l = &(*l)->next)
        if ((*l)->hash == h && strcmp((*l)->token, token) == 0)
            return l;
    return NULL;
}

static void
tbl_unlink(auth *a, tok **l)
{
    tok *t = *l;
    *l = t->next;
    a->n--;
    tok_free(t);
}

/* Remove every entry for which drop() says so. Caller holds mu. */
static size_t
tbl_remove_if(auth *a, bool (*drop)(const tok *t, const void *arg), const void *arg)
{
    size_t removed = 0;
    for (size_t i = 0; i < a->nb; i++)
        for (tok **l = &a->b[i]; *l;) {
            if (drop(*l, arg)) {
                tbl_unlink(a, l);
                removed++;
            } else {
                l = &(*l)->next;
            }
        }
    return removed;
}

static bool
drop_expired(const tok *t, const void *arg)
{
    return tok_expired(t, *(const int64_t *)arg);
}

static bool
drop_access(const tok *t, const void *arg)
{
    (void)arg;
    return t->kind == TOK_ACCESS;
}

static bool
drop_child_of(const tok *t, const void *arg)
{
    return t->kind == TOK_ACCESS && strcmp(t->parent, (const char *)arg) == 0;
}

static void
tbl_grow(auth *a)
{
    size_t nb = a->nb * 2;
    tok **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < a->nb; i++)
        for (tok *t = a->b[i], *next; t; t = next) {
            next = t->next;
            t->next = b[t->hash % nb];
            b[t->hash % nb] = t;
        }
    free(a->b);
    a->b = b;
    a->nb = nb;
}

/* Evict the entry that expires soonest (refresh tokens, which never expire, last). */
static void
tbl_evict_one(auth *a)
{
    tok **victim = NULL;
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < a->nb; i++)
        for (tok **l = &a->b[i]; *l; l = &(*l)->next) {
            int64_t exp = (*l)->s.expires_ms ? (*l)->s.expires_ms : INT64_MAX;
            if (victim == NULL || exp < best) {
                victim = l;
                best = exp;
            }
        }
    if (victim)
        tbl_unlink(a, victim);
}

/* Takes ownership of t. Caller holds mu. */
static void
tbl_insert(auth *a, tok *t)
{
    int64_t now = util_now_ms();
    if (++a->since_sweep >= SWEEP_EVERY || a->n >= MAX_TOKENS) {
        a->since_sweep = 0;
        tbl_remove_if(a, drop_expired, &now);
    }
    while (a->n >= MAX_TOKENS)
        tbl_evict_one(a);
    if (a->n >= a->nb * 2)
        tbl_grow(a);
    t->hash = tok_hash(a, t->token);
    t->next = a->b[t->hash % a->nb];
    a->b[t->hash % a->nb] = t;
    a->n++;
}

/* Find a live entry of the given kind; expired entries met on the way are dropped. */
static tok *
tbl_get(auth *a, const char *token, tok_kind kind)
{
    tok **l = tbl_find(a, token);
    if (l == NULL)
        return NULL;
    if (tok_expired(*l, util_now_ms())) {
        tbl_unlink(a, l);
        return NULL;
    }
    return (*l)->kind == kind ? *l : NULL;
}
static int64_t
ttl_seconds(auth *a)
{
    int64_t s = atomic_load(&a->ttl_s);
    if (s > 0)
        return s;
    if (a->st) {
        s = store_session_ttl_s(a->st);
        if (s > 0)
            return s;
    }
    return DEFAULT_TTL_S;
}

/* ----- lifecycle ------------------------------------------------------------ */

auth *
auth_new(store *st)
{
    auth *a = xcalloc(1, sizeof *a);
    a->st = st;
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->ttl_s, 0);
    a->nb = 256;
    a->b = xcalloc(a->nb, sizeof *a->b);
    util_random(&a->seed, sizeof a->seed);
    a->started_ms = util_now_ms();
    xmlInitParser(); /* once, before HTTP threads parse SOAP */
    return a;
}

void
auth_free(auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nb; i++)
        for (tok *t = a->b[i], *next; t; t = next) {
            next = t->next;
            tok_free(t);
        }
    free(a->b);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void
auth_set_ttl(auth *a, int64_t seconds)
{
    atomic_store(&a->ttl_s, seconds > 0 ? seconds : 0);
}

void
auth_expire_all(auth *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = tbl_remove_if(a, drop_access, NULL);
    pthread_mutex_unlock(&a->mu);
    log_info("auth: expired all %zu session(s)", n);
}

/* ----- issuing and looking up ------------------------------------------------ */

static tok *
tok_new(tok_kind kind, const char *user_id, const char *username, const char *client_id)
{
    tok *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    login_copy(t->s.user_id, sizeof t->s.user_id, user_id);
    login_copy(t->s.username, sizeof t->s.username, username);
    login_copy(t->s.client_id, sizeof t->s.client_id, client_id);
    t->s.issued_ms = util_now_ms();
    return t;
}

_Static_assert(REFRESH_RANDOM <= ACCESS_RANDOM && CODE_RANDOM <= ACCESS_RANDOM,
               "tok_add's buffer holds the longest random part");

/* Name t: prefix, then n random alphanumerics. Copy the name to token and put t
 * in the table (which owns it from then on). */
static void
tok_add(auth *a, tok *t, const char *prefix, size_t n, char token[AUTH_TOKEN_MAX])
{
    char rnd[ACCESS_RANDOM + 1];
    util_random_alnum(rnd, n);
    snprintf(t->token, sizeof t->token, "%s%s", prefix, rnd);
    OPENSSL_cleanse(rnd, sizeof rnd);
    memcpy(token, t->token, sizeof t->token);
    pthread_mutex_lock(&a->mu);
    tbl_insert(a, t);
    pthread_mutex_unlock(&a->mu);
}

int
auth_issue_access(auth *a, const char *user_id, const char *username, const char *client_id,
                  const char *parent, lf_session *out, char token[AUTH_TOKEN_MAX])
{
    char org18[19], org15[16], prefix[sizeof org15 + 1];
    login_org_ids(a->st, org18, org15);
    int64_t ttl = ttl_seconds(a);
    tok *t = tok_new(TOK_ACCESS, user_id, username, client_id);
    t->s.expires_ms = t->s.issued_ms + ttl * 1000;
    login_copy(t->parent, sizeof t->parent, parent);
    if (out)
        *out = t->s;
    snprintf(prefix, sizeof prefix, "%s!", org15);
    tok_add(a, t, prefix, ACCESS_RANDOM, token);
    return 0;
}

int
auth_issue_refresh(auth *a, const char *user_id, const char *username, const char *client_id,
                   char token[AUTH_TOKEN_MAX])
{
    tok *t = tok_new(TOK_REFRESH, user_id, username, client_id);
    tok_add(a, t, "5Aep", REFRESH_RANDOM, token);
    return 0;
}

int
auth_issue_code(auth *a, const char *user_id, const char *username, const char *client_id,
                const char *redirect_uri, const char *challenge, bool challenge_plain,
                char code[AUTH_TOKEN_MAX])
{
    tok *t = tok_new(TOK_CODE, user_id, username, client_id);
    t->s.expires_ms = t->s.issued_ms + CODE_TTL_MS;
    t->redirect_uri = xstrdup(redirect_uri ? redirect_uri : "");
    t->challenge = challenge && *challenge ? xstrdup(challenge) : NULL;
    t->challenge_plain = challenge_plain;
    tok_add(a, t, "aPrx", CODE_RANDOM, code);
    return 0;
}

/* PKCE: does the verifier answer the challenge? */
static bool
pkce_ok(const char *challenge, bool plain, const char *verifier)
{
    if (verifier == NULL || *verifier == '\0')
        return false;
    if (plain)
        return login_secret_eq(challenge, verifier);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1)
        return false;
    char enc[64];
    login_base64(md, mdlen, enc, sizeof enc, true);
    return login_secret_eq(challenge, enc);
}

int
auth_redeem_code(auth *a, const char *code, const char *client_id, const char *redirect_uri,
                 const char *verifier, lf_session *out, const char **why)
{
    *why = "invalid authorization code";
    if (code == NULL || *code == '\0' || strlen(code) >= AUTH_TOKEN_MAX)
        return -1;
    pthread_mutex_lock(&a->mu);
    tok **l = tbl_find(a, code);
    if (l == NULL || (*l)->kind != TOK_CODE) {
        pthread_mutex_unlock(&a->mu);
        return -1;
    }
    /* Single use: whatever happens next, the code is spent. */
    tok *t = *l;
    *l = t->next;
    a->n--;
    pthread_mutex_unlock(&a->mu);

    int rc = -1;
    if (tok_expired(t, util_now_ms()))
        *why = "expired authorization code";
    else if (client_id == NULL || strcmp(client_id, t->s.client_id) != 0)
        *why = "invalid authorization code";
    else if (redirect_uri == NULL || strcmp(redirect_uri, t->redirect_uri) != 0)
        *why = "redirect_uri must match configuration";
    else if (t->challenge && !pkce_ok(t->challenge, t->challenge_plain, verifier))
        *why = "invalid code verifier";
    else {
        *out = t->s;
        rc = 0;
    }
    tok_free(t);
    return rc;
}

/* The session of a live token of that kind. 0 or -1. */
static int
lookup_kind(auth *a, const char *token, tok_kind kind, lf_session *out)
{
    if (token == NULL || *token == '\0' || strlen(token) >= AUTH_TOKEN_MAX)
        return -1;
    pthread_mutex_lock(&a->mu);
    tok *t = tbl_get(a, token, kind);
    if (t && out)
        *out = t->s;
    pthread_mutex_unlock(&a->mu);
    return t ? 0 : -1;
}

int
auth_lookup(auth *a, const char *token, lf_session *out)
{
    return lookup_kind(a, token, TOK_ACCESS, out);
}

int
auth_lookup_refresh(auth *a, const char *token, lf_session *out)
{
    return lookup_kind(a, token, TOK_REFRESH, out);
}

int
auth_revoke(auth *a, const char *token)
{
    if (token == NULL || *token == '\0' || strlen(token) >= AUTH_TOKEN_MAX)
        return -1;
    pthread_mutex_lock(&a->mu);
    tok **l = tbl_find(a, token);
    int rc = -1;
    if (l && !tok_expired(*l, util_now_ms())) {
        bool refresh = (*l)->kind == TOK_REFRESH;
        tbl_unlink(a, l);
        if (refresh)
            tbl_remove_if(a, drop_child_of, token);
        rc = 0;
    } else if (l) {
        tbl_unlink(a, l);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void
auth_sign(const char *secret, const char *id_url, const char *issued_at, char out[AUTH_SIG_MAX])
{
    sb msg = SB_INIT;
    sb_puts(&msg, id_url);
    sb_puts(&msg, issued_at);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    const char *key = secret ? secret : "";
    if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)sb_str(&msg), msg.len, mac,
             &maclen) == NULL)
        maclen = 0;
    login_base64(mac, maclen, out, AUTH_SIG_MAX, false);
    sb_free(&msg);
}

/* ----- request parsing ------------------------------------------------------- */

int
auth_parse_authorization(const char *value, char token[AUTH_TOKEN_MAX])
{
    if (value == NULL)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t skip;
    if (strncasecmp(value, "Bearer", 6) == 0)
        skip = 6;
    else if (strncasecmp(value, "OAuth", 5) == 0)
        skip = 5;
    else
        return -1;
    if (value[skip] != ' ' && value[skip] != '\t')
        return -1;
    value += skip;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= AUTH_TOKEN_MAX)
        return -1;
    memcpy(token, value, n);
    token[n] = '\0';
    return 0;
}

int
auth_parse_basic(const char *value, char *id, size_t idsz, char *secret, size_t secretsz)
{
    if (value == NULL)
        return -1;
    while (*value == ' ')
        value++;
    if (strncasecmp(value, "Basic ", 6) != 0)
        return -1;
    value += 6;
    while (*value == ' ')
        value++;
    size_t n = strlen(value);
    while (n && value[n - 1] == ' ')
        n--;
    if (n == 0 || n % 4 != 0 || n > 4 * 1024)
        return -1;
    unsigned char *dec = xmalloc(n / 4 * 3 + 1);
    int len = EVP_DecodeBlock(dec, (const unsigned char *)value, (int)n);
    if (len < 0) {
        free(dec);
        return -1;
    }
    /* EVP_DecodeBlock counts padding as data bytes. */
    if (value[n - 1] == '=')
        len--;
    if (value[n - 2] == '=')
        len--;
    dec[len] = '\0';
    int rc = -1;
    char *colon = memchr(dec, ':', (size_t)len);
    if (colon && strlen((char *)dec) == (size_t)len) {
        *colon = '\0';
        util_url_decode((char *)dec, false);
        util_url_decode(colon + 1, false);
        if (strlen((char *)dec) < idsz && strlen(colon + 1) < secretsz) {
            login_copy(id, idsz, (char *)dec);
            login_copy(secret, secretsz, colon + 1);
            rc = 0;
        }
    }
    OPENSSL_cleanse(dec, (size_t)len);
    free(dec);
    return rc;
}

/* The access token of a request: the Authorization header, or oauth_token in
 * the query when allow_query (identity URL only). 0 or -1. */
int
auth_request_token(http_req *req, bool allow_query, char token[AUTH_TOKEN_MAX])
{
    if (auth_parse_authorization(http_header(req, "Authorization"), token) == 0)
        return 0;
    if (allow_query) {
        const char *q = http_query(req, "oauth_token");
        if (q && *q && strlen(q) < AUTH_TOKEN_MAX) {
            login_copy(token, AUTH_TOKEN_MAX, q);
            return 0;
        }
    }
    return -1;
}

int
auth_check(auth *a, http_req *req, http_resp *resp, lf_session *out)
{
    char token[AUTH_TOKEN_MAX];
    bool id_url = req->path && strncmp(req->path, "/id/", 4) == 0;
    if (auth_request_token(req, id_url, token) == 0 && auth_lookup(a, token, out) == 0) {
        OPENSSL_cleanse(token, sizeof token);
        return 0;
    }
    OPENSSL_cleanse(token, sizeof token);
    http_errorf(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
    http_set_header(resp, "WWW-Authenticate", "Token");
    return -1;
}

int64_t
auth_started_ms(auth *a)
{
    return a->started_ms;
}
