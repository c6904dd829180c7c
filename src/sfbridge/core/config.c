/*
 * config: sfbridge's settings from a config file and the environment.
 * One table lists every setting: its name, where it lives in struct cfg,
 * and its default.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

typedef enum { CK_STR, CK_LONG } cfg_kind;

/* A string setting's check: true when v is acceptable. */
typedef bool (*cfg_check)(const char *v);

typedef struct cfg_key {
    const char *name;
    cfg_kind kind;
    size_t off;
    const char *def;
    long min, max;
    cfg_check check; /* CK_STR: NULL, or the check and what it wants */
    const char *want;
} cfg_key;

/* "60.0": Salesforce's API versions. */
static bool
api_version_ok(const char *v)
{
    size_t n = strspn(v, "0123456789");
    return n >= 2 && n <= 3 && v[n] == '.' && isdigit((unsigned char)v[n + 1]) && !v[n + 2];
}

static bool
one_of(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(v, *words) == 0)
            return true;
    return false;
}

static bool
log_level_ok(const char *v)
{
    static const char *const w[] = {"debug", "info", "warn", "error", NULL};
    return one_of(v, w);
}

static bool
log_format_ok(const char *v)
{
    static const char *const w[] = {"text", "logfmt", "json", NULL};
    return one_of(v, w);
}

static bool
policy_ok(const char *v)
{
    static const char *const w[] = {"last_writer_wins", "salesforce_wins", "postgres_wins", NULL};
    return one_of(v, w);
}

static bool
http_url_ok(const char *v)
{
    return strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0;
}

/* "HOST:PORT" or "[V6]:PORT", port 0 to 65535. */
static bool
http_listen_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || !colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return atol(colon + 1) <= 65535;
}

#define S(n, f, d)                                       \
    {                                                    \
        n, CK_STR, offsetof(cfg, f), d, 0, 0, NULL, NULL \
    }
#define C(n, f, d, check, want)                           \
    {                                                     \
        n, CK_STR, offsetof(cfg, f), d, 0, 0, check, want \
    }
#define L(n, f, d, lo, hi)                                  \
    {                                                       \
        n, CK_LONG, offsetof(cfg, f), d, lo, hi, NULL, NULL \
    }
static const cfg_key keys[] = {
    S("DATABASE_URL", database_url, NULL),
    S("SFBRIDGE_SCHEMA", schema, "salesforce"),
    C("SF_LOGIN_URL", login_url, "https://login.salesforce.com", http_url_ok,
      "an https:// URL such as https://login.salesforce.com"),
    S("SF_CLIENT_ID", client_id, NULL),
    S("SF_CLIENT_SECRET", client_secret, NULL),
    S("SF_REFRESH_TOKEN", refresh_token, NULL),
    S("SF_USERNAME", username, NULL),
    S("SF_PASSWORD", password, NULL),
    S("SF_JWT_KEY_FILE", jwt_key_file, NULL),
    C("SF_JWT_AUDIENCE", jwt_audience, NULL, http_url_ok,
      "an https:// URL such as https://login.salesforce.com"),
    S("SF_CA_FILE", ca_file, NULL),
    S("SFBRIDGE_CREDENTIALS", credentials, NULL),
    C("SF_API_VERSION", api_version, "60.0", api_version_ok, "a version such as 60.0"),
    C("SFBRIDGE_LOG_LEVEL", log_level, "info", log_level_ok, "debug, info, warn or error"),
    C("SFBRIDGE_LOG_FORMAT", log_format, "text", log_format_ok, "text, logfmt or json"),
    C("SFBRIDGE_CONFLICT_POLICY", conflict_policy, "last_writer_wins", policy_ok,
      "last_writer_wins, salesforce_wins or postgres_wins"),
    L("SFBRIDGE_BULK_THRESHOLD", bulk_threshold, "10000", 0, 1000000000L),
    L("SFBRIDGE_BULK_PAGE", bulk_page, "50000", 1, 100000000L),
    L("SFBRIDGE_LOAD_WORKERS", load_workers, "2", 1, 8),
    L("SFBRIDGE_LOAD_FETCHERS", load_fetchers, "4", 1, 8),
    L("SFBRIDGE_POLL_OVERLAP_MS", poll_overlap_ms, "2000", 0, 86400000L),
    L("SFBRIDGE_DRIFT_SECONDS", drift_seconds, "3600", 0, 31L * 86400),
    L("SFBRIDGE_BACKOFF_CAP_MS", backoff_cap_ms, "30000", 10, 3600000L),
    L("SFBRIDGE_REST_BATCH", rest_batch, "2000", 200, 2000),
    L("SFBRIDGE_ARCHIVE_DAYS", archive_days, "31", 1, 3650),
    L("SFBRIDGE_BULK_WRITE_MIN", bulk_write_min, "2000", 1, 100000000L),
    L("SFBRIDGE_BULK_WRITE_USAGE", bulk_write_usage, "50", 0, 100),
    L("SFBRIDGE_WRITE_SETTLE_MS", write_settle_ms, "15000", 0, 3600000L),
    L("SFBRIDGE_DEDICATED_USER", dedicated_user, "0", 0, 1),
    L("SFBRIDGE_WRITE_GATHER_MS", write_gather_ms, "0", 0, 60000L),
    L("SFBRIDGE_WRITE_CONCURRENCY", write_concurrency, "64", 1, 64),
    L("SFBRIDGE_WRITE_CONNECTIONS", write_connections, "2", 1, 16),
    L("SFBRIDGE_STREAM_SILENCE_MS", stream_silence_ms, "600000", 1000, 86400000L),
    C("SFBRIDGE_HTTP", http_listen, NULL, http_listen_ok, "HOST:PORT, such as 127.0.0.1:8080"),
    S("SFBRIDGE_HTTP_TOKEN", http_token, NULL),
    C("SFBRIDGE_WEBHOOK_URL", webhook_url, NULL, http_url_ok,
      "an http(s):// URL (where notifications are POSTed)"),
    S("SFBRIDGE_WEB_DIR", web_dir, NULL),
};
#undef S
#undef C
#undef L
#define NKEYS (sizeof keys / sizeof keys[0])

static const cfg_key *
find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int
set_key(cfg *c, const cfg_key *k, const char *value, const char *where, err_t *e)
{
    char *base = (char *)c;
    if (k->kind == CK_STR) {
        if (value && k->check && !k->check(value))
            return err_set(e, 400, "BAD_CONFIG", "%s: %s must be %s, not '%s'", where, k->name,
                           k->want, value);
        char **slot = (char **)(base + k->off);
        free(*slot);
        *slot = value ? xstrdup(value) : NULL;
        return 0;
    }
    int64_t v;
    if (util_parse_i64(value, &v) != 0 || v < k->min || v > k->max)
        return err_set(e, 400, "BAD_CONFIG",
                       "%s: %s must be a whole number from %ld to %ld, not '%s'", where, k->name,
                       k->min, k->max, value);
    *(long *)(base + k->off) = (long)v;
    return 0;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A value as written after "NAME =": 'quoted' or "quoted" (taken as is,
 * then only a comment may follow), or bare, where " #" starts a comment (a
 * '#' inside a word, as in a password, is kept). -1 for an unclosed quote. */
static int
unquote_value(char **value)
{
    char *v = *value;
    if (*v == '"' || *v == '\'') {
        char *close = strchr(v + 1, *v);
        if (!close)
            return -1;
        char *after = close + 1;
        while (isspace((unsigned char)*after))
            after++;
        if (*after && *after != '#')
            return -1;
        *close = '\0';
        *value = v + 1;
        return 0;
    }
    for (char *p = v; *p; p++)
        if (*p == '#' && p > v && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    *value = trim(v);
    return 0;
}

int
cfg_parse(cfg *c, FILE *f, const char *path, err_t *e)
{
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char where[600];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = err_set(e, 400, "BAD_CONFIG", "%s: line too long", where);
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = err_set(e, 400, "BAD_CONFIG", "%s: expected NAME = value", where);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        if (strncmp(name, "export", 6) == 0 && isspace((unsigned char)name[6]))
            name = trim(name + 7); /* a shell's "export NAME=value" */
        if (unquote_value(&value) != 0) {
            rc = err_set(e, 400, "BAD_CONFIG",
                         "%s: %s: a quoted value ends with its closing quote (then only a # "
                         "comment may follow)",
                         where, name);
            break;
        }
        const cfg_key *k = find_key(name);
        if (!k) {
            rc = err_set(e, 400, "BAD_CONFIG", "%s: unknown setting '%s'", where, name);
            break;
        }
        rc = set_key(c, k, value, where, e);
    }
    return rc;
}

static int
load_file(cfg *c, const char *path, err_t *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, 400, "BAD_CONFIG", "cannot open config file %s: %s", path,
                       strerror(errno));
    /* It holds secrets: its owner and group (root:sfbridge 0640, the usual
     * service layout) may read it; nobody else may read it, and nobody but
     * its owner may change it (a changed SF_LOGIN_URL would send the
     * credentials elsewhere). */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && util_secret_mode(st.st_mode, path, "config file ",
                                                       "it holds secrets", "BAD_CONFIG", e) != 0) {
        fclose(f);
        return -1;
    }
    int rc = cfg_parse(c, f, path, e);
    fclose(f);
    return rc;
}

int
cfg_load(cfg *c, const char *path, err_t *e)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].def && set_key(c, &keys[i], keys[i].def, "default", e) != 0)
            return -1;
    if (!path || !*path)
        path = getenv("SFBRIDGE_CONFIG");
    if (path && *path && load_file(c, path, e) != 0)
        return -1;
    char creds[4096];
    if (cfg_credentials_path(c, path, creds, sizeof creds) == 0 && access(creds, F_OK) == 0 &&
        load_file(c, creds, e) != 0)
        return -1;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *v = getenv(keys[i].name);
        if (v && *v && set_key(c, &keys[i], v, "environment", e) != 0)
            return -1;
    }
    return 0;
}

int
cfg_credentials_path(const cfg *c, const char *config_path, char *out, size_t sz)
{
    const char *env = getenv("SFBRIDGE_CREDENTIALS");
    const char *set = env && *env ? env : c->credentials;
    if (!config_path || !*config_path)
        config_path = getenv("SFBRIDGE_CONFIG");
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (set && *set)
        n = snprintf(out, sz, "%s", set);
    else if (config_path && *config_path && strrchr(config_path, '/'))
        n = snprintf(out, sz, "%.*scredentials", (int)(strrchr(config_path, '/') - config_path + 1),
                     config_path);
    else if (config_path && *config_path)
        n = snprintf(out, sz, "credentials");
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, sz, "%s/sfbridge/credentials", xdg);
    else if (home && home[0] == '/')
        n = snprintf(out, sz, "%s/.config/sfbridge/credentials", home);
    else
        return -1;
    return n > 0 && (size_t)n < sz ? 0 : -1;
}

int
cfg_set(cfg *c, const char *name, const char *value, err_t *e)
{
    const cfg_key *k = find_key(name);
    if (!k || k->kind != CK_STR)
        return err_set(e, 500, "BAD_CONFIG", "%s is not a text setting", name);
    return set_key(c, k, value, "command line", e);
}

void
cfg_copy(cfg *dst, const cfg *src)
{
    memcpy(dst, src, sizeof *dst);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].kind == CK_STR) {
            char **slot = (char **)((char *)dst + keys[i].off);
            if (*slot)
                *slot = xstrdup(*slot);
        }
}

void
cfg_free(cfg *c)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].kind == CK_STR) {
            char **slot = (char **)((char *)c + keys[i].off);
            free(*slot);
            *slot = NULL;
        }
}

int
cfg_require_db(const cfg *c, err_t *e)
{
    if (!c->database_url || !*c->database_url)
        return err_set(e, 400, "BAD_CONFIG",
                       "DATABASE_URL is not set (the Postgres database to sync into)");
    const char *s = c->schema;
    if (!s || !*s || strlen(s) > 63)
        return err_set(e, 400, "BAD_CONFIG", "SFBRIDGE_SCHEMA must be 1 to 63 characters");
    return 0;
}

static bool
has(const char *s)
{
    return s && *s;
}

/* Salesforce's shared login hosts, where the client credentials flow is refused. */
static bool
shared_login_host(const char *url)
{
    const char *h = url && strstr(url, "://") ? strstr(url, "://") + 3 : "";
    size_t n = strcspn(h, ":/?#");
    return (n == 20 && strncasecmp(h, "login.salesforce.com", n) == 0) ||
           (n == 19 && strncasecmp(h, "test.salesforce.com", n) == 0);
}

int
cfg_require_sf(const cfg *c, err_t *e)
{
    if (!has(c->client_id))
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_CLIENT_ID is not set (the connected app's consumer key)");
    bool user = has(c->username), pass = has(c->password);
    if (has(c->jwt_key_file))
        return user ? 0
                    : err_set(e, 400, "BAD_CONFIG",
                              "SF_USERNAME is not set (the user the JWT bearer flow of "
                              "SF_JWT_KEY_FILE logs in as)");
    if (has(c->refresh_token))
        return 0;
    if (user && !pass)
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_PASSWORD is not set (SF_USERNAME is; or set SF_JWT_KEY_FILE or "
                       "SF_REFRESH_TOKEN instead)");
    if (pass && !user)
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_USERNAME is not set (SF_PASSWORD is; or set SF_REFRESH_TOKEN instead)");
    if (!has(c->client_secret))
        return err_set(e, 400, "BAD_CONFIG",
                       user ? "SF_CLIENT_SECRET is not set (the connected app's consumer secret, "
                              "needed to log in with SF_USERNAME and SF_PASSWORD)"
                            : "no Salesforce credentials: set SF_JWT_KEY_FILE and SF_USERNAME "
                              "(JWT bearer flow), SF_REFRESH_TOKEN (sfbridge auth gets one), "
                              "SF_USERNAME and SF_PASSWORD, or SF_CLIENT_SECRET alone (client "
                              "credentials flow)");
    if (!user && shared_login_host(c->login_url))
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_LOGIN_URL is %s, but the client credentials flow (SF_CLIENT_ID and "
                       "SF_CLIENT_SECRET without a user) works only at the org's My Domain URL: "
                       "set SF_LOGIN_URL to https://MyDomainName.my.salesforce.com (Salesforce "
                       "answers \"request not supported on this domain\" elsewhere)",
                       c->login_url);
    return 0;
}
