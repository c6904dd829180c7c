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
#include <sys/stat.h>

#include "util.h"

typedef enum { CK_STR, CK_LONG } cfg_kind;

typedef struct cfg_key {
    const char *name;
    cfg_kind kind;
    size_t off;
    const char *def;
    long min, max;
} cfg_key;

#define S(n, f, d)                           \
    {                                        \
        n, CK_STR, offsetof(cfg, f), d, 0, 0 \
    }
#define L(n, f, d, lo, hi)                      \
    {                                           \
        n, CK_LONG, offsetof(cfg, f), d, lo, hi \
    }
static const cfg_key keys[] = {
    S("DATABASE_URL", database_url, NULL),
    S("SFBRIDGE_SCHEMA", schema, "salesforce"),
    S("SF_LOGIN_URL", login_url, "https://login.salesforce.com"),
    S("SF_CLIENT_ID", client_id, NULL),
    S("SF_CLIENT_SECRET", client_secret, NULL),
    S("SF_REFRESH_TOKEN", refresh_token, NULL),
    S("SF_USERNAME", username, NULL),
    S("SF_PASSWORD", password, NULL),
    S("SF_API_VERSION", api_version, "60.0"),
    S("SFBRIDGE_LOG_LEVEL", log_level, "info"),
    S("SFBRIDGE_CONFLICT_POLICY", conflict_policy, "last_writer_wins"),
    L("SFBRIDGE_BULK_THRESHOLD", bulk_threshold, "10000", 0, 1000000000L),
    L("SFBRIDGE_BULK_PAGE", bulk_page, "50000", 1, 100000000L),
    L("SFBRIDGE_POLL_OVERLAP_MS", poll_overlap_ms, "2000", 0, 86400000L),
    L("SFBRIDGE_DRIFT_SECONDS", drift_seconds, "3600", 0, 31L * 86400),
    L("SFBRIDGE_BACKOFF_CAP_MS", backoff_cap_ms, "30000", 10, 3600000L),
    L("SFBRIDGE_REST_BATCH", rest_batch, "2000", 200, 2000),
    L("SFBRIDGE_ARCHIVE_DAYS", archive_days, "31", 1, 3650),
    L("SFBRIDGE_BULK_WRITE_MIN", bulk_write_min, "2000", 1, 100000000L),
    L("SFBRIDGE_WRITE_SETTLE_MS", write_settle_ms, "15000", 0, 3600000L),
    L("SFBRIDGE_DEDICATED_USER", dedicated_user, "0", 0, 1),
    L("SFBRIDGE_WRITE_GATHER_MS", write_gather_ms, "0", 0, 60000L),
    L("SFBRIDGE_STREAM_SILENCE_MS", stream_silence_ms, "600000", 1000, 86400000L),
};
#undef S
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
        size_t vn = strlen(value);
        if (vn >= 2 && ((value[0] == '"' && value[vn - 1] == '"') ||
                        (value[0] == '\'' && value[vn - 1] == '\''))) {
            value[vn - 1] = '\0';
            value++;
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
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fclose(f);
        return err_set(e, 400, "BAD_CONFIG",
                       "config file %s can be read by others (mode %03o); it holds secrets: chmod "
                       "600 %s",
                       path, (unsigned)(st.st_mode & 0777), path);
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
    for (size_t i = 0; i < NKEYS; i++) {
        const char *v = getenv(keys[i].name);
        if (v && *v && set_key(c, &keys[i], v, "environment", e) != 0)
            return -1;
    }
    return 0;
}

void
cfg_set(cfg *c, const char *name, const char *value)
{
    const cfg_key *k = find_key(name);
    if (k && k->kind == CK_STR)
        set_key(c, k, value, "command line", NULL);
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
    const char *p = c->conflict_policy ? c->conflict_policy : "";
    if (strcmp(p, "last_writer_wins") != 0 && strcmp(p, "salesforce_wins") != 0 &&
        strcmp(p, "postgres_wins") != 0)
        return err_set(e, 400, "BAD_CONFIG",
                       "SFBRIDGE_CONFLICT_POLICY must be last_writer_wins, salesforce_wins or "
                       "postgres_wins, not '%s'",
                       p);
    return 0;
}

int
cfg_require_sf(const cfg *c, err_t *e)
{
    if (!c->client_id || !*c->client_id)
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_CLIENT_ID is not set (the connected app's consumer key)");
    bool refresh = c->refresh_token && *c->refresh_token;
    bool pass = c->username && *c->username && c->password && *c->password;
    if (!refresh && !pass)
        return err_set(e, 400, "BAD_CONFIG",
                       "no Salesforce credentials: set SF_REFRESH_TOKEN, or SF_USERNAME and "
                       "SF_PASSWORD");
    if (!refresh && (!c->client_secret || !*c->client_secret))
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_CLIENT_SECRET is not set (the connected app's consumer secret, needed "
                       "to log in "
                       "with SF_USERNAME and SF_PASSWORD)");
    if (!c->login_url || strncmp(c->login_url, "http", 4) != 0)
        return err_set(e, 400, "BAD_CONFIG", "SF_LOGIN_URL must be an http(s) URL");
    return 0;
}
