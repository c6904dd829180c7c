/*
 * sfapi: sfbridge's Salesforce client, over libcurl. See sfapi.h.
 *
 * One easy handle per client, reset (not recreated) before each request, so
 * the connection to the instance stays open between calls. Every call to the
 * instance goes through sfapi_call(), which logs in when needed, sends the
 * request, classifies the outcome (transport error, 2xx, 401, Salesforce error
 * body), logs in again once on a 401 and retries transient failures with
 * capped exponential backoff and full jitter. The token endpoint has its own,
 * smaller loop (login). Bodies are buffered up to BODY_MAX
 * (error bodies up to ERR_BODY_MAX), except 2xx Bulk results, which go
 * straight to the caller's sink as they arrive.
 *
 * Secrets (password, client secret, refresh and access tokens) are never
 * logged and are wiped from memory when no longer needed.
 */
#include "sfapi.h"
#include "sfapi_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "apiusage.h"
#include "log.h"
#include "loginlatch.h"
#include "sessions.h"
#include "retry.h"
#include "sfjwt.h"
#include "util.h"

#define BODY_MAX          ((size_t)256 << 20) /* a buffered 2xx body */
#define ERR_BODY_MAX      ((size_t)1 << 20)   /* a buffered error body (the rest is dropped) */
#define HEADER_LINE_MAX   4096
#define DEFAULT_LOGIN_URL "https://login.salesforce.com"
#define DEFAULT_VERSION   "60.0"
#define USER_AGENT        "sfbridge/1.0"

struct sfapi {
    /* configuration (owned copies) */
    char *login_url;
    char *client_id;
    char *client_secret;
    char *username;
    char *password;
    char *refresh_token;
    char *jwt_key_file;
    char *jwt_audience;
    char *ca_file;
    sfapi_flow flow;
    char *api_version; /* "60.0" */
    long timeout_ms;
    long connect_timeout_ms;
    int max_retries;
    long backoff_cap_ms;
    volatile sig_atomic_t *abort_flag;
    volatile sig_atomic_t *wake_flag;

    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];

    session sess; /* shared with the process's other clients (sessions.h) */

    char fingerprint[LATCH_FP_LEN + 1]; /* of the credentials (loginlatch) */
    uint64_t calls; /* (the org's usage its answers tell is kept by sessions.c) */

    /* Salesforce's clock minus ours lies in [clock_lo, clock_hi] (ms), as the
     * Date header of the answer measured at clock_at (ours) said; 0: never. */
    int64_t clock_lo, clock_hi, clock_at;
};

/* ----- small helpers --------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static void
free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void
strip_trailing_slashes(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
}

void
sfapi_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The pause before retry attempt+1: the RETRY_HTTP policy (full jitter). */
static long
backoff_ms(const sfapi *c, int attempt)
{
    return retry_delay_ms(&retry_presets[RETRY_HTTP], attempt + 1, c->backoff_cap_ms);
}

/* Appends curl_easy_escape(s) to out. */
void
sfapi_put_escaped(sfapi *c, sb *out, const char *s)
{
    char *x = curl_easy_escape(c->curl, s, (int)strlen(s));
    if (x == NULL) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    sb_puts(out, x);
    curl_free(x);
}

/* The first n bytes of a body as a one-line printable excerpt, for messages. */
static void
excerpt(const char *s, size_t len, char *out, size_t outsz)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 4 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[j++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    if (j + 4 >= outsz && len > j)
        out[j++] = '.', out[j++] = '.', out[j++] = '.';
    out[j] = '\0';
}

/* ----- one HTTP exchange ------------------------------------------------------ */

static void
response_reset(sfapi_resp *r)
{
    r->status = 0;
    sb_clear(&r->body);
    r->too_big = false;
    memset(&r->sink_err, 0, sizeof r->sink_err);
    r->sink_failed = false;
    r->delivered = 0;
    r->has_locator = false;
    r->locator_bad = false;
    r->locator[0] = '\0';
    r->nrecords = -1;
}

static bool
is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sfapi_resp *r = ud;
    size_t n = size * nmemb;
    if (r->sink && is_2xx(r->status)) {
        if (n == 0)
            return 0;
        if (r->sink(r->sink_ctx, data, n, &r->sink_err) != 0) {
            r->sink_failed = true;
            return 0; /* CURLE_WRITE_ERROR ends the transfer */
        }
        r->delivered += n;
        return n;
    }
    if (!is_2xx(r->status)) {
        /* An error body: keep the start, drop the rest but read it (keep-alive). */
        size_t room = ERR_BODY_MAX - r->body.len;
        if (room > 0)
            sb_append(&r->body, data, n < room ? n : room);
        return n;
    }
    if (n > BODY_MAX - r->body.len) {
        r->too_big = true;
        return 0;
    }
    sb_append(&r->body, data, n);
    return n;
}

/* A Date header (whole seconds) was written while the request was running:
 * between sent_ms and now by our clock. So Salesforce's clock minus ours
 * lies in [date - now, date + 999 - sent_ms]. The narrowest bound of the last
 * minute is kept (a slow answer gives a wide one). */
static void
note_clock(sfapi *c, const char *v, int64_t sent_ms)
{
    time_t d = curl_getdate(v, NULL);
    int64_t now = util_now_ms();
    if (d <= 0 || sent_ms <= 0 || now < sent_ms)
        return;
    int64_t lo = (int64_t)d * 1000 - now, hi = (int64_t)d * 1000 + 999 - sent_ms;
    if (c->clock_at == 0 || hi - lo <= c->clock_hi - c->clock_lo || now - c->clock_at > 60000) {
        c->clock_lo = lo;
        c->clock_hi = hi;
        c->clock_at = now;
    }
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    sfapi_resp *r = ud;
    size_t n = size * nmemb;
    if (n >= HEADER_LINE_MAX) {
        /* No header we read is that long; a locator that is must not pass for "last page". */
        if (strncasecmp(data, "Sforce-Locator:", 15) == 0)
            r->locator_bad = true;
        return n;
    }
    char line[HEADER_LINE_MAX];
    memcpy(line, data, n);
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        line[--n] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last one's headers. */
        const char *sp = strchr(line, ' ');
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->has_locator = false;
        r->locator_bad = false;
        r->locator[0] = '\0';
        r->nrecords = -1;
        return size * nmemb;
    }
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return size * nmemb;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
    if (strcasecmp(line, "Sforce-Limit-Info") == 0) {
        long used, max;
        if (au_parse(v, &used, &max) == 0)
            sessions_note_usage(r->c->fingerprint, used, max);
    } else if (strcasecmp(line, "Sforce-Locator") == 0) {
        if (vl < sizeof r->locator) {
            memcpy(r->locator, v, vl + 1);
            r->has_locator = true;
        } else {
            r->locator_bad = true;
        }
    } else if (strcasecmp(line, "Date") == 0) {
        note_clock(r->c, v, r->sent_ms);
    } else if (strcasecmp(line, "Sforce-NumberOfRecords") == 0) {
        int64_t nrec;
        if (util_parse_i64(v, &nrec) == 0 && nrec >= 0 && nrec <= (int64_t)0x7fffffff)
            r->nrecords = (long)nrec;
    }
    return size * nmemb;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow);

/* One request on the client's handle. headers is the full header list. */
static CURLcode
perform(sfapi *c, const char *method, const char *url, struct curl_slist *headers, const char *body,
        sfapi_resp *r)
{
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps the open connections */
    c->curl_err[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (r->sink) {
        /* A results page may legitimately take longer than timeout_ms when the
         * sink is slow; what must not happen is a transfer that stalls. */
        long secs = (c->timeout_ms + 999) / 1000;
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (c->abort_flag || c->wake_flag) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    response_reset(r);
    r->sent_ms = util_now_ms();
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        r->status = code;
    }
    /* The handle keeps pointers to these until the next reset; clear them now. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    return cc;
}

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const sfapi *c = ud;
    return (c->abort_flag && *c->abort_flag) || (c->wake_flag && *c->wake_flag) ? 1 : 0;
}

static struct curl_slist *
add_header(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (n == NULL) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    return n;
}

/* ----- classifying failures --------------------------------------------------- */

/* errorCodes that mean "try again later", whatever the status. */
static const char *const transient_codes[] = {
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
};

/* curl failures that retrying cannot cure: the URL or the TLS setup is wrong. */
static const CURLcode permanent_curl[] = {
    CURLE_UNSUPPORTED_PROTOCOL,
    CURLE_URL_MALFORMAT,
    CURLE_NOT_BUILT_IN,
    CURLE_BAD_FUNCTION_ARGUMENT,
    CURLE_FUNCTION_NOT_FOUND,
    CURLE_TOO_MANY_REDIRECTS,
    CURLE_PEER_FAILED_VERIFICATION,
    CURLE_SSL_CERTPROBLEM,
    CURLE_SSL_CIPHER,
    CURLE_SSL_CACERT_BADFILE,
    CURLE_SSL_ENGINE_NOTFOUND,
    CURLE_SSL_CRL_BADFILE,
    CURLE_SSL_ISSUER_ERROR,
    CURLE_SSL_PINNEDPUBKEYNOTMATCH,
};

static err_class
classify_http(long status, const char *code)
{
    if (status >= 500 || status == 429)
        return ERR_TRANSIENT;
    for (size_t i = 0; i < sizeof transient_codes / sizeof transient_codes[0]; i++)
        if (strcmp(code, transient_codes[i]) == 0)
            return ERR_TRANSIENT;
    return ERR_PERMANENT;
}

static err_class
classify_curl(CURLcode cc)
{
    for (size_t i = 0; i < sizeof permanent_curl / sizeof permanent_curl[0]; i++)
        if (cc == permanent_curl[i])
            return ERR_PERMANENT;
    return ERR_TRANSIENT;
}

static void
curl_failure(sfapi *c, CURLcode cc, err_t *e)
{
    const char *hint = "";
    if (cc == CURLE_PEER_FAILED_VERIFICATION)
        hint = c->ca_file ? "; the server's TLS certificate is not signed by a certificate in "
                            "SF_CA_FILE"
                          : "; the server's TLS certificate is not trusted by this machine: if it "
                            "is your own (localforce --tls-self-signed DIR), set SF_CA_FILE to "
                            "its certificate (DIR/localforce.crt)";
    else if (cc == CURLE_SSL_CACERT_BADFILE && c->ca_file)
        hint = "; check SF_CA_FILE (a PEM file of certificates)";
    err_set(e, 0, "NETWORK_ERROR", "%s (curl error %d)%s",
            c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc), (int)cc, hint);
}

/* Fills e from a Salesforce error body: [{"message","errorCode","fields"}]
 * (or a single such object). Anything else becomes a BAD_RESPONSE naming the
 * status and quoting the start of the body. */
static void
parse_error_body(const sfapi_resp *r, err_t *e)
{
    json_error_t je;
    json_t *j = r->body.len ? json_loadb(r->body.buf, r->body.len, 0, &je) : NULL;
    json_t *o = json_is_array(j) ? json_array_get(j, 0) : j;
    const char *code = json_string_value(json_object_get(o, "errorCode"));
    const char *msg = json_string_value(json_object_get(o, "message"));
    if (code == NULL && json_is_object(o)) { /* an OAuth-style error */
        code = json_string_value(json_object_get(o, "error"));
        msg = json_string_value(json_object_get(o, "error_description"));
    }
    if (code && *code) {
        err_set(e, (int)r->status, code, "%s", msg ? msg : "");
        json_t *fields = json_object_get(o, "fields");
        if (json_is_array(fields) && json_array_size(fields) > 0) {
            sb f = SB_INIT;
            size_t i;
            json_t *v;
            json_array_foreach(fields, i, v) {
                if (json_is_string(v)) {
                    if (f.len)
                        sb_putc(&f, ',');
                    sb_puts(&f, json_string_value(v));
                }
            }
            err_fields(e, sb_str(&f));
            sb_free(&f);
        }
    } else {
        char ex[160];
        excerpt(sb_str(&r->body), r->body.len, ex, sizeof ex);
        err_set(e, (int)r->status, "BAD_RESPONSE", "HTTP %ld with %s%s", r->status,
                r->body.len ? "an unexpected body: " : "an empty body", ex);
    }
    json_decref(j);
}

/* Parses a buffered 2xx body. want_object: it must be a JSON object. An empty
 * body gives *out = NULL when allow_empty. secret: the body may hold a token,
 * so the message must not quote it. */
static int
parse_body(const sfapi_resp *r, bool want_object, bool allow_empty, bool secret, json_t **out,
           err_t *e)
{
    *out = NULL;
    if (r->body.len == 0) {
        if (allow_empty)
            return 0;
        return err_set(e, (int)r->status, "BAD_RESPONSE", "HTTP %ld with an empty body", r->status);
    }
    json_error_t je;
    json_t *j = json_loadb(r->body.buf, r->body.len, JSON_DECODE_ANY, &je);
    if (j == NULL) {
        char ex[120];
        excerpt(r->body.buf, r->body.len, ex, sizeof ex);
        return err_set(e, (int)r->status, "BAD_RESPONSE",
                       "the server's reply is not valid JSON (%s at line %d)%s%s", je.text, je.line,
                       secret ? "" : ": ", secret ? "" : ex);
    }
    if (want_object && !json_is_object(j)) {
        json_decref(j);
        return err_set(e, (int)r->status, "BAD_RESPONSE",
                       "the server's reply is not a JSON object");
    }
    *out = j;
    return 0;
}

static void
copy_err(err_t *dst, const err_t *src)
{
    if (dst)
        *dst = *src;
}

/* ----- login ------------------------------------------------------------------ */

static void
form_add(sfapi *c, sb *f, const char *key, const char *value)
{
    if (f->len)
        sb_putc(f, '&');
    sb_puts(f, key);
    sb_putc(f, '=');
    sfapi_put_escaped(c, f, value);
}

static void
forget_session(sfapi *c)
{
    session_forget(&c->sess);
}

void
sfapi_set_wake_flag(sfapi *c, volatile sig_atomic_t *flag)
{
    c->wake_flag = flag;
}

void
sfapi_forget_session(sfapi *c)
{
    forget_session(c);
}

/* The last two segments of an identity URL ".../id/<org>/<user>". */
static int
parse_identity(sfapi *c, const char *id)
{
    const char *p = strstr(id, "/id/");
    if (p == NULL)
        return -1;
    p += 4;
    const char *slash = strchr(p, '/');
    if (slash == NULL)
        return -1;
    size_t ol = (size_t)(slash - p);
    const char *u = slash + 1;
    size_t ul = strcspn(u, "/?#");
    if (ol < 15 || ol > 18 || ul < 15 || ul > 18)
        return -1;
    for (size_t i = 0; i < ol; i++)
        if (!isalnum((unsigned char)p[i]))
            return -1;
    for (size_t i = 0; i < ul; i++)
        if (!isalnum((unsigned char)u[i]))
            return -1;
    memcpy(c->sess.org_id, p, ol);
    c->sess.org_id[ol] = '\0';
    memcpy(c->sess.user_id, u, ul);
    c->sess.user_id[ul] = '\0';
    return 0;
}

/* Reads a 200 token reply into the session. */
static int
take_token_reply(sfapi *c, const sfapi_resp *r, err_t *e)
{
    json_t *j;
    if (parse_body(r, true, false, true, &j, e) != 0)
        return -1;
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    const char *inst = json_string_value(json_object_get(j, "instance_url"));
    const char *id = json_string_value(json_object_get(j, "id"));
    int rc = 0;
    if (tok == NULL || *tok == '\0' || inst == NULL || id == NULL) {
        rc = err_set(e, (int)r->status, "BAD_RESPONSE",
                     "the token reply lacks access_token, instance_url or id");
    } else if (strncmp(inst, "https://", 8) != 0 && strncmp(inst, "http://", 7) != 0) {
        rc = err_set(e, (int)r->status, "BAD_RESPONSE",
                     "the token reply's instance_url is not an http(s) URL");
    } else if (parse_identity(c, id) != 0) {
        rc = err_set(e, (int)r->status, "BAD_RESPONSE",
                     "the token reply's id is not an identity URL (.../id/ORG/USER)");
    } else {
        forget_session(c);
        c->sess.access_token = xstrdup(tok);
        c->sess.instance_url = xstrdup(inst);
        strip_trailing_slashes(c->sess.instance_url);
    }
    json_decref(j);
    return rc;
}

/* The JWT bearer grant's form: a fresh assertion signed with the key file's key. */
static int
jwt_form(sfapi *c, sb *form, err_t *e)
{
    char *pem = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    sb assertion = SB_INIT;
    char aud[SFJWT_AUD_MAX];
    int rc = -1;
    if (sfjwt_read_key_file(c->jwt_key_file, &pem, &len, e) != 0 ||
        sfjwt_key_from_pem(pem, len, &key, e) != 0) {
        char why[1024];
        snprintf(why, sizeof why, "%.1000s", e->msg);
        err_set(e, 400, "BAD_JWT_KEY", "SF_JWT_KEY_FILE %.512s: %s", c->jwt_key_file, why);
        goto out;
    }
    sfjwt_audience(c->login_url, c->jwt_audience, aud);
    if (sfjwt_assertion(key, c->client_id, c->username, aud, util_now_ms() / 1000 + SFJWT_LIFETIME,
                        &assertion, e) != 0)
        goto out;
    form_add(c, form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    form_add(c, form, "assertion", sb_str(&assertion));
    rc = 0;
out:
    if (pem) {
        explicit_bzero(pem, len);
        free(pem);
    }
    EVP_PKEY_free(key);
    if (assertion.buf)
        explicit_bzero(assertion.buf, assertion.len);
    sb_free(&assertion);
    return rc;
}

/* The token request's form for the client's grant. */
static int
grant_form(sfapi *c, sb *form, err_t *e)
{
    const char *cid = c->client_id ? c->client_id : "";
    switch (c->flow) {
    case SFAPI_FLOW_JWT: return jwt_form(c, form, e);
    case SFAPI_FLOW_REFRESH:
        form_add(c, form, "grant_type", "refresh_token");
        form_add(c, form, "refresh_token", c->refresh_token);
        form_add(c, form, "client_id", cid);
        break;
    case SFAPI_FLOW_PASSWORD:
        form_add(c, form, "grant_type", "password");
        form_add(c, form, "client_id", cid);
        break;
    default:
        form_add(c, form, "grant_type", "client_credentials");
        form_add(c, form, "client_id", cid);
        break;
    }
    if (c->client_secret)
        form_add(c, form, "client_secret", c->client_secret);
    if (c->flow == SFAPI_FLOW_PASSWORD) {
        form_add(c, form, "username", c->username);
        form_add(c, form, "password", c->password);
    }
    return 0;
}

/* One POST to the token endpoint. 0, or -1 with e filled and *cls set. */
static int
login_once(sfapi *c, sfapi_resp *r, err_class *cls, err_t *e)
{
    sb form = SB_INIT;
    const char *grant = sfapi_flow_name(c->flow);
    if (grant_form(c, &form, e) != 0) {
        *cls = ERR_AUTH; /* the settings are for a human to fix */
        sb_free(&form);
        return -1;
    }
    sb url = SB_INIT;
    sb_printf(&url, "%s/services/oauth2/token", c->login_url);
    struct curl_slist *h = add_header(NULL, "Content-Type: application/x-www-form-urlencoded");
    h = add_header(h, "Accept: application/json");
    h = add_header(h, "Expect:");
    CURLcode cc = perform(c, "POST", url.buf, h, form.buf, r);
    curl_slist_free_all(h);
    explicit_bzero(form.buf, form.len);
    sb_free(&form);
    int rc = -1;
    if (cc != CURLE_OK) {
        curl_failure(c, cc, e);
        *cls = r->too_big ? ERR_PERMANENT : classify_curl(cc);
        if (r->too_big)
            err_set(e, 0, "BAD_RESPONSE", "the token reply exceeds %zu MB", BODY_MAX >> 20);
    } else if (r->status == 200) {
        rc = take_token_reply(c, r, e);
        *cls = ERR_PERMANENT;
        if (rc == 0)
            sessions_put(c->fingerprint, &c->sess);
        if (rc == 0)
            log_debug("sfapi: logged in to %s (org %s, user %s, %s grant)", c->sess.instance_url,
                      c->sess.org_id, c->sess.user_id, grant);
    } else {
        parse_error_body(r, e);
        /* Refused credentials and a misconfigured app are for a human to fix. */
        *cls = r->status >= 500 || r->status == 429 ? ERR_TRANSIENT : ERR_AUTH;
        if (*cls == ERR_AUTH && strcmp(e->code, "BAD_RESPONSE") == 0)
            snprintf(e->code, sizeof e->code, "ERROR_HTTP_%ld", r->status);
    }
    if (r->body.buf) /* the reply holds the access token */
        explicit_bzero(r->body.buf, r->body.len);
    sb_free(&url);
    return rc;
}

/* Log in, retrying transient failures. */
static int
login(sfapi *c, err_t *e)
{
    err_t le;
    memset(&le, 0, sizeof le);
    if (c->flow == SFAPI_FLOW_NONE) {
        err_set(&le, 0, "NO_CREDENTIALS",
                "no JWT key, refresh token, username/password or client secret is configured");
        copy_err(e, &le);
        return err_class_set(e, ERR_AUTH);
    }
    if (latch_refused(c->fingerprint, &le)) {
        copy_err(e, &le);
        return err_class_set(e, ERR_AUTH);
    }
    if (sessions_take(c->fingerprint, &c->sess)) /* another client's, newer than ours */
        return 0;
    sfapi_resp r = {.c = c};
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        err_class cls = ERR_PERMANENT;
        if (login_once(c, &r, &cls, &le) == 0) {
            rc = 0;
            break;
        }
        if (cls != ERR_TRANSIENT || attempt >= c->max_retries) {
            le.cls = cls;
            log_warn("sfapi: login to %s failed: %s: %s", c->login_url, le.code, le.msg);
            if (cls == ERR_AUTH &&
                latch_is_refusal(le.code)) /* Salesforce locks a user after ~10 */
                latch_set(c->fingerprint, &le);
            break;
        }
        long ms = backoff_ms(c, attempt);
        log_warn("sfapi: login to %s: %s: %s; retry %d/%d in %ld ms", c->login_url, le.code, le.msg,
                 attempt + 1, c->max_retries, ms);
        sfapi_sleep_ms(ms);
    }
    sb_free(&r.body);
    if (rc != 0)
        copy_err(e, &le);
    return rc;
}

int
sfapi_login(sfapi *c, err_t *e)
{
    if (login(c, e) != 0)
        return -1;
    return 0;
}

/* ----- calls to the instance ------------------------------------------------- */

/* Sends q to the instance until it succeeds, fails for good or runs out of
 * retries. 0: r holds a 2xx answer. -1: e filled, its class set. */
int
sfapi_call(sfapi *c, const sfapi_req *q, sfapi_resp *r, err_t *e)
{
    err_t le;
    memset(&le, 0, sizeof le);
    if (c->sess.access_token == NULL && login(c, e) != 0)
        return -1;
    r->c = c;
    r->sink = q->sink;
    r->sink_ctx = q->sink_ctx;
    bool relogged = false;
    int attempt = 0;
    for (;;) {
        sb url = SB_INIT, auth = SB_INIT, acc = SB_INIT;
        sb_printf(&url, "%s%s", c->sess.instance_url, q->path);
        sb_printf(&auth, "Authorization: Bearer %s", c->sess.access_token);
        sb_printf(&acc, "Accept: %s", q->accept ? q->accept : "application/json");
        struct curl_slist *h = add_header(NULL, auth.buf);
        h = add_header(h, acc.buf);
        h = add_header(h, "Expect:");
        if (q->body && q->content_type) {
            sb ct = SB_INIT;
            sb_printf(&ct, "Content-Type: %s", q->content_type);
            h = add_header(h, ct.buf);
            sb_free(&ct);
        } else if (q->body) {
            h = add_header(h, "Content-Type: application/json; charset=UTF-8");
        }
        if (q->extra)
            h = add_header(h, q->extra);
        c->calls++;
        CURLcode cc = perform(c, q->method, url.buf, h, q->body, r);
        curl_slist_free_all(h);
        explicit_bzero(auth.buf, auth.len);
        sb_free(&auth);
        sb_free(&acc);
        sb_free(&url);

        err_class cls;
        if (cc == CURLE_ABORTED_BY_CALLBACK && c->abort_flag && *c->abort_flag) {
            /* The process is stopping: not a failure to retry or warn about. */
            err_set(e, 503, "STOPPED", "stopped by a signal");
            return err_class_set(e, ERR_PERMANENT);
        }
        if (cc != CURLE_OK) {
            if (r->sink_failed) {
                if (r->sink_err.code[0])
                    le = r->sink_err;
                else
                    err_set(&le, 0, "ABORTED_BY_SINK", "the results consumer stopped the transfer");
                cls = ERR_PERMANENT;
            } else if (r->too_big) {
                err_set(&le, (int)r->status, "BAD_RESPONSE", "the reply exceeds %zu MB",
                        BODY_MAX >> 20);
                cls = ERR_PERMANENT;
            } else {
                curl_failure(c, cc, &le);
                cls = classify_curl(cc);
            }
        } else if (is_2xx(r->status)) {
            return 0;
        } else if (r->status == 401 && !relogged) {
            /* Expired or revoked session: log in again once and repeat. */
            relogged = true;
            log_info("sfapi: %s %.120s: session expired or invalid, logging in again", q->method,
                     q->path);
            forget_session(c);
            if (login(c, e) != 0)
                return -1;
            continue;
        } else {
            parse_error_body(r, &le);
            cls = r->status == 401 ? ERR_AUTH : classify_http(r->status, le.code);
        }
        if (cls == ERR_TRANSIENT && attempt < c->max_retries && r->delivered == 0) {
            long ms = backoff_ms(c, attempt);
            log_warn("sfapi: %s %.120s: %s: %s; retry %d/%d in %ld ms", q->method, q->path, le.code,
                     le.msg, attempt + 1, c->max_retries, ms);
            sfapi_sleep_ms(ms);
            attempt++;
            continue;
        }
        if (cls != ERR_PERMANENT || r->delivered)
            log_warn("sfapi: %s %.120s failed: %s: %s", q->method, q->path, le.code, le.msg);
        copy_err(e, &le);
        return err_class_set(e, cls);
    }
}

/* api_call for a JSON reply; *out is the parsed body (NULL if empty and allowed). */
int
sfapi_call_json(sfapi *c, const sfapi_req *q, bool want_object, bool allow_empty, long *status,
                json_t **out, err_t *e)
{
    sfapi_resp r = {.c = c};
    int rc = sfapi_call(c, q, &r, e);
    if (status)
        *status = r.status;
    if (rc == 0 && parse_body(&r, want_object, allow_empty, false, out, e) != 0)
        rc = err_class_set(e, ERR_PERMANENT);
    sb_free(&r.body);
    return rc;
}

/* "/services/data/vNN.N" + rest into out. */
void
sfapi_data_path(const sfapi *c, sb *out, const char *rest)
{
    sb_printf(out, "/services/data/v%s%s", c->api_version, rest);
}

/* ----- public: lifecycle and state ------------------------------------------------ */

static bool
set_(const char *s)
{
    return s && *s;
}

sfapi_flow
sfapi_flow_of(const sfapi_config *cfg)
{
    if (set_(cfg->jwt_key_file))
        return SFAPI_FLOW_JWT;
    if (set_(cfg->refresh_token))
        return SFAPI_FLOW_REFRESH;
    if (set_(cfg->username) && set_(cfg->password))
        return SFAPI_FLOW_PASSWORD;
    if (set_(cfg->client_secret) && !set_(cfg->username) && !set_(cfg->password))
        return SFAPI_FLOW_CLIENT_CREDENTIALS;
    return SFAPI_FLOW_NONE;
}

const char *
sfapi_flow_name(sfapi_flow f)
{
    static const char *const names[] = {"none", "jwt-bearer", "refresh-token", "password",
                                        "client-credentials"};
    return (size_t)f < sizeof names / sizeof names[0] ? names[f] : "none";
}

/* The login latch's fingerprint: the credentials of the client's grant. For the
 * JWT bearer flow, the key file's bytes stand in for the password, so a new
 * key is tried even under the same file name. */
static void
set_fingerprint(sfapi *c)
{
    char *pem = NULL;
    size_t len = 0;
    if (c->flow == SFAPI_FLOW_JWT) {
        err_t ignored;
        if (sfjwt_read_key_file(c->jwt_key_file, &pem, &len, &ignored) != 0)
            pem = NULL;
    }
    sb jwt = SB_INIT;
    if (c->flow == SFAPI_FLOW_JWT)
        sb_printf(&jwt, "jwt:%s:%s:%s", c->jwt_key_file, c->jwt_audience ? c->jwt_audience : "",
                  pem ? pem : "(unreadable)");
    latch_fingerprint(c->fingerprint, c->login_url, c->client_id, c->client_secret, c->username,
                      c->flow == SFAPI_FLOW_JWT ? sb_str(&jwt) : c->password, c->refresh_token);
    if (jwt.buf)
        explicit_bzero(jwt.buf, jwt.len);
    sb_free(&jwt);
    if (pem) {
        explicit_bzero(pem, len);
        free(pem);
    }
}

sfapi *
sfapi_new(const sfapi_config *cfg)
{
    sfapi *c = xcalloc(1, sizeof *c);
    c->login_url = xstrdup(cfg->login_url && *cfg->login_url ? cfg->login_url : DEFAULT_LOGIN_URL);
    strip_trailing_slashes(c->login_url);
    c->client_id = dup_or_null(cfg->client_id);
    c->client_secret = dup_or_null(cfg->client_secret);
    c->username = dup_or_null(cfg->username);
    c->password = dup_or_null(cfg->password);
    c->refresh_token = dup_or_null(cfg->refresh_token);
    c->jwt_key_file = dup_or_null(cfg->jwt_key_file);
    c->jwt_audience = dup_or_null(cfg->jwt_audience);
    c->ca_file = dup_or_null(cfg->ca_file);
    c->flow = sfapi_flow_of(cfg);
    const char *v = cfg->api_version && *cfg->api_version ? cfg->api_version : DEFAULT_VERSION;
    c->api_version = xstrdup(v[0] == 'v' || v[0] == 'V' ? v + 1 : v);
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 120000;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    c->max_retries = cfg->max_retries >= 0 ? cfg->max_retries : 4;
    c->backoff_cap_ms = cfg->backoff_cap_ms > 0 ? cfg->backoff_cap_ms
                                                : retry_presets[RETRY_HTTP].cap_ms;
    c->abort_flag = cfg->abort_flag;
    c->wake_flag = cfg->wake_flag;
    set_fingerprint(c);
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        fputs("fatal: curl_easy_init failed\n", stderr);
        abort();
    }
    return c;
}

sfapi *
sfapi_clone(const sfapi *c)
{
    sfapi_config cfg = {.login_url = c->login_url,
                        .client_id = c->client_id,
                        .client_secret = c->client_secret,
                        .username = c->username,
                        .password = c->password,
                        .refresh_token = c->refresh_token,
                        .jwt_key_file = c->jwt_key_file,
                        .jwt_audience = c->jwt_audience,
                        .ca_file = c->ca_file,
                        .api_version = c->api_version,
                        .timeout_ms = c->timeout_ms,
                        .connect_timeout_ms = c->connect_timeout_ms,
                        .max_retries = c->max_retries,
                        .backoff_cap_ms = c->backoff_cap_ms,
                        .abort_flag = c->abort_flag,
                        .wake_flag = c->wake_flag};
    return sfapi_new(&cfg);
}

void
sfapi_free(sfapi *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c->login_url);
    free(c->client_id);
    free_secret(&c->client_secret);
    free(c->username);
    free_secret(&c->password);
    free_secret(&c->refresh_token);
    free(c->jwt_key_file);
    free(c->jwt_audience);
    free(c->ca_file);
    free(c->api_version);
    session_forget(&c->sess);
    free(c);
}

const char *
sfapi_api_version(const sfapi *c)
{
    return c->api_version;
}

const char *
sfapi_instance_url(const sfapi *c)
{
    return c->sess.instance_url ? c->sess.instance_url : "";
}

const char *
sfapi_org_id(const sfapi *c)
{
    return c->sess.org_id;
}

bool
sfapi_clock_offset(const sfapi *c, int64_t *lo_ms, int64_t *hi_ms)
{
    if (c->clock_at == 0)
        return false;
    *lo_ms = c->clock_lo;
    *hi_ms = c->clock_hi;
    return true;
}

const char *
sfapi_user_id(const sfapi *c)
{
    return c->sess.user_id;
}

uint64_t
sfapi_calls(const sfapi *c)
{
    return c->calls;
}

void
sfapi_add_calls(sfapi *c, const sfapi *clone)
{
    c->calls += clone->calls;
}

void
sfapi_limit_info(const sfapi *c, long *used, long *max)
{
    long u = -1, m = -1;
    sessions_usage(c->fingerprint, &u, &m); /* the latest any client heard */
    if (used)
        *used = u;
    if (max)
        *max = m;
}

/* ----- public: REST ------------------------------------------------------------- */

int
sfapi_describe(sfapi *c, const char *object, json_t **out, err_t *e)
{
    *out = NULL;
    sb path = SB_INIT;
    sfapi_data_path(c, &path, "/sobjects/");
    sfapi_put_escaped(c, &path, object);
    sb_puts(&path, "/describe");
    sfapi_req q = {.method = "GET", .path = path.buf};
    int rc = sfapi_call_json(c, &q, true, false, NULL, out, e);
    sb_free(&path);
    return rc;
}

int
sfapi_query(sfapi *c, const char *soql, bool all, int batch_size, json_t **page, err_t *e)
{
    *page = NULL;
    sb path = SB_INIT;
    sfapi_data_path(c, &path, all ? "/queryAll?q=" : "/query?q=");
    sfapi_put_escaped(c, &path, soql);
    char opt[64];
    snprintf(opt, sizeof opt, "Sforce-Query-Options: batchSize=%d", batch_size);
    sfapi_req q = {.method = "GET", .path = path.buf, .extra = batch_size > 0 ? opt : NULL};
    int rc = sfapi_call_json(c, &q, true, false, NULL, page, e);
    sb_free(&path);
    return rc;
}

/* A path the server handed us may only point inside /services/ on the instance. */
int
sfapi_check_path(sfapi *c, const char *path, const char *prefix, err_t *e)
{
    bool ok = path && strncmp(path, prefix, strlen(prefix)) == 0 && strstr(path, "..") == NULL;
    for (const char *p = path; ok && *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
            ok = false;
    if (ok)
        return 0;
    err_set(e, 400, "INVALID_PATH", "not a path under %s: %.200s", prefix, path ? path : "(null)");
    return err_class_set(e, ERR_PERMANENT);
}

int
sfapi_query_more(sfapi *c, const char *next_url, json_t **page, err_t *e)
{
    *page = NULL;
    if (sfapi_check_path(c, next_url, "/services/data/", e) != 0)
        return -1;
    sfapi_req q = {.method = "GET", .path = next_url};
    return sfapi_call_json(c, &q, true, false, NULL, page, e);
}

int
sfapi_query_each(sfapi *c, const sfapi_query_spec *q, sfapi_page_fn fn, void *ctx, err_t *e)
{
    json_t *page = NULL;
    int rc;
    if (q->resume_url)
        rc = sfapi_query_more(c, q->resume_url, &page, e);
    else
        rc = sfapi_query(c, q->soql, q->all, q->batch_size, &page, e);
    while (rc == 0) {
        json_t *recs = json_object_get(page, "records");
        if (!json_is_array(recs)) {
            err_set(e, 502, "BAD_RESPONSE", "query reply has no records array");
            rc = err_class_set(e, ERR_PERMANENT);
            break;
        }
        const char *next = NULL;
        if (!json_is_true(json_object_get(page, "done")))
            next = json_string_value(json_object_get(page, "nextRecordsUrl"));
        int fr = fn(ctx, recs, next, e);
        if (fr != 0) {
            rc = fr < 0 ? -1 : 0;
            break;
        }
        if (!next)
            break;
        char *url = xstrdup(next);
        json_decref(page);
        page = NULL;
        rc = sfapi_query_more(c, url, &page, e);
        free(url);
    }
    json_decref(page);
    return rc;
}

int
sfapi_rest(sfapi *c, const char *method, const char *path, const char *body, long *status,
           json_t **out, err_t *e)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE"};
    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    bool known = false;
    for (size_t i = 0; method && i < sizeof methods / sizeof methods[0]; i++)
        known = known || strcmp(method, methods[i]) == 0;
    if (!known) {
        err_set(e, 400, "METHOD_NOT_ALLOWED", "unsupported HTTP method %.20s",
                method ? method : "(null)");
        return err_class_set(e, ERR_PERMANENT);
    }
    if (sfapi_check_path(c, path, "/", e) != 0)
        return -1;
    sfapi_req q = {.method = method, .path = path, .body = body};
    json_t *j = NULL;
    int rc = sfapi_call_json(c, &q, false, true, status, &j, e);
    if (out)
        *out = j;
    else
        json_decref(j);
    return rc;
}

/* ----- public: SOQL ------------------------------------------------------------- */

void
sfapi_soql_escape(sb *out, const char *s)
{
    for (const char *p = s; p && *p; p++) {
        switch (*p) {
        case '\\': sb_append(out, "\\\\", 2); break;
        case '\'': sb_append(out, "\\'", 2); break;
        case '"': sb_append(out, "\\\"", 2); break;
        case '\n': sb_append(out, "\\n", 2); break;
        case '\r': sb_append(out, "\\r", 2); break;
        case '\t': sb_append(out, "\\t", 2); break;
        case '\b': sb_append(out, "\\b", 2); break;
        case '\f': sb_append(out, "\\f", 2); break;
        default: sb_putc(out, *p);
        }
    }
}
