/*
 * catalog_state: a mapping's state and progress columns of _sfbridge_mapping
 * (state changes for fsm_fire, load and poll progress, counters, streaming).
 */
#include "catalog.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "pg.h"
#include "util.h"

/* ---- columns that go with a state change ----------------------------------------- */

/* Append ", <assign>" where $N in assign names the next parameters (given in order). */
static void
col(cat_cols *c, const char *assign, int nparams, ...)
{
    va_list ap;
    va_start(ap, nparams);
    sb_puts(&c->set, ", ");
    for (const char *p = assign; *p; p++) {
        if (*p == '$' && p[1] == 'N') {
            sb_printf(&c->set, "$%d", c->n + 2);
            c->n++;
            p++;
        } else {
            sb_putc(&c->set, *p);
        }
    }
    assert(c->n <= (int)(sizeof c->params / sizeof c->params[0]));
    for (int i = 0; i < nparams; i++) {
        const char *v = va_arg(ap, const char *);
        c->params[c->n - nparams + i] = v ? xstrdup(v) : NULL;
    }
    va_end(ap);
}

void
cat_cols_free(cat_cols *c)
{
    if (!c)
        return;
    sb_free(&c->set);
    for (int i = 0; i < c->n; i++)
        free(c->params[i]);
    memset(c, 0, sizeof *c);
}

void
cat_cols_takeover(cat_cols *c)
{
    col(c, "loaded = true, last_drift_at = now()", 0);
}

void
cat_cols_load_started(cat_cols *c, int64_t total, const char *load_wm, const char *job)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)total);
    col(c,
        "load_total = $N::bigint, load_wm = $N::timestamp, load_job = $N, load_locator = NULL, "
        "load_done = 0,"
        " load_started_at = now(), last_error = NULL",
        3, t, load_wm, job);
}

void
cat_cols_load_restart(cat_cols *c)
{
    col(c, "load_total = NULL, load_locator = NULL, load_job = NULL", 0);
}

/* A pull that finished: polled now, next poll after the mapping's interval, no failure. */
static void
col_polled(cat_cols *c, int poll_seconds)
{
    char poll[16];
    snprintf(poll, sizeof poll, "%d", poll_seconds);
    col(c,
        "last_poll_at = now(), next_poll_at = now() + make_interval(secs => $N::int), errors = 0,"
        " last_error = NULL, polls = polls + 1",
        1, poll);
}

void
cat_cols_load_finished(cat_cols *c, int poll_seconds)
{
    col(c,
        "loaded = true, watermark = load_wm, load_job = NULL, load_locator = NULL, last_drift_at = "
        "now()",
        0);
    col_polled(c, poll_seconds);
}

void
cat_cols_reload_request(cat_cols *c)
{
    col(c,
        "errors = 0, next_poll_at = NULL, reload_done = 0, reload_total = NULL, reload_via = NULL,"
        " reload_started_at = NULL",
        0);
}

void
cat_cols_reload_finished(cat_cols *c, const char *maxstamp)
{
    col(c,
        "loaded = true, last_error = NULL, errors = 0, watermark = CASE WHEN watermark IS NULL"
        " OR watermark < $N::timestamp THEN $N::timestamp ELSE watermark END",
        2, maxstamp, maxstamp);
}

void
cat_cols_backfill_finished(cat_cols *c)
{
    col(c, "resync_fields = NULL, last_error = NULL, errors = 0", 0);
}

void
cat_cols_poll_finished(cat_cols *c, int poll_seconds, const char *settled_before)
{
    col_polled(c, poll_seconds);
    if (settled_before)
        col(c,
            "overlap_settled = CASE WHEN watermark <= $N::timestamp THEN watermark"
            " ELSE overlap_settled END",
            1, settled_before);
}

void
cat_cols_budget_spent(cat_cols *c)
{
    col(c,
        "last_error = 'daily API budget used up',"
        " next_poll_at = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval "
        "'1 day'",
        0);
}

void
cat_cols_failure(cat_cols *c, const char *error, long retry_ms)
{
    char dl[24];
    snprintf(dl, sizeof dl, "%ld", retry_ms);
    col(c,
        "last_error = $N, errors = errors + 1,"
        " next_poll_at = now() + make_interval(secs => $N::double precision / 1000)",
        2, error, dl);
}

void
cat_cols_bad_row(cat_cols *c, const char *reason)
{
    col(c, "last_error = $N", 1, reason);
}

void
cat_cols_resume(cat_cols *c)
{
    col(c, "paused = false, errors = 0, next_poll_at = NULL", 0);
}

int
cat_transition(PGconn *c, const char *schema, const char *object, const char *state_expr,
               cat_cols *cols, map_state *before, map_state *after, err_t *e)
{
    sb tmpl = SB_INIT;
    /* The row is locked first so *before is the state the CASE saw. */
    sb_printf(&tmpl,
              "WITH o AS (SELECT state AS old_state FROM %%1$s._sfbridge_mapping WHERE object_name "
              "= $1"
              " FOR UPDATE) UPDATE %%1$s._sfbridge_mapping m SET state = %s%s FROM o"
              " WHERE m.object_name = $1 RETURNING o.old_state, m.state",
              state_expr, cols ? sb_str(&cols->set) : "");
    const char *p[1 + sizeof cols->params / sizeof cols->params[0]] = {object};
    int n = 1;
    for (int i = 0; cols && i < cols->n; i++)
        p[n++] = cols->params[i];
    PGresult *r = cat_query(c, schema, sb_str(&tmpl), n, p, e);
    sb_free(&tmpl);
    cat_cols_free(cols);
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        int b = fsm_state_parse(PQgetvalue(r, 0, 0)), a = fsm_state_parse(PQgetvalue(r, 0, 1));
        if (b >= 0)
            *before = (map_state)b;
        if (a >= 0)
            *after = (map_state)a;
    }
    PQclear(r);
    return 0;
}

/* ---- progress and counters ---------------------------------------------------------- */

int
cat_load_progress(PGconn *c, const char *schema, const char *object, const char *locator,
                  int64_t rows, err_t *e)
{
    char done[24];
    snprintf(done, sizeof done, "%lld", (long long)rows);
    const char *p[] = {object, locator, done};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET load_locator = $2,"
                   " load_done = load_done + $3::bigint, rows_synced = rows_synced + $3::bigint"
                   " WHERE object_name = $1",
                   3, p, e);
}

/* One mapping's row updated by sql, with the object as $1 and n as $2. */
static int
set_count(PGconn *c, const char *schema, const char *sql, const char *object, int64_t n, err_t *e)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)n);
    const char *p[] = {object, v};
    return cat_run(c, schema, sql, 2, p, e);
}

int
cat_load_total(PGconn *c, const char *schema, const char *object, int64_t total, err_t *e)
{
    return set_count(c, schema,
                     "UPDATE %1$s._sfbridge_mapping SET load_total = $2::bigint"
                     " WHERE object_name = $1",
                     object, total, e);
}

int
cat_reload_progress(PGconn *c, const char *schema, const char *object, int64_t done, int64_t total,
                    const char *via, err_t *e)
{
    char d[24], t[24];
    snprintf(d, sizeof d, "%lld", (long long)done);
    snprintf(t, sizeof t, "%lld", (long long)total);
    const char *p[] = {object, d, t, via};
    return cat_run(c, schema,
                   via ? "UPDATE %1$s._sfbridge_mapping SET reload_done = $2::bigint,"
                         " reload_total = $3::bigint, reload_via = $4, reload_started_at = now()"
                         " WHERE object_name = $1"
                       : "UPDATE %1$s._sfbridge_mapping SET reload_done = $2::bigint"
                         " WHERE object_name = $1",
                   via ? 4 : 2, p, e);
}

int
cat_poll_soon(PGconn *c, const char *schema, const char *object, err_t *e)
{
    const char *p[] = {object};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET next_poll_at = now() + interval '1 second'"
                   " WHERE object_name = $1",
                   1, p, e);
}

int
cat_sf_rows(PGconn *c, const char *schema, const char *object, int64_t n, err_t *e)
{
    return set_count(c, schema,
                     "UPDATE %1$s._sfbridge_mapping SET sf_rows = $2::bigint, sf_rows_at = now()"
                     " WHERE object_name = $1",
                     object, n, e);
}

int
cat_drift_soon(PGconn *c, const char *schema, const char *object, err_t *e)
{
    const char *p[] = {object};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET last_drift_at = NULL WHERE object_name = $1",
                   1, p, e);
}

int
cat_drift_done(PGconn *c, const char *schema, const char *object, int64_t repairs, err_t *e)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)repairs);
    const char *p[] = {object, n};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET repairs = repairs + $2::bigint,"
                   " last_drift_at = now() WHERE object_name = $1",
                   2, p, e);
}

int
cat_watermark(PGconn *c, const char *schema, const char *object, char **wm, err_t *e)
{
    const char *p[] = {object};
    PGresult *r = cat_query(c, schema,
                            "SELECT to_char(watermark, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')"
                            " FROM %1$s._sfbridge_mapping WHERE object_name = $1",
                            1, p, e);
    if (!r)
        return -1;
    *wm = PQntuples(r) && !PQgetisnull(r, 0, 0) ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return 0;
}

int
cat_api_used(PGconn *c, const char *schema, const char *object, uint64_t calls, err_t *e)
{
    char n[24];
    snprintf(n, sizeof n, "%llu", (unsigned long long)calls);
    const char *p[] = {object, n};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET api_calls = CASE WHEN api_day = (now() AT "
                   "TIME ZONE 'UTC')::date"
                   " THEN api_calls ELSE 0 END + $2::int, api_day = (now() AT TIME ZONE "
                   "'UTC')::date"
                   " WHERE object_name = $1",
                   2, p, e);
}

void
cat_sql_poll_page(sb *out, const char *schema, const char *max_expr, const char *count_expr)
{
    sb_puts(out, ", wm AS (UPDATE ");
    pg_qname(out, schema, "_sfbridge_mapping");
    sb_printf(out,
              " SET watermark = greatest(watermark, %s), rows_synced = rows_synced + %s,"
              " last_poll_at = now() WHERE object_name = $2 RETURNING 1)",
              max_expr, count_expr);
}

void
cat_sql_load_page(sb *out, const char *schema, const char *count_expr)
{
    sb_puts(out, ", wm AS (UPDATE ");
    pg_qname(out, schema, "_sfbridge_mapping");
    sb_printf(out,
              " SET load_locator = $3, load_done = load_done + %s, rows_synced = rows_synced + %s"
              " WHERE object_name = $2 RETURNING 1)",
              count_expr, count_expr);
}

/* ---- streaming ------------------------------------------------------------------------ */

int
cat_stream_state(PGconn *c, const char *schema, const char *object, stream_state st,
                 const char *error, err_t *e)
{
    const char *p[] = {object, fsm_stream_name(st), error};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_state = $2, stream_error = $3"
                   " WHERE object_name = $1",
                   3, p, e);
}

int
cat_stream_subscribed(PGconn *c, const char *schema, const char *object, const char *channel,
                      err_t *e)
{
    const char *p[] = {object, channel, fsm_stream_name(SS_CONNECTED)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_state = $3, stream_error = NULL,"
                   " stream_channel = $2 WHERE object_name = $1",
                   3, p, e);
}

int
cat_stream_fallback_done(PGconn *c, const char *schema, const char *object, err_t *e)
{
    const char *p[] = {object, fsm_stream_name(SS_CONNECTED)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_fallbacks = stream_fallbacks + 1,"
                   " stream_state = $2 WHERE object_name = $1",
                   2, p, e);
}

int
cat_streams_connecting(PGconn *c, const char *schema, const char *error, err_t *e)
{
    const char *p[] = {error, fsm_stream_name(SS_CONNECTING)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_state = $2, stream_error = $1"
                   " WHERE sf_notify_enabled",
                   2, p, e);
}

int
cat_streams_stopped(PGconn *c, const char *schema, err_t *e)
{
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_state = NULL, stream_error = NULL"
                   " WHERE sf_notify_enabled",
                   0, NULL, e);
}

int
cat_stream_applied(PGconn *c, const char *schema, const char *object, int64_t replay_id,
                   int64_t lag_ms, int64_t events, err_t *e)
{
    char rid[24], lag[24], n[24];
    snprintf(rid, sizeof rid, "%lld", (long long)replay_id);
    snprintf(lag, sizeof lag, "%lld", (long long)lag_ms);
    snprintf(n, sizeof n, "%lld", (long long)events);
    const char *p[] = {object, rid, lag, n};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET"
                   " replay_id = CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE replay_id END,"
                   " stream_lag_ms = $3::int, stream_events = stream_events + $4::bigint,"
                   " last_event_at = now() WHERE object_name = $1",
                   4, p, e);
}

int
cat_stream_forget(PGconn *c, const char *schema, const char *object, err_t *e)
{
    const char *p[] = {object};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET stream_channel = NULL, replay_id = NULL,"
                   " stream_state = NULL WHERE object_name = $1",
                   1, p, e);
}
