/*
 * faults: a bad network and a strained org, on demand. See faults.h and the
 * "Fault injection" section of docs/localforce.md for the syntax.
 *
 * The faults are a list of rules, each optionally limited to a glob on the
 * request path. For every request faults_before() draws what the matching
 * rules do to it (a fault_plan) and then:
 *   - offline: the request is deferred (http_defer) and parked until offline
 *     is turned off, when it runs as usual, or until shutdown (503);
 *   - latency: the request is deferred and queued; a worker thread runs it
 *     when it is due, through gate_dispatch(), and answers with
 *     http_complete(), so no HTTP polling thread ever sleeps;
 *   - an injected 5xx, UNABLE_TO_LOCK_ROW, or a reset (the real handler's
 *     answer streamed half way, then the connection cut) are answered at once
 *     or, with latency, when the request is due.
 * The API budget moves the server's daily limit to api_used + N (and back).
 *
 * Locking: f->lock guards the rules, the PRNG and both queues. Items are
 * taken off a queue under the lock and run (handler, http_complete) outside
 * it, so a request is completed exactly once, by whoever removed it.
 */
#include "faults.h"

#include <fnmatch.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "ctx.h"
#include "gate.h"
#include "log.h"
#include "sfid.h"
#include "util.h"

#define FAULTS_MAX_RULES  64
#define FAULTS_MAX_MS     600000 /* 10 minutes of latency or jitter */
#define FAULTS_MAX_PATH   512
#define FAULTS_MAX_BUDGET 1000000000LL
#define FAULTS_WORKERS    4
#define FAULTS_DRAIN_S    2   /* shutdown waits this long for its 503s to leave */
#define FAULTS_SETTLE_MS  250 /* ... and this long after the last answer a worker gave */

/* ----- rules ------------------------------------------------------------- */

typedef struct fault_rule {
    unsigned set; /* bit i: rule_keys[i] was given */
    char *path;   /* fnmatch glob on the request path; NULL = every path */
    int64_t latency_ms;
    int64_t jitter_ms;
    double error_rate;
    int64_t status; /* of injected errors: 500 or 503 */
    double reset_rate;
    bool offline;
    double lock_rate;
    int64_t api_budget; /* API requests left before REQUEST_LIMIT_EXCEEDED */
} fault_rule;

typedef enum { K_PATH, K_MS, K_RATE, K_STATUS, K_BOOL, K_COUNT } key_kind;

typedef struct rule_key {
    const char *name;  /* as in /admin/faults JSON and GET output */
    const char *alias; /* the --faults spelling, if different */
    key_kind kind;
    size_t off;
} rule_key;

static const rule_key rule_keys[] = {
    {"path", NULL, K_PATH, offsetof(fault_rule, path)},
    {"latency_ms", "latency", K_MS, offsetof(fault_rule, latency_ms)},
    {"jitter_ms", "jitter", K_MS, offsetof(fault_rule, jitter_ms)},
    {"error_rate", NULL, K_RATE, offsetof(fault_rule, error_rate)},
    {"status", "error_status", K_STATUS, offsetof(fault_rule, status)},
    {"reset_rate", NULL, K_RATE, offsetof(fault_rule, reset_rate)},
    {"offline", NULL, K_BOOL, offsetof(fault_rule, offline)},
    {"lock_rate", NULL, K_RATE, offsetof(fault_rule, lock_rate)},
    {"api_budget", NULL, K_COUNT, offsetof(fault_rule, api_budget)},
};
#define NKEYS         (sizeof rule_keys / sizeof rule_keys[0])
#define KEY_BIT(name) (1u << key_index(name))
#define KNOWN_KEYS                                                           \
    "path, latency_ms, jitter_ms, error_rate, status, reset_rate, offline, " \
    "lock_rate, api_budget"

typedef struct fault_rules {
    fault_rule *v;
    size_t n;
} fault_rules;

/* ----- parked and delayed requests --------------------------------------- */

typedef enum { ACT_NONE, ACT_ERROR, ACT_LOCK, ACT_RESET } fault_action;

typedef struct fault_item {
    struct fault_item *next;
    int64_t due_ms; /* monotonic; delayed items only */
    http_pending *p;
    const http_route *route;
    http_req req; /* copy; method, path and seg[] point into strs */
    char *strs;
    fault_action act;
    int status; /* of ACT_ERROR */
} fault_item;

struct lf_faults {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* delayed queue changed, stopping, or a 503 sent */
    fault_rules rules;
    uint64_t rng;
    atomic_bool active;  /* rules exist or the budget needs syncing: take the lock */
    fault_item *delayed; /* sorted by due_ms */
    fault_item *parked;  /* offline */
    int ndelayed, nparked;
    int unsent;           /* shutdown 503s not yet sent (see bye_free) */
    int64_t last_done_ms; /* when a worker last completed a request (monotonic) */
    bool stopping;
    pthread_t workers[FAULTS_WORKERS];
    int nworkers;
    /* The API budget, applied to the server's daily limit. */
    int64_t budget;    /* -1: none */
    bool budget_dirty; /* budget changed: apply at the next request or admin call */
    bool budget_applied;
    int64_t org_limit; /* the limit before the budget, when there is no store */
};

static unsigned
key_index(const char *name)
{
    for (unsigned i = 0; i < NKEYS; i++)
        if (strcmp(rule_keys[i].name, name) == 0)
            return i;
    abort(); /* a typo in this file */
}

static void
rules_free(fault_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].path);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

static const rule_key *
find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const rule_key *k = &rule_keys[i];
        if ((strlen(k->name) == len && strncmp(k->name, name, len) == 0) ||
            (k->alias && strlen(k->alias) == len && strncmp(k->alias, name, len) == 0))
            return k;
    }
    return NULL;
}

/* A typed value for one key, from either syntax. */
typedef struct key_value {
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t slen;
} key_value;

/* Range checks shared by both syntaxes; stores the value in the rule. */
static int
rule_set(fault_rule *r, const rule_key *k, const key_value *v, const char *where, err_t *e)
{
    unsigned bit = 1u << (unsigned)(k - rule_keys);
    if (r->set & bit)
        return err_set(e, 400, "BAD_FAULTS", "%s: %s given twice", where, k->name);
    void *field = (char *)r + k->off;
    switch (k->kind) {
    case K_PATH:
        if (v->slen == 0 || v->s[0] != '/' || v->slen > FAULTS_MAX_PATH ||
            memchr(v->s, '\0', v->slen))
            return err_set(e, 400, "BAD_FAULTS",
                           "%s: path must be a glob starting with '/' (at most %d bytes)", where,
                           FAULTS_MAX_PATH);
        *(char **)field = xstrndup(v->s, v->slen);
        break;
    case K_MS:
        if (v->i < 0 || v->i > FAULTS_MAX_MS)
            return err_set(e, 400, "BAD_FAULTS", "%s: %s must be whole milliseconds from 0 to %d",
                           where, k->name, FAULTS_MAX_MS);
        *(int64_t *)field = v->i;
        break;
    case K_RATE:
        if (!(v->d >= 0.0 && v->d <= 1.0))
            return err_set(e, 400, "BAD_FAULTS", "%s: %s must be a number from 0 to 1", where,
                           k->name);
        *(double *)field = v->d;
        break;
    case K_STATUS:
        if (v->i != 500 && v->i != 503)
            return err_set(e, 400, "BAD_FAULTS", "%s: status must be 500 or 503", where);
        *(int64_t *)field = v->i;
        break;
    case K_BOOL: *(bool *)field = v->b; break;
    case K_COUNT:
        if (v->i < 0 || v->i > FAULTS_MAX_BUDGET)
            return err_set(e, 400, "BAD_FAULTS", "%s: %s must be a whole number from 0 to %lld",
                           where, k->name, FAULTS_MAX_BUDGET);
        *(int64_t *)field = v->i;
        break;
    }
    r->set |= bit;
    return 0;
}

/* A rule must do something, and its settings must fit together. */
static int
rule_check(fault_rule *r, const char *where, err_t *e)
{
    if (!(r->set & ~KEY_BIT("path")))
        return err_set(e, 400, "BAD_FAULTS", "%s: the rule sets no fault (known keys: %s)", where,
                       KNOWN_KEYS);
    if ((r->set & KEY_BIT("status")) && !(r->set & KEY_BIT("error_rate")))
        return err_set(e, 400, "BAD_FAULTS", "%s: status needs an error_rate", where);
    if ((r->set & KEY_BIT("api_budget")) && (r->set & KEY_BIT("path")))
        return err_set(e, 400, "BAD_FAULTS",
                       "%s: api_budget counts every API request and cannot take a path", where);
    if (!(r->set & KEY_BIT("status")))
        r->status = 503;
    return 0;
}

static int
rules_check(fault_rules *rs, const char *what, err_t *e)
{
    int budgets = 0;
    for (size_t i = 0; i < rs->n; i++)
        budgets += (rs->v[i].set & KEY_BIT("api_budget")) != 0;
    if (budgets > 1)
        return err_set(e, 400, "BAD_FAULTS", "%s: api_budget is given in more than one rule", what);
    return 0;
}

/* ----- the --faults syntax ------------------------------------------------ */

static void
trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* One "key=value" (or a bare boolean key) of rule number ruleno. */
static int
spec_setting(fault_rule *r, const char *s, size_t n, int ruleno, err_t *e)
{
    char where[96];
    snprintf(where, sizeof where, "--faults rule %d, '%.*s'", ruleno, (int)(n > 40 ? 40 : n), s);
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    const char *val = eq ? eq + 1 : NULL;
    size_t vlen = eq ? n - klen - 1 : 0;
    trim(&s, &klen);
    if (val)
        trim(&val, &vlen);
    const rule_key *k = find_key(s, klen);
    if (k == NULL)
        return err_set(e, 400, "BAD_FAULTS",
                       "%s: unknown setting '%.*s' (known: latency, jitter, "
                       "error_rate, status, reset_rate, offline, lock_rate, api_budget, path)",
                       where, (int)(klen > 40 ? 40 : klen), s);
    key_value v = {.s = val, .slen = vlen};
    char buf[64];
    if (k->kind != K_PATH && val) {
        if (vlen >= sizeof buf)
            return err_set(e, 400, "BAD_FAULTS", "%s: the value is too long", where);
        memcpy(buf, val, vlen);
        buf[vlen] = '\0';
    }
    switch (k->kind) {
    case K_PATH:
        if (val == NULL)
            return err_set(e, 400, "BAD_FAULTS", "%s: path needs a value", where);
        break;
    case K_MS:
    case K_STATUS:
    case K_COUNT:
        if (val == NULL || util_parse_i64(buf, &v.i) != 0)
            return err_set(e, 400, "BAD_FAULTS", "%s: %s needs a whole number", where, k->name);
        break;
    case K_RATE:
        if (val == NULL || util_parse_double(buf, &v.d) != 0)
            return err_set(e, 400, "BAD_FAULTS", "%s: %s needs a number from 0 to 1", where,
                           k->name);
        break;
    case K_BOOL:
        if (val == NULL || strcasecmp(buf, "true") == 0 || strcmp(buf, "1") == 0 ||
            strcasecmp(buf, "on") == 0)
            v.b = true;
        else if (strcasecmp(buf, "false") == 0 || strcmp(buf, "0") == 0 ||
                 strcasecmp(buf, "off") == 0)
            v.b = false;
        else
            return err_set(e, 400, "BAD_FAULTS", "%s: %s is true or false", where, k->name);
        break;
    }
    return rule_set(r, k, &v, where, e);
}

/* "latency=200,jitter=50,path=/services/data/x;error_rate=0.2,status=503": rules split at
 * semicolons, settings at commas. */
static int
parse_spec(const char *spec, fault_rules *out, err_t *e)
{
    fault_rules rs = {0};
    const char *p = spec;
    int ruleno = 0;
    while (p && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        const char *rule = p;
        p = semi ? semi + 1 : NULL;
        trim(&rule, &n);
        if (n == 0)
            continue;
        ruleno++;
        if (rs.n == FAULTS_MAX_RULES) {
            err_set(e, 400, "BAD_FAULTS", "--faults: more than %d rules", FAULTS_MAX_RULES);
            goto fail;
        }
        rs.v = xrealloc(rs.v, (rs.n + 1) * sizeof *rs.v);
        fault_rule *r = &rs.v[rs.n++];
        memset(r, 0, sizeof *r);
        for (const char *q = rule, *end = rule + n; q <= end;) {
            const char *comma = memchr(q, ',', (size_t)(end - q));
            size_t m = comma ? (size_t)(comma - q) : (size_t)(end - q);
            const char *set = q;
            q += m + 1;
            trim(&set, &m);
            if (m == 0) {
                err_set(e, 400, "BAD_FAULTS", "--faults rule %d: an empty setting", ruleno);
                goto fail;
            }
            if (spec_setting(r, set, m, ruleno, e) != 0)
                goto fail;
        }
        char where[48];
        snprintf(where, sizeof where, "--faults rule %d", ruleno);
        if (rule_check(r, where, e) != 0)
            goto fail;
    }
    if (rules_check(&rs, "--faults", e) != 0)
        goto fail;
    *out = rs;
    return 0;
fail:
    rules_free(&rs);
    return -1;
}

/* ----- the /admin/faults JSON --------------------------------------------- */

static int
json_rule(const json_t *obj, size_t idx, fault_rule *r, err_t *e)
{
    char where[64];
    snprintf(where, sizeof where, "rules[%zu]", idx);
    if (!json_is_object(obj))
        return err_set(e, 400, "BAD_FAULTS", "%s: a rule is a JSON object", where);
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)obj, name, val) {
        const rule_key *k = find_key(name, strlen(name));
        if (k == NULL)
            return err_set(e, 400, "BAD_FAULTS", "%s: unknown key '%.64s' (known: %s)", where, name,
                           KNOWN_KEYS);
        char kwhere[128];
        snprintf(kwhere, sizeof kwhere, "%s.%s", where, k->name);
        key_value v = {0};
        switch (k->kind) {
        case K_PATH:
            if (!json_is_string(val))
                return err_set(e, 400, "BAD_FAULTS", "%s must be a string", kwhere);
            v.s = json_string_value(val);
            v.slen = json_string_length(val);
            break;
        case K_MS:
        case K_STATUS:
        case K_COUNT:
            if (!json_is_integer(val))
                return err_set(e, 400, "BAD_FAULTS", "%s must be a whole number", kwhere);
            v.i = (int64_t)json_integer_value(val);
            break;
        case K_RATE:
            if (!json_is_number(val))
                return err_set(e, 400, "BAD_FAULTS", "%s must be a number from 0 to 1", kwhere);
            v.d = json_number_value(val);
            break;
        case K_BOOL:
            if (!json_is_boolean(val))
                return err_set(e, 400, "BAD_FAULTS", "%s must be true or false", kwhere);
            v.b = json_is_true(val);
            break;
        }
        if (rule_set(r, k, &v, where, e) != 0)
            return -1;
    }
    return rule_check(r, where, e);
}

typedef struct admin_put {
    bool has_rules;
    fault_rules rules;
    bool expire_sessions;
    bool has_seed;
    uint64_t seed;
    bool drop; /* release parked requests by closing them */
} admin_put;

static int
parse_admin(const char *body, size_t len, admin_put *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (j == NULL) {
        if (len == 0)
            return err_set(e, 400, "JSON_PARSER_ERROR", "The request body is empty.");
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s at [line:%d, column:%d]", je.text, je.line,
                       je.column);
    }
    int rc = -1;
    if (!json_is_object(j)) {
        err_set(e, 400, "BAD_FAULTS", "the body must be a JSON object like {\"rules\":[...]}");
        goto done;
    }
    const char *name;
    json_t *val;
    json_object_foreach(j, name, val) {
        if (strcmp(name, "rules") == 0) {
            if (!json_is_array(val)) {
                err_set(e, 400, "BAD_FAULTS", "rules must be an array of rule objects");
                goto done;
            }
            if (json_array_size(val) > FAULTS_MAX_RULES) {
                err_set(e, 400, "BAD_FAULTS", "rules: more than %d rules", FAULTS_MAX_RULES);
                goto done;
            }
            out->has_rules = true;
            size_t n = json_array_size(val);
            out->rules.v = n ? xcalloc(n, sizeof *out->rules.v) : NULL;
            for (size_t i = 0; i < n; i++) {
                out->rules.n = i + 1;
                if (json_rule(json_array_get(val, i), i, &out->rules.v[i], e) != 0)
                    goto done;
            }
            if (rules_check(&out->rules, "rules", e) != 0)
                goto done;
        } else if (strcmp(name, "expire_sessions") == 0) {
            if (!json_is_boolean(val)) {
                err_set(e, 400, "BAD_FAULTS", "expire_sessions must be true or false");
                goto done;
            }
            out->expire_sessions = json_is_true(val);
        } else if (strcmp(name, "seed") == 0) {
            if (!json_is_integer(val)) {
                err_set(e, 400, "BAD_FAULTS", "seed must be a whole number");
                goto done;
            }
            out->has_seed = true;
            out->seed = (uint64_t)json_integer_value(val);
        } else if (strcmp(name, "release") == 0) {
            const char *s = json_string_value(val);
            if (s == NULL || (strcmp(s, "run") != 0 && strcmp(s, "drop") != 0)) {
                err_set(e, 400, "BAD_FAULTS", "release must be \"run\" or \"drop\"");
                goto done;
            }
            out->drop = strcmp(s, "drop") == 0;
        } else {
            err_set(e, 400, "BAD_FAULTS",
                    "unknown key '%.64s' (known: rules, expire_sessions, "
                    "seed, release)",
                    name);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc != 0)
        rules_free(&out->rules);
    json_decref(j);
    return rc;
}

static void
rules_json(const fault_rules *rs, sb *out)
{
    sb_putc(out, '[');
    for (size_t i = 0; i < rs->n; i++) {
        const fault_rule *r = &rs->v[i];
        bool first = true;
        sb_puts(out, i ? ",{" : "{");
        for (size_t k = 0; k < NKEYS; k++) {
            if (!(r->set & (1u << k)))
                continue;
            const void *field = (const char *)r + rule_keys[k].off;
            sb_puts(out, first ? "" : ",");
            first = false;
            sb_json_str(out, rule_keys[k].name);
            sb_putc(out, ':');
            switch (rule_keys[k].kind) {
            case K_PATH: sb_json_str(out, *(char *const *)field); break;
            case K_MS:
            case K_STATUS:
            case K_COUNT: sb_put_i64(out, *(const int64_t *)field); break;
            case K_RATE: sb_json_double(out, *(const double *)field); break;
            case K_BOOL: sb_puts(out, *(const bool *)field ? "true" : "false"); break;
            }
        }
        sb_putc(out, '}');
    }
    sb_putc(out, ']');
}

/* ----- randomness ---------------------------------------------------------- */

/* splitmix64: small, fast, and the same sequence for the same seed. */
static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ----- deciding ------------------------------------------------------------ */

static bool
is_write(const char *method, const char *path)
{
    static const char *const writes[] = {"POST", "PATCH", "PUT", "DELETE"};
    if (strncmp(path, "/services/data/", 15) != 0)
        return false;
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (strcmp(method, writes[i]) == 0)
            return true;
    return false;
}

static bool
rule_matches(const fault_rule *r, const char *path)
{
    return r->path == NULL || fnmatch(r->path, path, 0) == 0;
}

static void
plan_locked(lf_faults *f, const char *method, const char *path, fault_plan *out)
{
    memset(out, 0, sizeof *out);
    bool write = is_write(method, path);
    int64_t delay = 0;
    for (size_t i = 0; i < f->rules.n; i++) {
        const fault_rule *r = &f->rules.v[i];
        if (!rule_matches(r, path))
            continue;
        delay += r->latency_ms;
        if (r->jitter_ms > 0)
            delay += (int64_t)(rng_next(&f->rng) % (uint64_t)(r->jitter_ms + 1));
        if (r->offline)
            out->offline = true;
        if (r->error_rate > 0 && rng_unit(&f->rng) < r->error_rate && out->error_status == 0)
            out->error_status = (int)r->status;
        if (r->lock_rate > 0 && write && rng_unit(&f->rng) < r->lock_rate)
            out->lock = true;
        if (r->reset_rate > 0 && rng_unit(&f->rng) < r->reset_rate)
            out->reset = true;
    }
    out->delay_ms = (int)(delay > FAULTS_MAX_MS ? FAULTS_MAX_MS : delay);
}

static bool
offline_matches_locked(lf_faults *f, const char *path)
{
    for (size_t i = 0; i < f->rules.n; i++)
        if (f->rules.v[i].offline && rule_matches(&f->rules.v[i], path))
            return true;
    return false;
}

void
faults_plan(lf_faults *f, const char *method, const char *path, fault_plan *out)
{
    pthread_mutex_lock(&f->lock);
    plan_locked(f, method, path, out);
    pthread_mutex_unlock(&f->lock);
}

void
faults_seed(lf_faults *f, uint64_t seed)
{
    pthread_mutex_lock(&f->lock);
    f->rng = seed;
    pthread_mutex_unlock(&f->lock);
}

static void
update_active_locked(lf_faults *f)
{
    atomic_store(&f->active, f->rules.n > 0 || f->budget_dirty);
}

/* Take new rules (owning them) and note what the API budget must become. */
static void
set_rules_locked(lf_faults *f, fault_rules *rs)
{
    rules_free(&f->rules);
    f->rules = *rs;
    memset(rs, 0, sizeof *rs);
    f->budget = -1;
    for (size_t i = 0; i < f->rules.n; i++)
        if (f->rules.v[i].set & KEY_BIT("api_budget"))
            f->budget = f->rules.v[i].api_budget;
    f->budget_dirty = f->budget >= 0 || f->budget_applied;
    update_active_locked(f);
}

/* Move the server's daily limit to used + budget, or back to the org's. The
 * limit is an atomic the API checks read on every request. */
static void
sync_budget_locked(lf_faults *f, lf_server *srv)
{
    if (!f->budget_dirty || srv == NULL)
        return;
    f->budget_dirty = false;
    if (f->budget >= 0) {
        if (!f->budget_applied)
            f->org_limit = atomic_load(&srv->api_limit);
        f->budget_applied = true;
        atomic_store(&srv->api_limit, (int64_t)atomic_load(&srv->api_used) + f->budget);
    } else if (f->budget_applied) {
        f->budget_applied = false;
        atomic_store(&srv->api_limit, srv->st ? store_daily_api_limit(srv->st) : f->org_limit);
    }
    update_active_locked(f);
}

/* ----- answers ------------------------------------------------------------- */

static void
answer_error(http_resp *resp, int status)
{
    if (status == 503) {
        http_errorf(resp, 503, "SERVER_UNAVAILABLE",
                    "Server temporarily unavailable: please retry later.");
        return;
    }
    uint32_t r[3];
    util_random(r, sizeof r);
    http_errorf(resp, 500, "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact "
                "support: %u-%u (%d)",
                (unsigned)(r[0] % 1000000000u) + 1000000000u, (unsigned)(r[1] % 100000u),
                -(int)(r[2] % 2000000000u));
}

/* UNABLE_TO_LOCK_ROW, run as a route's handler so the API checks come first. */
static void
lock_handler(http_req *req, http_resp *resp)
{
    const char *last = strrchr(req->path, '/');
    char id[19] = "";
    if (last == NULL || sfid_normalize(last + 1, id) != 0)
        id[0] = '\0';
    http_errorf(resp, 400, "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record or 1 records: %s", id);
}

/* A reset: the first half of a real answer, then the connection is cut. */
typedef struct cut_ctx {
    char *buf;
    size_t len;           /* bytes of buf sent before the cut */
    http_stream_fn inner; /* or a streamed answer: one piece of it */
    void *inner_ctx;
    void (*inner_free)(void *);
    bool inner_sent;
} cut_ctx;

static ssize_t
cut_stream(void *ctx, uint64_t pos, char *buf, size_t max)
{
    cut_ctx *c = ctx;
    if (c->inner) {
        if (c->inner_sent)
            return HTTP_STREAM_ABORT;
        c->inner_sent = true;
        ssize_t n = c->inner(c->inner_ctx, pos, buf, max);
        return n > 0 ? n : HTTP_STREAM_ABORT;
    }
    if (pos >= c->len)
        return HTTP_STREAM_ABORT;
    size_t n = c->len - (size_t)pos < max ? c->len - (size_t)pos : max;
    memcpy(buf, c->buf + pos, n);
    return (ssize_t)n;
}

static void
cut_free(void *ctx)
{
    cut_ctx *c = ctx;
    if (c->inner_free)
        c->inner_free(c->inner_ctx);
    free(c->buf);
    free(c);
}

static void
cut_response(http_resp *resp)
{
    cut_ctx *c = xcalloc(1, sizeof *c);
    if (resp->stream) {
        c->inner = resp->stream;
        c->inner_ctx = resp->stream_ctx;
        c->inner_free = resp->stream_free;
    } else {
        c->len = resp->body.len / 2;
        c->buf = sb_steal(&resp->body);
    }
    /* 204 and 304 carry no body to cut: send a 200 that breaks off instead. */
    if (resp->status == 204 || resp->status == 304)
        resp->status = 200;
    resp->stream = cut_stream;
    resp->stream_ctx = c;
    resp->stream_free = cut_free;
}

/* Carry out an action. deferred: the request is parked (req->pending set), so
 * ACT_NONE runs the handler and after() must be stood in for. Returns what
 * faults_before() should tell the server. */
static fault_verdict
run_action(fault_action act, int status, const http_route *route, http_req *req, http_resp *resp,
           bool deferred)
{
    switch (act) {
    case ACT_ERROR: answer_error(resp, status); return FAULT_ANSWERED;
    case ACT_LOCK: {
        http_route lock_route = {route->method, route->pattern, lock_handler};
        gate_dispatch(&lock_route, req, resp);
        break;
    }
    case ACT_RESET:
        gate_dispatch(route, req, resp);
        if (!deferred && req->pending)
            return FAULT_TAKEN; /* the handler parked it (a long poll): leave it be */
        cut_response(resp);
        break;
    case ACT_NONE:
        if (!deferred)
            return FAULT_PASS;
        gate_dispatch(route, req, resp);
        break;
    }
    if (deferred)
        gate_after(route, req, resp); /* gate_dispatch skips it for parked requests */
    return FAULT_ANSWERED;
}

/* ----- parked items --------------------------------------------------------- */

static fault_item *
item_new(const http_route *route, const http_req *req, http_pending *p, fault_action act,
         int status)
{
    fault_item *it = xcalloc(1, sizeof *it);
    it->p = p;
    it->route = route;
    it->act = act;
    it->status = status;
    it->req = *req;
    /* req->seg[] point at http.c's thread-local buffers: copy them, and the
     * method and path with them. The body lives as long as the connection. */
    size_t need = strlen(req->method) + 1 + strlen(req->path) + 1;
    for (int i = 0; i < req->nseg; i++)
        need += strlen(req->seg[i]) + 1;
    char *s = it->strs = xmalloc(need);
    it->req.method = s;
    s = stpcpy(s, req->method) + 1;
    it->req.path = s;
    s = stpcpy(s, req->path) + 1;
    for (int i = 0; i < req->nseg; i++) {
        it->req.seg[i] = s;
        s = stpcpy(s, req->seg[i]) + 1;
    }
    return it;
}

static void
item_free(fault_item *it)
{
    free(it->strs);
    free(it);
}

/* Note that an answer was just handed to http_complete: the HTTP server needs
 * a moment to resume the connection and send it (see faults_shutdown). */
static void
note_completed(lf_faults *f)
{
    pthread_mutex_lock(&f->lock);
    f->last_done_ms = util_mono_ms();
    pthread_mutex_unlock(&f->lock);
}

static void
run_item(lf_faults *f, fault_item *it)
{
    http_resp resp = {.status = 200, .content_type = CT_JSON};
    run_action(it->act, it->status, it->route, &it->req, &resp, true);
    /* After http_complete the connection may go at once: req is not to be touched. */
    http_complete(it->p, &resp);
    item_free(it);
    note_completed(f);
}

/* The 503 of shutdown, streamed so that its stream_free tells faults_shutdown
 * the answer has left: the HTTP server must not stop before it is sent. */
typedef struct bye_ctx {
    lf_faults *f;
    char *body;
    size_t len;
} bye_ctx;

static ssize_t
bye_stream(void *ctx, uint64_t pos, char *buf, size_t max)
{
    bye_ctx *b = ctx;
    if (pos >= b->len)
        return HTTP_STREAM_END;
    size_t n = b->len - (size_t)pos < max ? b->len - (size_t)pos : max;
    memcpy(buf, b->body + pos, n);
    return (ssize_t)n;
}

static void
bye_free(void *ctx)
{
    bye_ctx *b = ctx;
    pthread_mutex_lock(&b->f->lock);
    b->f->unsent--;
    pthread_cond_broadcast(&b->f->wake);
    pthread_mutex_unlock(&b->f->lock);
    free(b->body);
    free(b);
}

/* Answer without running: 503 at shutdown, or a cut connection. */
static void
close_item(lf_faults *f, fault_item *it, bool cut)
{
    http_resp resp = {.status = 200, .content_type = CT_JSON};
    if (cut) {
        cut_response(&resp);
    } else {
        http_errorf(&resp, 503, "SERVER_UNAVAILABLE", "Server is shutting down.");
        resp.close = true;
        bye_ctx *b = xcalloc(1, sizeof *b);
        b->f = f;
        b->len = resp.body.len;
        b->body = sb_steal(&resp.body);
        resp.stream = bye_stream;
        resp.stream_ctx = b;
        resp.stream_free = bye_free;
        pthread_mutex_lock(&f->lock);
        f->unsent++;
        pthread_mutex_unlock(&f->lock);
    }
    http_complete(it->p, &resp);
    item_free(it);
    if (cut)
        note_completed(f);
}

static void *
worker_main(void *arg)
{
    lf_faults *f = arg;
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        fault_item *it = f->delayed;
        if (it == NULL) {
            pthread_cond_wait(&f->wake, &f->lock);
            continue;
        }
        int64_t now = util_mono_ms();
        if (it->due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = it->due_ms - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&f->wake, &f->lock, &ts);
            continue;
        }
        f->delayed = it->next;
        f->ndelayed--;
        pthread_mutex_unlock(&f->lock);
        run_item(f, it);
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static void
enqueue_locked(lf_faults *f, fault_item *it)
{
    fault_item **pp = &f->delayed;
    while (*pp && (*pp)->due_ms <= it->due_ms)
        pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    f->ndelayed++;
    while (f->nworkers < FAULTS_WORKERS) {
        if (pthread_create(&f->workers[f->nworkers], NULL, worker_main, f) != 0) {
            log_error("faults: cannot start a worker thread");
            abort(); /* as for running out of memory: no sane way on */
        }
        f->nworkers++;
    }
    pthread_cond_broadcast(&f->wake);
}

/* Parked requests no offline rule holds any more run now (or are cut). */
static void
release_parked_locked(lf_faults *f, bool all, bool drop, fault_item **dropped)
{
    int64_t now = util_mono_ms();
    for (fault_item **pp = &f->parked; *pp;) {
        fault_item *it = *pp;
        if (!all && offline_matches_locked(f, it->req.path)) {
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        f->nparked--;
        it->act = ACT_NONE;
        if (drop) {
            it->next = *dropped;
            *dropped = it;
        } else {
            it->due_ms = now;
            enqueue_locked(f, it);
        }
    }
}

/* ----- interface ------------------------------------------------------------- */

lf_faults *
faults_new(const char *spec, err_t *e)
{
    fault_rules rs = {0};
    if (spec && parse_spec(spec, &rs, e) != 0)
        return NULL;
    uint64_t seed;
    const char *env = getenv("LOCALFORCE_FAULTS_SEED");
    int64_t n;
    if (env && *env) {
        if (util_parse_i64(env, &n) != 0) {
            rules_free(&rs);
            return err_set(e, 400, "BAD_FAULTS",
                           "LOCALFORCE_FAULTS_SEED must be a whole number, "
                           "not '%.40s'",
                           env),
                   NULL;
        }
        seed = (uint64_t)n;
    } else {
        util_random(&seed, sizeof seed);
    }
    lf_faults *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &ca);
    pthread_condattr_destroy(&ca);
    f->rng = seed;
    f->budget = -1;
    atomic_init(&f->active, false);
    set_rules_locked(f, &rs);
    if (f->rules.n)
        log_info("faults: %zu rule(s) from --faults", f->rules.n);
    return f;
}

void
faults_shutdown(lf_faults *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    atomic_store(&f->active, false);
    pthread_cond_broadcast(&f->wake);
    int nworkers = f->nworkers;
    f->nworkers = 0;
    pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < nworkers; i++)
        pthread_join(f->workers[i], NULL); /* each finishes the item it runs */
    pthread_mutex_lock(&f->lock);
    fault_item *lists[2] = {f->delayed, f->parked};
    f->delayed = f->parked = NULL;
    f->ndelayed = f->nparked = 0;
    pthread_mutex_unlock(&f->lock);
    for (int l = 0; l < 2; l++)
        for (fault_item *it = lists[l], *next; it; it = next) {
            next = it->next;
            close_item(f, it, false);
        }
    /* Give the HTTP threads a moment to send those answers (bounded: a
     * connection that cannot take them is closed by http_stop anyway). */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += FAULTS_DRAIN_S;
    pthread_mutex_lock(&f->lock);
    while (f->unsent > 0)
        if (pthread_cond_timedwait(&f->wake, &f->lock, &until) != 0)
            break;
    if (f->unsent > 0)
        log_warn("faults: %d parked request(s) not answered before shutdown", f->unsent);
    /* Answers completed by the workers just now have no such signal: let them
     * leave too, or http_stop would close their connections unanswered. */
    int64_t settle = f->last_done_ms ? f->last_done_ms + FAULTS_SETTLE_MS - util_mono_ms() : 0;
    pthread_mutex_unlock(&f->lock);
    if (settle > 0) {
        struct timespec ts = {0, (long)(settle > FAULTS_SETTLE_MS ? FAULTS_SETTLE_MS : settle) *
                                     1000000L};
        nanosleep(&ts, NULL);
    }
}

void
faults_free(lf_faults *f)
{
    if (f == NULL)
        return;
    faults_shutdown(f);
    rules_free(&f->rules);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

fault_verdict
faults_before(lf_faults *f, const http_route *route, http_req *req, http_resp *resp)
{
    if (!atomic_load(&f->active))
        return FAULT_PASS;
    fault_plan pl;
    pthread_mutex_lock(&f->lock);
    sync_budget_locked(f, ctx_of(req));
    if (f->stopping || f->rules.n == 0) {
        pthread_mutex_unlock(&f->lock);
        return FAULT_PASS;
    }
    plan_locked(f, req->method, req->path, &pl);
    fault_action act = pl.error_status ? ACT_ERROR
                       : pl.lock       ? ACT_LOCK
                       : pl.reset      ? ACT_RESET
                                       : ACT_NONE;
    if (pl.offline || pl.delay_ms > 0) {
        http_pending *p = http_defer(req); /* NULL without a live connection */
        if (p) {
            fault_item *it = item_new(route, req, p, pl.offline ? ACT_NONE : act, pl.error_status);
            if (pl.offline) {
                it->next = f->parked;
                f->parked = it;
                f->nparked++;
            } else {
                it->due_ms = util_mono_ms() + pl.delay_ms;
                enqueue_locked(f, it);
            }
            pthread_mutex_unlock(&f->lock);
            log_debug("faults: %s %s %s", req->method, req->path,
                      pl.offline ? "parked (offline)" : "delayed");
            return FAULT_TAKEN;
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (act != ACT_NONE)
        log_debug("faults: %s %s answered with an injected fault", req->method, req->path);
    return run_action(act, pl.error_status, route, req, resp, false);
}

static void
admin_state(lf_faults *f, lf_server *srv, sb *out)
{
    pthread_mutex_lock(&f->lock);
    sb_puts(out, "{\"rules\":");
    rules_json(&f->rules, out);
    sb_printf(out, ",\"state\":{\"parked\":%d,\"delayed\":%d,\"api_budget_remaining\":", f->nparked,
              f->ndelayed);
    if (f->budget_applied && srv) {
        long long left = (long long)atomic_load(&srv->api_limit) -
                         (long long)atomic_load(&srv->api_used);
        sb_printf(out, "%lld", left < 0 ? 0 : left);
    } else if (f->budget >= 0) {
        sb_printf(out, "%lld", (long long)f->budget);
    } else {
        sb_puts(out, "null");
    }
    sb_puts(out, "}}");
    pthread_mutex_unlock(&f->lock);
}

void
faults_admin(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    lf_faults *f = srv->faults;
    fault_item *dropped = NULL;
    if (strcmp(req->method, "DELETE") == 0) {
        const char *rel = http_query(req, "release");
        if (rel && strcmp(rel, "run") != 0 && strcmp(rel, "drop") != 0) {
            http_errorf(resp, 400, "BAD_FAULTS", "release must be run or drop");
            return;
        }
        fault_rules none = {0};
        pthread_mutex_lock(&f->lock);
        set_rules_locked(f, &none);
        sync_budget_locked(f, srv);
        if (!f->stopping) {
            release_parked_locked(f, true, rel && strcmp(rel, "drop") == 0, &dropped);
            /* Normal service at once: delayed requests are due now, fault-free. */
            for (fault_item *it = f->delayed; it; it = it->next)
                it->due_ms = 0, it->act = ACT_NONE;
            pthread_cond_broadcast(&f->wake);
        }
        pthread_mutex_unlock(&f->lock);
        log_info("faults: cleared");
    } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        admin_put put;
        err_t e;
        if (parse_admin(req->body, req->body_len, &put, &e) != 0) {
            http_error(resp, &e);
            return;
        }
        pthread_mutex_lock(&f->lock);
        if (put.has_seed)
            f->rng = put.seed;
        if (put.has_rules) {
            set_rules_locked(f, &put.rules);
            sync_budget_locked(f, srv);
            if (!f->stopping)
                release_parked_locked(f, false, put.drop, &dropped);
            log_info("faults: %zu rule(s) set through /admin/faults", f->rules.n);
        }
        pthread_mutex_unlock(&f->lock);
        if (put.expire_sessions && srv->auth) {
            auth_expire_all(srv->auth);
            log_info("faults: every session expired");
        }
    } else {
        pthread_mutex_lock(&f->lock);
        sync_budget_locked(f, srv);
        pthread_mutex_unlock(&f->lock);
    }
    for (fault_item *it = dropped, *next; it; it = next) {
        next = it->next;
        close_item(f, it, true);
    }
    admin_state(f, srv, &resp->body);
}
