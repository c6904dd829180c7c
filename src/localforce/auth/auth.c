/*
 * auth: who may talk to the org. See auth.h.
 *
 * Access tokens, refresh tokens and authorization codes live in one hash table
 * keyed by the token string, guarded by one mutex (requests come from several
 * HTTP threads). Expired entries are dropped when a lookup meets them and by a
 * sweep every few hundred insertions, so the table never holds much garbage.
 * Everything is in memory: a restart logs everyone out, and clients recover by
 * logging in again, as they do when Salesforce expires a session.
 *
 * Lock order: the store's lock is never requested while the table's mutex is
 * held (user and app data are copied out of the store first).
 */
#include "auth.h"

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
#include "server.h"
#include "sfid.h"
#include "util.h"

#define AUTH_TOKEN_MAX   192          /* buffer for any token issued or accepted */
#define ACCESS_RANDOM    96           /* "<org15>!" + 96 alphanumerics */
#define REFRESH_RANDOM   83           /* "5Aep" + 83, the shape of Salesforce's */
#define CODE_RANDOM      60           /* "aPrx" + 60 */
#define CODE_TTL_MS      (10 * 60 * 1000)
#define DEFAULT_TTL_S    7200
#define MAX_TOKENS       200000       /* beyond this the soonest-expiring goes */
#define SWEEP_EVERY      256          /* insertions between sweeps */
#define FIELD_MAX        1024         /* form fields and query parameters */
#define SECRET_MAX       512
#define SOAP_MAX_BYTES   (64 * 1024)
#define SCOPE_DEFAULT    "full api"
#define SCOPE_REFRESH    "full api refresh_token"
#define CT_TEXT          "text/plain;charset=UTF-8"
#define CT_FORM          "application/x-www-form-urlencoded;charset=UTF-8"

/* Sizes of the buffers auth_soap_parse() fills (test hook, see below). */
#define AUTH_SOAP_OP_MAX   64
#define AUTH_SOAP_USER_MAX 256
#define AUTH_SOAP_PASS_MAX 1024
#define AUTH_SOAP_SID_MAX  AUTH_TOKEN_MAX
#define AUTH_SIG_MAX       64

/* ----- test hooks -------------------------------------------------------- */
/*
 * Internal functions with external linkage so tests/unit/test_auth.c can reach
 * them without an HTTP server. They are not part of auth.h's interface; the
 * test declares the same prototypes.
 */
int  auth_issue_access(auth *a, const char *user_id, const char *username,
                       const char *client_id, const char *parent, lf_session *out,
                       char token[AUTH_TOKEN_MAX]);
int  auth_issue_refresh(auth *a, const char *user_id, const char *username,
                        const char *client_id, char token[AUTH_TOKEN_MAX]);
int  auth_issue_code(auth *a, const char *user_id, const char *username, const char *client_id,
                     const char *redirect_uri, const char *challenge, bool challenge_plain,
                     char code[AUTH_TOKEN_MAX]);
/* 0 and the code's user in *out; -1 with an OAuth error description in *why. */
int  auth_redeem_code(auth *a, const char *code, const char *client_id, const char *redirect_uri,
                      const char *verifier, lf_session *out, const char **why);
/* An access token's session (not a refresh token's or a code's). 0 or -1. */
int  auth_lookup(auth *a, const char *token, lf_session *out);
/* The refresh token's session. 0 or -1 (unknown or revoked). */
int  auth_lookup_refresh(auth *a, const char *token, lf_session *out);
/* Revoke any kind of token; a refresh token takes its access tokens with it. 0 or -1. */
int  auth_revoke(auth *a, const char *token);
/* base64(HMAC-SHA256(key = secret, id_url + issued_at)) into out (44 chars + NUL). */
void auth_sign(const char *secret, const char *id_url, const char *issued_at,
               char out[AUTH_SIG_MAX]);
/* Parse a SOAP request: op gets the local name of the Body's first element,
 * username/password the text of that element's children of those names (login),
 * session_id the text of Header/SessionHeader/sessionId. Absent fields are "".
 * Returns -1 for anything that is not a well-formed SOAP envelope within the
 * limits (size, no DTD, field lengths). */
int  auth_soap_parse(const char *xml, size_t len, char op[AUTH_SOAP_OP_MAX],
                     char username[AUTH_SOAP_USER_MAX], char password[AUTH_SOAP_PASS_MAX],
                     char session_id[AUTH_SOAP_SID_MAX]);
/* Bearer/OAuth token from an Authorization header value. 0 or -1. */
int  auth_parse_authorization(const char *value, char token[AUTH_TOKEN_MAX]);
/* HTTP Basic credentials "Basic base64(id:secret)". 0 or -1. */
int  auth_parse_basic(const char *value, char *id, size_t idsz, char *secret, size_t secretsz);

/* ----- the token table ---------------------------------------------------- */

typedef enum { TOK_ACCESS, TOK_REFRESH, TOK_CODE } tok_kind;

typedef struct tok {
    struct tok *next;
    uint64_t    hash;
    tok_kind    kind;
    char        token[AUTH_TOKEN_MAX];
    lf_session  s;                      /* expires_ms 0 = never */
    char        parent[AUTH_TOKEN_MAX]; /* access: the refresh token it came from */
    char       *redirect_uri;           /* code: must match at the exchange */
    char       *challenge;              /* code: PKCE code_challenge, or NULL */
    bool        challenge_plain;
} tok;

struct auth {
    store          *st;
    pthread_mutex_t mu;
    atomic_llong    ttl_s;     /* 0 = the store's setting */
    tok           **b;
    size_t          nb, n;
    uint64_t        seed;
    unsigned        since_sweep;
    int64_t         started_ms;
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

/* ----- small helpers -------------------------------------------------------- */

static void
copy_str(char *dst, size_t sz, const char *src)
{
    snprintf(dst, sz, "%s", src ? src : "");
}

/* Constant-time equality of two secrets (the length is not hidden). */
static bool
secret_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

/* The org's ids: 18 characters and the 15-character prefix used in tokens and URLs. */
static void
org_ids(store *st, char org18[19], char org15[16])
{
    const char *id = NULL;
    if (st) {
        store_lock(st);
        id = store_org_id(st);
        copy_str(org18, 19, id && strlen(id) >= 15 ? id : "00D000000000000AAA");
        store_unlock(st);
    } else {
        copy_str(org18, 19, "00D000000000000AAA");
    }
    memcpy(org15, org18, 15);
    org15[15] = '\0';
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

static void
base64_encode(const unsigned char *in, size_t n, char *out, size_t outsz, bool url)
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

static void
url_encode(sb *s, const char *str)
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
static bool
valid_version(const char *v)
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

static void
log_token(const char *what, const char *token)
{
    char red[40];
    log_debug("auth: %s %s", what, log_redact(token, red, sizeof red));
}

/* ----- users and apps (copied out of the store under its lock) ------------- */

typedef struct user_info {
    char id[19];
    char username[128];
    char first[128], last[128], email[256];
    bool active;
} user_info;

static void
user_copy(const lf_user *u, user_info *out)
{
    copy_str(out->id, sizeof out->id, u->id);
    copy_str(out->username, sizeof out->username, u->username);
    copy_str(out->first, sizeof out->first, u->first_name);
    copy_str(out->last, sizeof out->last, u->last_name);
    copy_str(out->email, sizeof out->email, u->email);
    out->active = u->active;
}

/* Check a username and password. 0 fills *out; -1 for an unknown or inactive
 * user or a wrong password (all indistinguishable to the caller, on purpose). */
static int
user_login(store *st, const char *username, const char *password, user_info *out)
{
    if (username == NULL || password == NULL || *username == '\0' || *password == '\0')
        return -1;
    int rc = -1;
    store_lock(st);
    const lf_user *u = store_user_by_name(st, username);
    if (u && u->active && u->username && strlen(u->username) < sizeof out->username &&
        secret_eq(u->password, password)) {
        user_copy(u, out);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

static int
user_by_id(store *st, const char *id, user_info *out)
{
    int rc = -1;
    store_lock(st);
    const lf_user *u = store_user_by_id(st, id);
    if (u) {
        user_copy(u, out);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

static int
user_by_name(store *st, const char *name, user_info *out)
{
    int rc = -1;
    store_lock(st);
    const lf_user *u = store_user_by_name(st, name);
    if (u) {
        user_copy(u, out);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

typedef struct app_info {
    char client_id[128];
    char name[128];
    char secret[SECRET_MAX];
    char run_as[128];
} app_info;

static int
app_get(store *st, const char *client_id, app_info *out)
{
    if (client_id == NULL || *client_id == '\0' || strlen(client_id) >= sizeof out->client_id)
        return -1;
    int rc = -1;
    store_lock(st);
    const lf_app *app = store_app(st, client_id);
    if (app) {
        copy_str(out->client_id, sizeof out->client_id, client_id);
        copy_str(out->name, sizeof out->name, app->name);
        copy_str(out->secret, sizeof out->secret, app->client_secret);
        copy_str(out->run_as, sizeof out->run_as, app->run_as);
        rc = 0;
    }
    store_unlock(st);
    return rc;
}

static void
full_name(const user_info *u, char *out, size_t sz)
{
    snprintf(out, sz, "%s%s%s", u->first, u->first[0] && u->last[0] ? " " : "", u->last);
    if (out[0] == '\0')
        copy_str(out, sz, u->username);
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
    copy_str(t->s.user_id, sizeof t->s.user_id, user_id);
    copy_str(t->s.username, sizeof t->s.username, username);
    copy_str(t->s.client_id, sizeof t->s.client_id, client_id);
    t->s.issued_ms = util_now_ms();
    return t;
}

int
auth_issue_access(auth *a, const char *user_id, const char *username, const char *client_id,
                  const char *parent, lf_session *out, char token[AUTH_TOKEN_MAX])
{
    char org18[19], org15[16], rnd[ACCESS_RANDOM + 1];
    org_ids(a->st, org18, org15);
    int64_t ttl = ttl_seconds(a);
    tok *t = tok_new(TOK_ACCESS, user_id, username, client_id);
    t->s.expires_ms = t->s.issued_ms + ttl * 1000;
    util_random_alnum(rnd, ACCESS_RANDOM);
    snprintf(t->token, sizeof t->token, "%s!%s", org15, rnd);
    copy_str(t->parent, sizeof t->parent, parent);
    memcpy(token, t->token, sizeof t->token);
    if (out)
        *out = t->s;
    pthread_mutex_lock(&a->mu);
    tbl_insert(a, t);
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}

int
auth_issue_refresh(auth *a, const char *user_id, const char *username, const char *client_id,
                   char token[AUTH_TOKEN_MAX])
{
    char rnd[REFRESH_RANDOM + 1];
    tok *t = tok_new(TOK_REFRESH, user_id, username, client_id);
    util_random_alnum(rnd, REFRESH_RANDOM);
    snprintf(t->token, sizeof t->token, "5Aep%s", rnd);
    memcpy(token, t->token, sizeof t->token);
    pthread_mutex_lock(&a->mu);
    tbl_insert(a, t);
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}

int
auth_issue_code(auth *a, const char *user_id, const char *username, const char *client_id,
                const char *redirect_uri, const char *challenge, bool challenge_plain,
                char code[AUTH_TOKEN_MAX])
{
    char rnd[CODE_RANDOM + 1];
    tok *t = tok_new(TOK_CODE, user_id, username, client_id);
    t->s.expires_ms = t->s.issued_ms + CODE_TTL_MS;
    t->redirect_uri = xstrdup(redirect_uri ? redirect_uri : "");
    t->challenge = challenge && *challenge ? xstrdup(challenge) : NULL;
    t->challenge_plain = challenge_plain;
    util_random_alnum(rnd, CODE_RANDOM);
    snprintf(t->token, sizeof t->token, "aPrx%s", rnd);
    memcpy(code, t->token, sizeof t->token);
    pthread_mutex_lock(&a->mu);
    tbl_insert(a, t);
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}

/* PKCE: does the verifier answer the challenge? */
static bool
pkce_ok(const char *challenge, bool plain, const char *verifier)
{
    if (verifier == NULL || *verifier == '\0')
        return false;
    if (plain)
        return secret_eq(challenge, verifier);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1)
        return false;
    char enc[64];
    base64_encode(md, mdlen, enc, sizeof enc, true);
    return secret_eq(challenge, enc);
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

int
auth_lookup(auth *a, const char *token, lf_session *out)
{
    if (token == NULL || *token == '\0' || strlen(token) >= AUTH_TOKEN_MAX)
        return -1;
    pthread_mutex_lock(&a->mu);
    tok *t = tbl_get(a, token, TOK_ACCESS);
    if (t && out)
        *out = t->s;
    pthread_mutex_unlock(&a->mu);
    return t ? 0 : -1;
}

int
auth_lookup_refresh(auth *a, const char *token, lf_session *out)
{
    if (token == NULL || *token == '\0' || strlen(token) >= AUTH_TOKEN_MAX)
        return -1;
    pthread_mutex_lock(&a->mu);
    tok *t = tbl_get(a, token, TOK_REFRESH);
    if (t && out)
        *out = t->s;
    pthread_mutex_unlock(&a->mu);
    return t ? 0 : -1;
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
    if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)sb_str(&msg), msg.len,
             mac, &maclen) == NULL)
        maclen = 0;
    base64_encode(mac, maclen, out, AUTH_SIG_MAX, false);
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
            copy_str(id, idsz, (char *)dec);
            copy_str(secret, secretsz, colon + 1);
            rc = 0;
        }
    }
    OPENSSL_cleanse(dec, (size_t)len);
    free(dec);
    return rc;
}

/* A parameter from the form body, else from the query string. NULL if absent
 * or too long to be real. */
static const char *
param(http_req *req, const char *name, char *buf, size_t bufsz)
{
    const char *v = http_form(req, name, buf, bufsz);
    if (v)
        return v;
    v = http_query(req, name);
    if (v == NULL || strlen(v) >= bufsz)
        return NULL;
    copy_str(buf, bufsz, v);
    return buf;
}

static const char *
nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* The access token of a request: the Authorization header, or oauth_token in
 * the query when allow_query (identity URL only). 0 or -1. */
static int
request_token(http_req *req, bool allow_query, char token[AUTH_TOKEN_MAX])
{
    if (auth_parse_authorization(http_header(req, "Authorization"), token) == 0)
        return 0;
    if (allow_query) {
        const char *q = http_query(req, "oauth_token");
        if (q && *q && strlen(q) < AUTH_TOKEN_MAX) {
            copy_str(token, AUTH_TOKEN_MAX, q);
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
    if (request_token(req, id_url, token) == 0 && auth_lookup(a, token, out) == 0) {
        OPENSSL_cleanse(token, sizeof token);
        return 0;
    }
    OPENSSL_cleanse(token, sizeof token);
    http_errorf(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
    http_set_header(resp, "WWW-Authenticate", "Token");
    return -1;
}

/* ----- the token endpoint --------------------------------------------------- */

typedef struct grant {
    user_info user;
    app_info  app;
    char      parent[AUTH_TOKEN_MAX]; /* refresh token the new session comes from */
    bool      want_refresh;
    const char *error, *desc;         /* on failure */
} grant;

static int
grant_fail(grant *g, const char *error, const char *desc)
{
    g->error = error;
    g->desc = desc;
    return -1;
}

/* The connected app named by client_id; with check_secret the secret must match
 * (a NULL secret fails). */
static int
grant_app(store *st, grant *g, const char *client_id, const char *secret, bool check_secret)
{
    if (app_get(st, nonempty(client_id), &g->app) != 0)
        return grant_fail(g, "invalid_client_id", "client identifier invalid");
    if (check_secret && !secret_eq(g->app.secret, secret))
        return grant_fail(g, "invalid_client", "invalid client credentials");
    return 0;
}

static int
grant_password(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], user[FIELD_MAX], pass[FIELD_MAX];
    const char *client_id = param(req, "client_id", cid, sizeof cid);
    const char *secret = param(req, "client_secret", csec, sizeof csec);
    const char *username = param(req, "username", user, sizeof user);
    const char *password = param(req, "password", pass, sizeof pass);
    int rc = grant_app(srv->st, g, client_id, secret, true);
    if (rc == 0 && (nonempty(username) == NULL || nonempty(password) == NULL))
        rc = grant_fail(g, "invalid_request",
                        nonempty(username) ? "missing required parameter: password"
                                           : "missing required parameter: username");
    if (rc == 0 && user_login(srv->st, username, password, &g->user) != 0) {
        log_info("auth: password login failed for user '%s'", username);
        rc = grant_fail(g, "invalid_grant", "authentication failure");
    }
    OPENSSL_cleanse(pass, sizeof pass);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_refresh(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], rt[FIELD_MAX];
    const char *client_id = param(req, "client_id", cid, sizeof cid);
    const char *secret = nonempty(param(req, "client_secret", csec, sizeof csec));
    const char *refresh = nonempty(param(req, "refresh_token", rt, sizeof rt));
    lf_session s;
    memset(&s, 0, sizeof s);
    int rc = grant_app(srv->st, g, client_id, secret, secret != NULL);
    if (rc == 0 && refresh == NULL)
        rc = grant_fail(g, "invalid_request", "missing required parameter: refresh_token");
    if (rc == 0 && (auth_lookup_refresh(srv->auth, refresh, &s) != 0 ||
                    strcmp(s.client_id, g->app.client_id) != 0))
        rc = grant_fail(g, "invalid_grant", "expired access/refresh token");
    if (rc == 0 && (user_by_id(srv->st, s.user_id, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_grant", "inactive user");
    if (rc == 0)
        copy_str(g->parent, sizeof g->parent, refresh);
    OPENSSL_cleanse(rt, sizeof rt);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_code(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], code[FIELD_MAX], redir[FIELD_MAX], ver[FIELD_MAX];
    const char *client_id = param(req, "client_id", cid, sizeof cid);
    const char *secret = nonempty(param(req, "client_secret", csec, sizeof csec));
    const char *c = nonempty(param(req, "code", code, sizeof code));
    const char *redirect = param(req, "redirect_uri", redir, sizeof redir);
    const char *verifier = nonempty(param(req, "code_verifier", ver, sizeof ver));
    /* The secret may be left out only when PKCE protects the code. */
    int rc = grant_app(srv->st, g, client_id, secret, secret != NULL || verifier == NULL);
    if (rc == 0 && c == NULL)
        rc = grant_fail(g, "invalid_request", "missing required code parameter");
    if (rc == 0 && nonempty(redirect) == NULL)
        rc = grant_fail(g, "invalid_request", "missing required redirect_uri parameter");
    lf_session s;
    memset(&s, 0, sizeof s);
    const char *why = NULL;
    if (rc == 0 &&
        auth_redeem_code(srv->auth, c, g->app.client_id, redirect, verifier, &s, &why) != 0)
        rc = grant_fail(g, "invalid_grant", why);
    if (rc == 0 && (user_by_id(srv->st, s.user_id, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_grant", "inactive user");
    g->want_refresh = true;
    OPENSSL_cleanse(code, sizeof code);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_client_credentials(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX];
    const char *client_id = param(req, "client_id", cid, sizeof cid);
    const char *secret = param(req, "client_secret", csec, sizeof csec);
    if (nonempty(client_id) == NULL &&
        auth_parse_basic(http_header(req, "Authorization"), cid, sizeof cid, csec,
                         sizeof csec) == 0) {
        client_id = cid;
        secret = csec;
    }
    int rc = grant_app(srv->st, g, client_id, secret, true);
    if (rc == 0 && (g->app.run_as[0] == '\0' ||
                    user_by_name(srv->st, g->app.run_as, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_request", "no client credentials user enabled");
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static const struct {
    const char *name;
    int (*fn)(lf_server *srv, http_req *req, grant *g);
} grant_types[] = {
    {"password", grant_password},
    {"refresh_token", grant_refresh},
    {"authorization_code", grant_code},
    {"client_credentials", grant_client_credentials},
};

static void
oauth_error(http_resp *resp, int status, const char *error, const char *desc)
{
    resp->status = status;
    resp->content_type = CT_JSON;
    sb_clear(&resp->body);
    sb_puts(&resp->body, "{\"error\":");
    sb_json_str(&resp->body, error);
    sb_puts(&resp->body, ",\"error_description\":");
    sb_json_str(&resp->body, desc);
    sb_putc(&resp->body, '}');
    http_set_header(resp, "Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private");
}

/* Everything a token response carries about one new session. */
typedef struct issued {
    char    access[AUTH_TOKEN_MAX];
    char    refresh[AUTH_TOKEN_MAX];
    char    id_url[512];
    char    issued_at[24];
    char    signature[AUTH_SIG_MAX];
} issued;

static void
issue_session(lf_server *srv, const grant *g, issued *out)
{
    char org18[19], org15[16];
    lf_session s;
    org_ids(srv->st, org18, org15);
    /* A refresh token issued with the session is its parent too: revoking the
     * refresh token ends every session that came with it or from it. */
    out->refresh[0] = '\0';
    if (g->want_refresh)
        auth_issue_refresh(srv->auth, g->user.id, g->user.username, g->app.client_id,
                           out->refresh);
    const char *parent = g->want_refresh ? out->refresh : g->parent[0] ? g->parent : NULL;
    auth_issue_access(srv->auth, g->user.id, g->user.username, g->app.client_id, parent, &s,
                      out->access);
    snprintf(out->id_url, sizeof out->id_url, "%s/id/%s/%s", srv->base_url, org18, g->user.id);
    snprintf(out->issued_at, sizeof out->issued_at, "%lld", (long long)s.issued_ms);
    auth_sign(g->app.secret, out->id_url, out->issued_at, out->signature);
}

void
auth_handle_token(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    char gt[64];
    const char *name = param(req, "grant_type", gt, sizeof gt);
    grant g;
    memset(&g, 0, sizeof g);
    int rc = -1;
    const char *flow = NULL;
    for (size_t i = 0; name && i < sizeof grant_types / sizeof grant_types[0]; i++)
        if (strcmp(name, grant_types[i].name) == 0) {
            flow = grant_types[i].name;
            rc = grant_types[i].fn(srv, req, &g);
            break;
        }
    if (flow == NULL) {
        oauth_error(resp, 400, "unsupported_grant_type", "grant type not supported");
    } else if (rc != 0) {
        oauth_error(resp, 400, g.error, g.desc);
    } else {
        issued is;
        issue_session(srv, &g, &is);
        sb *b = &resp->body;
        resp->status = 200;
        resp->content_type = CT_JSON;
        sb_clear(b);
        sb_puts(b, "{\"access_token\":");
        sb_json_str(b, is.access);
        if (is.refresh[0]) {
            sb_puts(b, ",\"refresh_token\":");
            sb_json_str(b, is.refresh);
        }
        sb_puts(b, ",\"signature\":");
        sb_json_str(b, is.signature);
        sb_puts(b, ",\"scope\":");
        sb_json_str(b, is.refresh[0] ? SCOPE_REFRESH : SCOPE_DEFAULT);
        sb_puts(b, ",\"instance_url\":");
        sb_json_str(b, srv->base_url);
        sb_puts(b, ",\"id\":");
        sb_json_str(b, is.id_url);
        sb_puts(b, ",\"token_type\":\"Bearer\",\"issued_at\":");
        sb_json_str(b, is.issued_at);
        sb_putc(b, '}');
        http_set_header(resp, "Cache-Control",
                        "no-cache,must-revalidate,max-age=0,no-store,private");
        log_info("auth: %s signed in (%s grant, app '%s')", g.user.username, flow, g.app.name);
        OPENSSL_cleanse(&is, sizeof is);
    }
    OPENSSL_cleanse(&g.app.secret, sizeof g.app.secret);
}

/* ----- revoke --------------------------------------------------------------- */

void
auth_handle_revoke(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    char tk[FIELD_MAX];
    const char *token = nonempty(param(req, "token", tk, sizeof tk));
    sb_clear(&resp->body);
    if (token && auth_revoke(srv->auth, token) == 0) {
        log_token("revoked", token);
        resp->status = 200;
        resp->content_type = CT_TEXT;
    } else {
        resp->status = 400;
        resp->content_type = CT_FORM;
        sb_puts(&resp->body, token ? "error=invalid_token&error_description=invalid%20token"
                                   : "error=invalid_request&error_description="
                                     "missing%20required%20parameter%3A%20token");
    }
    OPENSSL_cleanse(tk, sizeof tk);
}

/* ----- the authorize page -------------------------------------------------- */

typedef struct authz {
    char response_type[32];
    char client_id[128];
    char redirect_uri[FIELD_MAX];
    char state[FIELD_MAX];
    char scope[256];
    char challenge[256];
    char challenge_method[16];
} authz;

static void
authz_field(http_req *req, const char *name, char *out, size_t sz)
{
    char buf[FIELD_MAX];
    const char *v = param(req, name, buf, sizeof buf);
    if (v == NULL || strlen(v) >= sz)
        v = "";
    copy_str(out, sz, v);
}

/* A redirect URI we are willing to put in a Location header: absolute
 * (scheme:...), printable ASCII, no fragment. */
static bool
redirect_ok(const char *u)
{
    const char *p = u;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p != ':' || p[1] == '\0')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
            return false;
    return true;
}

/* HTML text or attribute value: &, <, >, " and ' escaped (' as &#39;, which
 * every HTML parser knows). */
static void
html_str(sb *b, const char *str)
{
    for (const char *p = str; p && *p; p++) {
        switch (*p) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_putc(b, *p);
        }
    }
}

static void
html_head(sb *b, const char *title)
{
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\">"
               "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    html_str(b, title);
    sb_puts(b, "</title><style>body{font-family:sans-serif;background:#f3f3f3;margin:0}"
               "main{max-width:22em;margin:4em auto;background:#fff;padding:2em;"
               "border:1px solid #ddd;border-radius:4px}label{display:block;margin:1em 0 .3em}"
               "input[type=text],input[type=password]{width:100%;box-sizing:border-box;"
               "padding:.5em}button{margin-top:1.5em;width:100%;padding:.7em;background:#0070d2;"
               "color:#fff;border:0;border-radius:4px}.error{color:#c23934}</style>"
               "</head><body><main><h1>localforce</h1>");
}

static void
html_error_page(http_resp *resp, const char *error, const char *desc)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 400;
    resp->content_type = CT_HTML;
    html_head(b, "Error | localforce");
    sb_puts(b, "<p class=\"error\">error=");
    html_str(b, error);
    sb_puts(b, "&amp;error_description=");
    html_str(b, desc);
    sb_puts(b, "</p></main></body></html>\n");
}

static void
hidden(sb *b, const char *name, const char *value)
{
    if (value[0] == '\0')
        return;
    sb_puts(b, "<input type=\"hidden\" name=\"");
    html_str(b, name);
    sb_puts(b, "\" value=\"");
    html_str(b, value);
    sb_puts(b, "\">");
}

static void
login_page(http_resp *resp, const authz *z, const char *app_name, const char *username,
           const char *error)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_HTML;
    html_head(b, "Login | localforce");
    sb_puts(b, "<p>Log in to allow <strong>");
    html_str(b, app_name);
    sb_puts(b, "</strong> to access your data.</p>");
    if (error) {
        sb_puts(b, "<p class=\"error\" id=\"error\">");
        html_str(b, error);
        sb_puts(b, "</p>");
    }
    sb_puts(b, "<form method=\"POST\" action=\"/services/oauth2/authorize\">");
    hidden(b, "response_type", z->response_type);
    hidden(b, "client_id", z->client_id);
    hidden(b, "redirect_uri", z->redirect_uri);
    hidden(b, "state", z->state);
    hidden(b, "scope", z->scope);
    hidden(b, "code_challenge", z->challenge);
    hidden(b, "code_challenge_method", z->challenge_method);
    sb_puts(b, "<label for=\"username\">Username</label><input type=\"text\" id=\"username\" "
               "name=\"username\" autocomplete=\"username\" value=\"");
    html_str(b, username ? username : "");
    sb_puts(b, "\"><label for=\"password\">Password</label><input type=\"password\" "
               "id=\"password\" name=\"password\" autocomplete=\"current-password\">"
               "<button type=\"submit\" name=\"Login\" value=\"Log In\">Log In</button>"
               "</form></main></body></html>\n");
    http_set_header(resp, "Cache-Control", "no-cache,no-store");
    http_set_header(resp, "X-Frame-Options", "DENY");
}

/* 302 to the client's redirect URI; sep is '?' (code flow) or '#' (token flow);
 * params holds "k=v&..." already encoded. */
static void
redirect_to(http_resp *resp, const char *uri, char sep, const sb *params)
{
    sb loc = SB_INIT;
    sb_puts(&loc, uri);
    if (sep == '?' && strchr(uri, '?'))
        sep = '&';
    sb_putc(&loc, sep);
    sb_puts(&loc, sb_str(params));
    resp->status = 302;
    resp->content_type = CT_HTML;
    sb_clear(&resp->body);
    http_set_header(resp, "Location", sb_str(&loc));
    http_set_header(resp, "Cache-Control", "no-cache,no-store");
    OPENSSL_cleanse(loc.buf, loc.len);
    sb_free(&loc);
}

static void
add_param(sb *p, const char *name, const char *value)
{
    if (p->len)
        sb_putc(p, '&');
    sb_puts(p, name);
    sb_putc(p, '=');
    url_encode(p, value);
}

static void
redirect_error(http_resp *resp, const authz *z, const char *error, const char *desc)
{
    sb p = SB_INIT;
    add_param(&p, "error", error);
    add_param(&p, "error_description", desc);
    if (z->state[0])
        add_param(&p, "state", z->state);
    redirect_to(resp, z->redirect_uri, strcmp(z->response_type, "token") == 0 ? '#' : '?', &p);
    sb_free(&p);
}

void
auth_handle_authorize(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    authz z;
    app_info app;
    memset(&z, 0, sizeof z);
    authz_field(req, "response_type", z.response_type, sizeof z.response_type);
    authz_field(req, "client_id", z.client_id, sizeof z.client_id);
    authz_field(req, "redirect_uri", z.redirect_uri, sizeof z.redirect_uri);
    authz_field(req, "state", z.state, sizeof z.state);
    authz_field(req, "scope", z.scope, sizeof z.scope);
    authz_field(req, "code_challenge", z.challenge, sizeof z.challenge);
    authz_field(req, "code_challenge_method", z.challenge_method, sizeof z.challenge_method);

    if (app_get(srv->st, z.client_id, &app) != 0) {
        html_error_page(resp, "invalid_client_id", "client identifier invalid");
        return;
    }
    if (!redirect_ok(z.redirect_uri)) {
        html_error_page(resp, "redirect_uri_mismatch", "redirect_uri must match configuration");
        return;
    }
    if (strcmp(z.response_type, "code") != 0 && strcmp(z.response_type, "token") != 0) {
        redirect_error(resp, &z, "unsupported_response_type", "response type not supported");
        return;
    }
    bool plain = strcmp(z.challenge_method, "plain") == 0;
    if (z.challenge_method[0] && !plain && strcmp(z.challenge_method, "S256") != 0) {
        redirect_error(resp, &z, "invalid_request", "invalid code_challenge_method");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        login_page(resp, &z, app.name[0] ? app.name : app.client_id, NULL, NULL);
        return;
    }

    char ubuf[FIELD_MAX], pbuf[FIELD_MAX];
    const char *username = http_form(req, "username", ubuf, sizeof ubuf);
    const char *password = http_form(req, "password", pbuf, sizeof pbuf);
    user_info u;
    if (user_login(srv->st, username, password, &u) != 0) {
        OPENSSL_cleanse(pbuf, sizeof pbuf);
        log_info("auth: authorize login failed for user '%s'", username ? username : "");
        login_page(resp, &z, app.name[0] ? app.name : app.client_id, username,
                   "Please check your username and password. If you still can't log in, "
                   "contact your Salesforce administrator.");
        return;
    }
    OPENSSL_cleanse(pbuf, sizeof pbuf);

    sb p = SB_INIT;
    if (strcmp(z.response_type, "code") == 0) {
        char code[AUTH_TOKEN_MAX];
        auth_issue_code(srv->auth, u.id, u.username, app.client_id, z.redirect_uri,
                        z.challenge, plain, code);
        add_param(&p, "code", code);
        if (z.state[0])
            add_param(&p, "state", z.state);
        redirect_to(resp, z.redirect_uri, '?', &p);
        OPENSSL_cleanse(code, sizeof code);
    } else {
        /* User-agent flow: the session goes back in the fragment. */
        grant g;
        issued is;
        memset(&g, 0, sizeof g);
        g.user = u;
        g.app = app;
        issue_session(srv, &g, &is);
        add_param(&p, "access_token", is.access);
        add_param(&p, "instance_url", srv->base_url);
        add_param(&p, "id", is.id_url);
        add_param(&p, "issued_at", is.issued_at);
        add_param(&p, "signature", is.signature);
        add_param(&p, "scope", SCOPE_DEFAULT);
        add_param(&p, "token_type", "Bearer");
        if (z.state[0])
            add_param(&p, "state", z.state);
        redirect_to(resp, z.redirect_uri, '#', &p);
        OPENSSL_cleanse(&is, sizeof is);
    }
    log_info("auth: %s authorized app '%s' (%s flow)", u.username, app.name,
             z.response_type);
    OPENSSL_cleanse(p.buf, p.len);
    sb_free(&p);
    OPENSSL_cleanse(app.secret, sizeof app.secret);
}

/* ----- SOAP login / logout --------------------------------------------------- */

#define SOAP_ENV_NS  "http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP12_ENV_NS "http://www.w3.org/2003/05/soap-envelope"

static bool
has_doctype(const char *xml, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (xml[i] == '<' && xml[i + 1] == '!' &&
            (strncasecmp(xml + i + 2, "DOCTYPE", len - i - 2 < 7 ? len - i - 2 : 7) == 0 ||
             strncasecmp(xml + i + 2, "ENTITY", len - i - 2 < 6 ? len - i - 2 : 6) == 0))
            return true;
    return false;
}

static bool
is_elem(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static xmlNode *
first_elem(xmlNode *n)
{
    for (; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

static xmlNode *
child_elem(xmlNode *parent, const char *local)
{
    for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
        if (is_elem(n, local))
            return n;
    return NULL;
}

/* Text of an element into out; "" if n is NULL. -1 if it does not fit. */
static int
elem_text(xmlNode *n, char *out, size_t sz)
{
    out[0] = '\0';
    if (n == NULL)
        return 0;
    xmlChar *c = xmlNodeGetContent(n);
    if (c == NULL)
        return 0;
    size_t len = strlen((const char *)c);
    int rc = -1;
    if (len < sz) {
        memcpy(out, c, len + 1);
        rc = 0;
    }
    OPENSSL_cleanse(c, len);
    xmlFree(c);
    return rc;
}

int
auth_soap_parse(const char *xml, size_t len, char op[AUTH_SOAP_OP_MAX],
                char username[AUTH_SOAP_USER_MAX], char password[AUTH_SOAP_PASS_MAX],
                char session_id[AUTH_SOAP_SID_MAX])
{
    op[0] = username[0] = password[0] = session_id[0] = '\0';
    if (xml == NULL || len == 0 || len > SOAP_MAX_BYTES || has_doctype(xml, len))
        return -1;
    xmlDoc *doc = xmlReadMemory(xml, (int)len, "soap.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return -1;
    int rc = -1;
    xmlNode *env = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset || !is_elem(env, "Envelope") || env->ns == NULL ||
        (strcmp((const char *)env->ns->href, SOAP_ENV_NS) != 0 &&
         strcmp((const char *)env->ns->href, SOAP12_ENV_NS) != 0))
        goto out;
    xmlNode *body = child_elem(env, "Body");
    xmlNode *call = body ? first_elem(body->children) : NULL;
    if (call == NULL || strlen((const char *)call->name) >= AUTH_SOAP_OP_MAX)
        goto out;
    copy_str(op, AUTH_SOAP_OP_MAX, (const char *)call->name);
    xmlNode *sh = child_elem(child_elem(env, "Header"), "SessionHeader");
    if (elem_text(child_elem(call, "username"), username, AUTH_SOAP_USER_MAX) != 0 ||
        elem_text(child_elem(call, "password"), password, AUTH_SOAP_PASS_MAX) != 0 ||
        elem_text(child_elem(sh, "sessionId"), session_id, AUTH_SOAP_SID_MAX) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        op[0] = username[0] = password[0] = session_id[0] = '\0';
    xmlFreeDoc(doc);
    return rc;
}

static void
soap_open(sb *b, bool fault)
{
    sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
               "xmlns:soapenv=\"" SOAP_ENV_NS "\" ");
    sb_puts(b, fault ? "xmlns:sf=\"urn:fault.partner.soap.sforce.com\" "
                     : "xmlns=\"urn:partner.soap.sforce.com\" ");
    sb_puts(b, "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>");
}

static void
soap_close(sb *b)
{
    sb_puts(b, "</soapenv:Body></soapenv:Envelope>");
}

/* A SOAP fault, HTTP 500. With exc_code, a detail element of type fault_type
 * carries sf:exceptionCode and sf:exceptionMessage. */
static void
soap_fault(http_resp *resp, const char *faultcode, const char *faultstring,
           const char *fault_type, const char *exc_code, const char *exc_msg)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 500;
    resp->content_type = CT_XML;
    soap_open(b, true);
    sb_puts(b, "<soapenv:Fault><faultcode>");
    sb_xml_str(b, faultcode);
    sb_puts(b, "</faultcode><faultstring>");
    sb_xml_str(b, faultstring);
    sb_puts(b, "</faultstring>");
    if (exc_code) {
        sb_printf(b, "<detail><sf:%s xsi:type=\"sf:%s\"><sf:exceptionCode>", fault_type,
                  fault_type);
        sb_xml_str(b, exc_code);
        sb_puts(b, "</sf:exceptionCode><sf:exceptionMessage>");
        sb_xml_str(b, exc_msg);
        sb_printf(b, "</sf:exceptionMessage></sf:%s></detail>", fault_type);
    }
    sb_puts(b, "</soapenv:Fault>");
    soap_close(b);
}

static void
xml_elem(sb *b, const char *name, const char *text)
{
    sb_printf(b, "<%s>", name);
    sb_xml_str(b, text);
    sb_printf(b, "</%s>", name);
}

static void
soap_login(lf_server *srv, http_resp *resp, const char *ver, const char *username,
           const char *password)
{
    user_info u;
    if (user_login(srv->st, username, password, &u) != 0) {
        log_info("auth: SOAP login failed for user '%s'", username);
        soap_fault(resp, "sf:INVALID_LOGIN",
                   "INVALID_LOGIN: Invalid username, password, security token; or user "
                   "locked out.",
                   "LoginFault", "INVALID_LOGIN",
                   "Invalid username, password, security token; or user locked out.");
        return;
    }
    char org18[19], org15[16], token[AUTH_TOKEN_MAX], name[300], ttl[24], url[512];
    char org_name[256];
    org_ids(srv->st, org18, org15);
    store_lock(srv->st);
    copy_str(org_name, sizeof org_name, store_org_name(srv->st));
    store_unlock(srv->st);
    lf_session s;
    auth_issue_access(srv->auth, u.id, u.username, "", NULL, &s, token);
    full_name(&u, name, sizeof name);
    snprintf(ttl, sizeof ttl, "%lld", (long long)((s.expires_ms - s.issued_ms) / 1000));

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_XML;
    soap_open(b, false);
    sb_puts(b, "<loginResponse><result>");
    snprintf(url, sizeof url, "%s/services/Soap/m/%s/%s", srv->base_url, ver, org15);
    xml_elem(b, "metadataServerUrl", url);
    sb_puts(b, "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>");
    snprintf(url, sizeof url, "%s/services/Soap/u/%s/%s", srv->base_url, ver, org15);
    xml_elem(b, "serverUrl", url);
    xml_elem(b, "sessionId", token);
    xml_elem(b, "userId", u.id);
    sb_puts(b, "<userInfo><accessibilityMode>false</accessibilityMode>"
               "<chatterExternal>false</chatterExternal><currencySymbol>$</currencySymbol>"
               "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
               "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
               "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>"
               "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
               "<orgHasPersonAccounts>false</orgHasPersonAccounts>");
    xml_elem(b, "organizationId", org18);
    sb_puts(b, "<organizationMultiCurrency>false</organizationMultiCurrency>");
    xml_elem(b, "organizationName", org_name);
    sb_puts(b, "<roleId xsi:nil=\"true\"/>");
    xml_elem(b, "sessionSecondsValid", ttl);
    sb_puts(b, "<userDefaultCurrencyIsoCode xsi:nil=\"true\"/>");
    xml_elem(b, "userEmail", u.email);
    xml_elem(b, "userFullName", name);
    xml_elem(b, "userId", u.id);
    sb_puts(b, "<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>");
    xml_elem(b, "userName", u.username);
    sb_puts(b, "<userTimeZone>GMT</userTimeZone><userType>Standard</userType>"
               "<userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse>");
    soap_close(b);
    log_info("auth: %s signed in (SOAP login)", u.username);
    OPENSSL_cleanse(token, sizeof token);
}

void
auth_handle_soap(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    const char *ver = req->nseg > 0 ? req->seg[0] : "59.0";
    if (!valid_version(ver)) {
        soap_fault(resp, "sf:UNSUPPORTED_API_VERSION",
                   "UNSUPPORTED_API_VERSION: Invalid Api version specified on URL",
                   "UnexpectedErrorFault", "UNSUPPORTED_API_VERSION",
                   "Invalid Api version specified on URL");
        return;
    }
    char op[AUTH_SOAP_OP_MAX], user[AUTH_SOAP_USER_MAX], pass[AUTH_SOAP_PASS_MAX];
    char sid[AUTH_SOAP_SID_MAX];
    if (req->body_len > SOAP_MAX_BYTES) {
        soap_fault(resp, "soapenv:Client", "Request too large", NULL, NULL, NULL);
        return;
    }
    if (auth_soap_parse(req->body, req->body_len, op, user, pass, sid) != 0) {
        soap_fault(resp, "soapenv:Client",
                   "Unable to parse the request: not a well-formed SOAP envelope", NULL, NULL,
                   NULL);
        return;
    }
    if (strcmp(op, "login") == 0) {
        soap_login(srv, resp, ver, user, pass);
    } else if (strcmp(op, "logout") == 0) {
        if (sid[0] == '\0' || auth_revoke(srv->auth, sid) != 0) {
            soap_fault(resp, "sf:INVALID_SESSION_ID",
                       "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
                       "Illegal Session",
                       "UnexpectedErrorFault", "INVALID_SESSION_ID",
                       "Invalid Session ID found in SessionHeader: Illegal Session");
        } else {
            log_token("SOAP logout of", sid);
            sb_clear(&resp->body);
            resp->status = 200;
            resp->content_type = CT_XML;
            soap_open(&resp->body, false);
            sb_puts(&resp->body, "<logoutResponse/>");
            soap_close(&resp->body);
        }
    } else {
        sb msg = SB_INIT;
        sb_printf(&msg, "No operation available for request {urn:partner.soap.sforce.com}%s, "
                        "please check the WSDL for the service.", op);
        soap_fault(resp, "soapenv:Client", sb_str(&msg), NULL, NULL, NULL);
        sb_free(&msg);
    }
    OPENSSL_cleanse(pass, sizeof pass);
    OPENSSL_cleanse(sid, sizeof sid);
}

/* ----- identity and userinfo ------------------------------------------------ */

static void
text_error(http_resp *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = CT_TEXT;
    sb_clear(&resp->body);
    sb_puts(&resp->body, text);
}

/* The token's session, or a 403 Missing_OAuth_Token / Bad_OAuth_Token. */
static int
identity_session(lf_server *srv, http_req *req, http_resp *resp, bool allow_query,
                 lf_session *s, user_info *u)
{
    char token[AUTH_TOKEN_MAX];
    if (request_token(req, allow_query, token) != 0) {
        text_error(resp, 403, "Missing_OAuth_Token");
        return -1;
    }
    int rc = auth_lookup(srv->auth, token, s);
    OPENSSL_cleanse(token, sizeof token);
    if (rc != 0) {
        text_error(resp, 403, "Bad_OAuth_Token");
        return -1;
    }
    if (user_by_id(srv->st, s->user_id, u) != 0 || !u->active) {
        text_error(resp, 404, "Inactive");
        return -1;
    }
    return 0;
}

static void
json_field(sb *b, const char *name, const char *value, bool null_if_empty)
{
    sb_json_str(b, name);
    sb_putc(b, ':');
    if (null_if_empty && (value == NULL || *value == '\0'))
        sb_puts(b, "null");
    else
        sb_json_str(b, value ? value : "");
    sb_putc(b, ',');
}

/* "name":"<url>", with the URL built from fmt (values are escaped as JSON). */
static void json_url(sb *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
json_url(sb *b, const char *name, const char *fmt, ...)
{
    sb url = SB_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&url, fmt, ap);
    va_end(ap);
    sb_json_str(b, name);
    sb_putc(b, ':');
    sb_json_str(b, sb_str(&url));
    sb_free(&url);
}

/* "photos":{...},"urls":{...}, with {version} as Salesforce writes it unless ver is given. */
static void
identity_urls(sb *b, lf_server *srv, const char *org15, const char *user_id, const char *ver)
{
    const char *base = srv->base_url;
    sb_puts(b, "\"photos\":{");
    json_url(b, "picture", "%s/profilephoto/005/F", base);
    sb_putc(b, ',');
    json_url(b, "thumbnail", "%s/profilephoto/005/T", base);
    sb_puts(b, "},\"urls\":{");
    json_url(b, "enterprise", "%s/services/Soap/c/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "metadata", "%s/services/Soap/m/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "partner", "%s/services/Soap/u/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "rest", "%s/services/data/v%s/", base, ver);
    sb_putc(b, ',');
    json_url(b, "sobjects", "%s/services/data/v%s/sobjects/", base, ver);
    sb_putc(b, ',');
    json_url(b, "search", "%s/services/data/v%s/search/", base, ver);
    sb_putc(b, ',');
    json_url(b, "query", "%s/services/data/v%s/query/", base, ver);
    sb_putc(b, ',');
    json_url(b, "recent", "%s/services/data/v%s/recent/", base, ver);
    sb_putc(b, ',');
    json_url(b, "tooling_soap", "%s/services/Soap/T/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "tooling_rest", "%s/services/data/v%s/tooling/", base, ver);
    sb_putc(b, ',');
    json_url(b, "profile", "%s/%s", base, user_id);
    sb_putc(b, ',');
    json_url(b, "custom_domain", "%s", base);
    sb_puts(b, "},");
}

static const char *
identity_version(http_req *req, http_resp *resp)
{
    const char *v = http_query(req, "version");
    if (v == NULL || *v == '\0')
        return "{version}";
    if (!valid_version(v)) {
        text_error(resp, 406, "Invalid_Version");
        return NULL;
    }
    return v;
}

static void
nick_name(const char *username, char *out, size_t sz)
{
    const char *at = strchr(username, '@');
    size_t n = at ? (size_t)(at - username) : strlen(username);
    snprintf(out, sz, "%.*s", (int)n, username);
}

void
auth_handle_identity(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    lf_session s;
    user_info u;
    if (identity_session(srv, req, resp, true, &s, &u) != 0)
        return;
    const char *ver = identity_version(req, resp);
    if (ver == NULL)
        return;
    char org18[19], org15[16], want_org[19], want_user[19];
    org_ids(srv->st, org18, org15);
    if (req->nseg < 2 || sfid_normalize(req->seg[0], want_org) != 0 ||
        strcmp(want_org, org18) != 0) {
        text_error(resp, 403, "Wrong_Org");
        return;
    }
    if (sfid_normalize(req->seg[1], want_user) != 0 || strcmp(want_user, s.user_id) != 0) {
        text_error(resp, 404, "Bad_Id");
        return;
    }
    const char *format = http_query(req, "format");
    if (format && *format && strcmp(format, "json") != 0) {
        text_error(resp, 406, "Bad_Format");
        return;
    }

    char id_url[512], name[300], nick[128], modified[32];
    snprintf(id_url, sizeof id_url, "%s/id/%s/%s", srv->base_url, org18, u.id);
    full_name(&u, name, sizeof name);
    nick_name(u.username, nick, sizeof nick);
    util_fmt_datetime(srv->auth->started_ms, modified);

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_JSON;
    sb_putc(b, '{');
    json_field(b, "id", id_url, false);
    sb_puts(b, "\"asserted_user\":true,");
    json_field(b, "user_id", u.id, false);
    json_field(b, "organization_id", org18, false);
    json_field(b, "username", u.username, false);
    json_field(b, "nick_name", nick, false);
    json_field(b, "display_name", name, false);
    json_field(b, "email", u.email, true);
    sb_puts(b, "\"email_verified\":true,");
    json_field(b, "first_name", u.first, true);
    json_field(b, "last_name", u.last, true);
    sb_puts(b, "\"timezone\":\"GMT\",");
    identity_urls(b, srv, org15, u.id, ver);
    sb_puts(b, "\"addr_street\":null,\"addr_city\":null,\"addr_state\":null,"
               "\"addr_country\":null,\"addr_zip\":null,\"mobile_phone\":null,"
               "\"mobile_phone_verified\":false,\"is_lightning_login_user\":false,"
               "\"status\":{\"created_date\":null,\"body\":null},");
    sb_puts(b, "\"active\":true,\"user_type\":\"STANDARD\",\"language\":\"en_US\","
               "\"locale\":\"en_US\",\"utcOffset\":0,");
    json_field(b, "last_modified_date", modified, false);
    sb_puts(b, "\"is_app_installed\":true}");
}

void
auth_handle_userinfo(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    lf_session s;
    user_info u;
    if (identity_session(srv, req, resp, false, &s, &u) != 0)
        return;
    const char *ver = identity_version(req, resp);
    if (ver == NULL)
        return;
    char org18[19], org15[16], id_url[512], name[300], nick[128], updated[32], pic[300];
    org_ids(srv->st, org18, org15);
    snprintf(id_url, sizeof id_url, "%s/id/%s/%s", srv->base_url, org18, u.id);
    full_name(&u, name, sizeof name);
    nick_name(u.username, nick, sizeof nick);
    util_fmt_datetime_z(srv->auth->started_ms, updated);
    snprintf(pic, sizeof pic, "%s/profilephoto/005/F", srv->base_url);

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_JSON;
    sb_putc(b, '{');
    json_field(b, "sub", id_url, false);
    json_field(b, "user_id", u.id, false);
    json_field(b, "organization_id", org18, false);
    json_field(b, "preferred_username", u.username, false);
    json_field(b, "nickname", nick, false);
    json_field(b, "name", name, false);
    json_field(b, "email", u.email, true);
    sb_puts(b, "\"email_verified\":true,");
    json_field(b, "given_name", u.first, true);
    json_field(b, "family_name", u.last, true);
    sb_puts(b, "\"zoneinfo\":\"GMT\",");
    identity_urls(b, srv, org15, u.id, ver);
    json_url(b, "profile", "%s/%s", srv->base_url, u.id);
    sb_putc(b, ',');
    json_field(b, "picture", pic, false);
    sb_puts(b, "\"address\":{},\"is_salesforce_integration_user\":false,\"active\":true,"
               "\"user_type\":\"STANDARD\",\"language\":\"en_US\",\"locale\":\"en_US\","
               "\"utcOffset\":0,");
    json_field(b, "updated_at", updated, false);
    sb_puts(b, "\"is_app_installed\":true}");
}
