/*
 * status: what sfbridge is doing, from the catalog, for people and scripts.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsm.h"
#include "locks.h"
#include "log.h"
#include "pg.h"
#include "sb.h"
#include "tlog.h"
#include "util.h"

/* One query gives everything `status` shows; the JSON form is built by
 * Postgres so text and JSON agree. */
static const char status_sql[] =
    "SELECT json_build_object("
    " 'schema', $1::text,"
    " 'connection', (SELECT json_build_object('org_id', org_id, 'instance_url', instance_url,"
    "   'api_version', api_version, 'state', CASE WHEN paused THEN $2::text ELSE state END,"
    "   'last_error', last_error, 'daemon_pid', daemon_pid, 'daemon_host', daemon_host,"
    "   'daemon_alive', heartbeat_at > now() - interval '30 seconds',"
    "   'heartbeat_at', heartbeat_at) FROM %1$s._sfbridge_connection),"
    " 'writer', %2$s," /* the trigger log's counts: tlog_sql_status */
    " 'notifications', (SELECT json_build_object('unacknowledged', count(*),"
    "   'last', (SELECT message FROM %1$s._sfbridge_notifications WHERE acknowledged_at IS NULL"
    "     ORDER BY id DESC LIMIT 1))"
    "   FROM %1$s._sfbridge_notifications WHERE acknowledged_at IS NULL),"
    " 'mappings', coalesce((SELECT json_agg(json_build_object("
    "   'object_name', object_name, 'table_name', table_name, 'access', access,"
    "   'state', CASE WHEN paused THEN $3::text ELSE state END, 'paused', paused, 'loaded', loaded,"
    "   'sf_polling_seconds', sf_polling_seconds, 'sf_notify_enabled', sf_notify_enabled,"
    "   'watermark', watermark, 'last_poll_at', last_poll_at, 'next_poll_at', next_poll_at,"
    "   'last_drift_at', last_drift_at, 'rows_synced', rows_synced, 'repairs', repairs,"
    "   'polls', polls, 'sf_rows', sf_rows, 'sf_rows_at', sf_rows_at, 'upsert_field', upsert_field,"
    "   'writes', %3$s," /* this table's trigger log counts: tlog_sql_table_status */
    /* how far behind Salesforce it may be: a stream's last delay, else the last poll's age */
    "   'lag_seconds', CASE WHEN sf_notify_enabled AND stream_lag_ms IS NOT NULL"
    "     THEN round(stream_lag_ms / 1000.0, 3)"
    "     ELSE round(extract(epoch FROM now() - last_poll_at)::numeric, 3) END,"
    /* The table's rows, counted (estimated from pg_class above 100,000, as Heroku Connect
     * does); query_to_xml runs the count on a table named by the row, in plain SQL. */
    "   'rows', (SELECT CASE WHEN pc.reltuples >= 100000 THEN pc.reltuples::bigint ELSE"
    "     (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I',"
    "       $1::text, table_name), false, true, '')))[1]::text::bigint END"
    "     FROM pg_class pc WHERE pc.oid = to_regclass(format('%I.%I', $1::text, table_name))),"
    "   'rows_estimated', (SELECT pc.reltuples >= 100000 FROM pg_class pc"
    "     WHERE pc.oid = to_regclass(format('%I.%I', $1::text, table_name))),"
    "   'errors', errors, 'last_error', last_error,"
    "   'api_calls_today', CASE WHEN api_day = (now() AT TIME ZONE 'UTC')::date THEN api_calls "
    "ELSE 0 END,"
    "   'sf_max_daily_api_calls', sf_max_daily_api_calls,"
    "   'stream', CASE WHEN sf_notify_enabled THEN json_build_object('state', "
    "coalesce(stream_state, $5::text),"
    "     'channel', stream_channel, 'replay_id', replay_id, 'last_event_at', last_event_at, "
    "'events', stream_events,"
    "     'fallbacks', stream_fallbacks, 'lag_ms', stream_lag_ms, 'error', stream_error) END,"
    /* A reload's progress is its own (reload_*), never the numbers of the load before it;
     * started_at stays null until it starts. */
    "   'load', CASE WHEN state = $4::text AND loaded THEN json_build_object('reload', true,"
    "     'done', reload_done, 'total', reload_total, 'via', reload_via,"
    "     'started_at', reload_started_at,"
    "     'rows_per_second', CASE WHEN reload_started_at < now() THEN"
    "        round(reload_done / extract(epoch FROM now() - reload_started_at)) END,"
    "     'eta_seconds', CASE WHEN reload_done > 0 AND reload_total > reload_done THEN"
    "        round((reload_total - reload_done) * extract(epoch FROM now() - reload_started_at)"
    "        / reload_done) END)"
    "   WHEN NOT loaded THEN json_build_object("
    "     'done', load_done, 'total', load_total, 'via', CASE WHEN load_job IS NULL THEN 'rest' "
    "ELSE 'bulk' END,"
    "     'started_at', load_started_at,"
    "     'rows_per_second', CASE WHEN load_started_at < now() THEN"
    "        round(load_done / extract(epoch FROM now() - load_started_at)) END,"
    "     'eta_seconds', CASE WHEN load_done > 0 AND load_total > load_done THEN"
    "        round((load_total - load_done) * extract(epoch FROM now() - load_started_at) / "
    "load_done) END)"
    "   END) ORDER BY object_name) FROM "
    /* The catalog's rows through JSON: a column an older sfbridge's catalog lacks (the
     * ones catalog.c adds with ADD COLUMN IF NOT EXISTS, until the new daemon or a set-up
     * command runs) reads as null, so status works during an upgrade. */
    "   jsonb_to_recordset((SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]')"
    "     FROM %1$s._sfbridge_mapping c)) AS _sfbridge_mapping(object_name text,"
    "     table_name text, access text, state text, paused boolean, loaded boolean,"
    "     sf_polling_seconds integer, sf_notify_enabled boolean, sf_max_daily_api_calls integer,"
    "     upsert_field text, watermark timestamp, last_poll_at timestamptz,"
    "     next_poll_at timestamptz, last_drift_at timestamptz, rows_synced bigint, repairs bigint,"
    "     errors integer, last_error text, api_day date, api_calls integer,"
    "     load_job text, load_done bigint, load_total bigint, load_started_at timestamptz,"
    "     polls bigint, sf_rows bigint, sf_rows_at timestamptz, replay_id bigint,"
    "     stream_state text, stream_channel text, stream_events bigint, stream_fallbacks integer,"
    "     last_event_at timestamptz, stream_lag_ms integer, stream_error text,"
    "     reload_done bigint, reload_total bigint, reload_via text,"
    "     reload_started_at timestamptz)), '[]'::json))";

static char *
status_query(const char *schema)
{
    sb q = SB_INIT, s = SB_INIT;
    sb_sql_ident(&q, schema);
    for (const char *p = status_sql; *p; p++) {
        if (strncmp(p, "%1$s", 4) == 0) {
            sb_puts(&s, sb_str(&q));
            p += 3;
        } else if (strncmp(p, "%2$s", 4) == 0) {
            tlog_sql_status(&s, sb_str(&q));
            p += 3;
        } else if (strncmp(p, "%3$s", 4) == 0) {
            tlog_sql_table_status(&s, sb_str(&q), "_sfbridge_mapping.table_name");
            p += 3;
        } else {
            sb_putc(&s, *p);
        }
    }
    sb_free(&q);
    return sb_steal(&s);
}

static const char *
jstr(json_t *o, const char *k, const char *def)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : def;
}

static void
short_time(const char *iso, char out[24])
{
    /* "2026-11-23T21:58:01.123+00:00" -> "21:58:01" */
    const char *t = iso ? strchr(iso, 'T') : NULL;
    snprintf(out, 24, "%.8s", t ? t + 1 : "-");
}

/* "load 1200/5000 rows via bulk, 800 rows/s, ETA 5 s": only what is known. A
 * reload says so, and that readers see the old rows meanwhile. */
static void
load_detail(json_t *ld, char *out, size_t n)
{
    bool reload = json_is_true(json_object_get(ld, "reload"));
    if (reload && json_is_null(json_object_get(ld, "started_at"))) {
        snprintf(out, n, "reload waiting to start (readers see the old rows until it is done)");
        return;
    }
    json_t *total = json_object_get(ld, "total"), *rate = json_object_get(ld, "rows_per_second"),
           *eta = json_object_get(ld, "eta_seconds");
    size_t k = (size_t)snprintf(out, n, "%s %lld", reload ? "reload" : "load",
                                (long long)json_integer_value(json_object_get(ld, "done")));
    if (json_is_integer(total) && k < n)
        k += (size_t)snprintf(out + k, n - k, "/%lld", (long long)json_integer_value(total));
    if (k < n)
        k += (size_t)snprintf(out + k, n - k, " rows via %s", jstr(ld, "via", "?"));
    if (json_is_number(rate) && json_number_value(rate) > 0 && k < n)
        k += (size_t)snprintf(out + k, n - k, ", %.0f rows/s", json_number_value(rate));
    if (json_is_number(eta) && k < n)
        k += (size_t)snprintf(out + k, n - k, ", ETA %.0f s", json_number_value(eta));
    if (reload && k < n)
        snprintf(out + k, n - k, " (readers see the old rows until it is done)");
}

static bool
state_is(json_t *o, const char *key, const char *name)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && strcmp(v, name) == 0;
}

static void reason(json_t *reasons, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reason(json_t *reasons, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(reasons, json_string(buf));
}

/* A mapping's part of the verdict: its state, its stream. */
static status_health
mapping_health(json_t *m, json_t *reasons)
{
    const char *obj = jstr(m, "object_name", "?");
    static const map_state bad[] = {MS_BAD_CONFIG, MS_NEED_AUTHENTICATION, MS_RETRYING};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (state_is(m, "state", fsm_state_name(bad[i]))) {
            reason(reasons, "%s is %s: %s", obj, fsm_state_name(bad[i]),
                   jstr(m, "last_error", "no reason recorded"));
            return STATUS_DEGRADED;
        }
    json_t *st = json_object_get(m, "stream");
    if (state_is(st, "state", fsm_stream_name(SS_FAILED)) ||
        state_is(st, "state", fsm_stream_name(SS_FALLBACK))) {
        reason(reasons, "%s: stream %s%s%s", obj, jstr(st, "state", "?"),
               json_string_value(json_object_get(st, "error")) ? ": " : "", jstr(st, "error", ""));
        return STATUS_DEGRADED;
    }
    return STATUS_HEALTHY;
}

status_health
status_health_of(json_t *st, json_t *reasons)
{
    status_health h = STATUS_HEALTHY;
    json_t *c = json_object_get(st, "connection");
    if (!json_is_object(c)) {
        reason(reasons, "no Salesforce org recorded (run sfbridge init)");
        return STATUS_DOWN;
    }
    if (!json_is_true(json_object_get(c, "daemon_alive"))) {
        reason(reasons, "the daemon is not running (sfbridge run)");
        h = STATUS_DOWN;
    }
    if (state_is(c, "state", fsm_conn_name(CS_OFFLINE)) ||
        state_is(c, "state", fsm_conn_name(CS_NEED_AUTHENTICATION))) {
        reason(reasons, "connection %s: %s", jstr(c, "state", "?"),
               jstr(c, "last_error", "no reason recorded"));
        h = STATUS_DOWN;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(st, "mappings"), i, m) {
        status_health mh = mapping_health(m, reasons);
        if (mh > h)
            h = mh;
    }
    json_t *w = json_object_get(st, "writer");
    json_int_t failed = json_integer_value(json_object_get(w, "failed"));
    json_int_t retrying = json_integer_value(json_object_get(w, "retrying"));
    if (failed || retrying) {
        if (failed)
            reason(reasons, "%lld failed writes (fix the rows, then sfbridge retry)",
                   (long long)failed);
        if (retrying)
            reason(reasons, "%lld writes waiting to retry", (long long)retrying);
        if (h < STATUS_DEGRADED)
            h = STATUS_DEGRADED;
    }
    return h;
}

const char *
status_health_name(status_health h)
{
    return h == STATUS_HEALTHY ? "healthy" : h == STATUS_DEGRADED ? "degraded" : "down";
}

json_t *
status_json(app *a, err_t *e)
{
    if (!app_pg_read(a, e))
        return NULL;
    char *sql = status_query(a->cfg.schema);
    /* The names of states that are shown but not stored, and RELOAD_TABLE, from fsm. */
    const char *p[] = {a->cfg.schema, fsm_conn_name(CS_PAUSED), fsm_state_name(MS_PAUSED),
                       fsm_state_name(MS_RELOAD_TABLE), fsm_stream_name(SS_OFF)};
    /* Shared with other readers, exclusive with cat_ensure's DDL (locks.h). */
    PGresult *r = NULL;
    if (pg_exec(a->pg, e, "BEGIN") == 0 &&
        pg_exec(a->pg, e, "SELECT pg_advisory_xact_lock_shared(" LOCK_DDL ")") == 0)
        r = pg_query(a->pg, e, sql, 5, p);
    free(sql);
    if (!r) {
        pg_rollback_quietly(a->pg);
        return NULL;
    }
    if (pg_exec(a->pg, e, "COMMIT") != 0) {
        PQclear(r);
        return NULL;
    }
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!j) {
        err_set(e, 500, "BAD_CATALOG", "status could not be read");
        return NULL;
    }
    json_t *reasons = json_array();
    status_health h = status_health_of(j, reasons);
    json_object_set_new(j, "health",
                        json_pack("{s:s, s:o}", "status", status_health_name(h), "reasons",
                                  reasons));
    return j;
}

int
status_print(app *a, bool as_json, FILE *out, status_health *health, err_t *e)
{
    json_t *j = status_json(a, e);
    if (!j)
        return -1;
    json_t *hj = json_object_get(j, "health");
    const char *hname = jstr(hj, "status", "down");
    *health = strcmp(hname, "healthy") == 0    ? STATUS_HEALTHY
              : strcmp(hname, "degraded") == 0 ? STATUS_DEGRADED
                                               : STATUS_DOWN;
    if (as_json) {
        char *txt = json_dumps(j, JSON_COMPACT);
        fprintf(out, "%s\n", txt);
        free(txt);
        json_decref(j);
        return 0;
    }
    json_t *c = json_object_get(j, "connection");
    fprintf(out, "connection: %s  org %s  API v%s  schema %s\n", jstr(c, "state", "?"),
            jstr(c, "org_id", "(not connected)"), jstr(c, "api_version", "?"), a->cfg.schema);
    if (json_is_true(json_object_get(c, "daemon_alive")))
        fprintf(out, "daemon:     running (pid %lld on %s)\n",
                (long long)json_integer_value(json_object_get(c, "daemon_pid")),
                jstr(c, "daemon_host", "?"));
    else
        fprintf(out, "daemon:     not running (start it with: sfbridge run)\n");
    if (json_string_value(json_object_get(c, "last_error")))
        fprintf(out, "last error: %s\n", jstr(c, "last_error", ""));
    fprintf(out, "health:     %s", hname);
    size_t k;
    json_t *rs;
    json_array_foreach(json_object_get(hj, "reasons"), k, rs)
        fprintf(out, "%s%s", k ? "; " : " (", json_string_value(rs));
    fprintf(out, "%s\n", json_array_size(json_object_get(hj, "reasons")) ? ")" : "");
    json_t *nt = json_object_get(j, "notifications");
    if (json_integer_value(json_object_get(nt, "unacknowledged")))
        fprintf(out, "notices:    %lld unacknowledged, last: %s (sfbridge notifications)\n",
                (long long)json_integer_value(json_object_get(nt, "unacknowledged")),
                jstr(nt, "last", ""));
    json_t *wr = json_object_get(j, "writer");
    fprintf(out, "writes:     %lld waiting (%lld retrying), %lld failed%s%s\n",
            (long long)json_integer_value(json_object_get(wr, "pending")),
            (long long)json_integer_value(json_object_get(wr, "retrying")),
            (long long)json_integer_value(json_object_get(wr, "failed")),
            json_string_value(json_object_get(wr, "last_error")) ? "; last: " : "",
            jstr(wr, "last_error", ""));
    fprintf(out, "\n%-24s %-20s %-10s %12s %12s %9s %9s %8s  %s\n", "OBJECT", "STATE", "ACCESS",
            "ROWS", "SF ROWS", "LAST POLL", "NEXT POLL", "API/DAY", "DETAIL");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "mappings"), i, m) {
        char last[24], next[24], detail[256] = "";
        short_time(jstr(m, "last_poll_at", NULL), last);
        short_time(jstr(m, "next_poll_at", NULL), next);
        json_t *ld = json_object_get(m, "load");
        bool bad = strcmp(jstr(m, "state", ""), fsm_state_name(MS_BAD_CONFIG)) == 0;
        if (bad && json_string_value(json_object_get(m, "last_error"))) {
            /* Why it stopped comes before anything else. */
            snprintf(detail, sizeof detail, "%s", jstr(m, "last_error", ""));
        } else if (json_is_object(ld)) {
            load_detail(ld, detail, sizeof detail);
        } else if (json_is_object(json_object_get(m, "stream"))) {
            json_t *st = json_object_get(m, "stream");
            snprintf(detail, sizeof detail,
                     "stream %s, %lld events, lag %lld ms, %lld fallbacks%s%s",
                     jstr(st, "state", "?"),
                     (long long)json_integer_value(json_object_get(st, "events")),
                     (long long)json_integer_value(json_object_get(st, "lag_ms")),
                     (long long)json_integer_value(json_object_get(st, "fallbacks")),
                     json_string_value(json_object_get(st, "error")) ? "; " : "",
                     jstr(st, "error", ""));
        } else if (json_string_value(json_object_get(m, "last_error"))) {
            snprintf(detail, sizeof detail, "%s", jstr(m, "last_error", ""));
        } else {
            snprintf(detail, sizeof detail, "watermark %s", jstr(m, "watermark", "-"));
        }
        char rows[24];
        snprintf(rows, sizeof rows, "%s%lld",
                 json_is_true(json_object_get(m, "rows_estimated")) ? "~" : "",
                 (long long)json_integer_value(json_object_get(m, "rows")));
        char sfrows[24] = "-";
        if (json_is_integer(json_object_get(m, "sf_rows")))
            snprintf(sfrows, sizeof sfrows, "%lld",
                     (long long)json_integer_value(json_object_get(m, "sf_rows")));
        fprintf(out, "%-24s %-20s %-10s %12s %12s %9s %9s %8lld  %s\n", jstr(m, "object_name", "?"),
                jstr(m, "state", "?"), jstr(m, "access", "?"), rows, sfrows, last, next,
                (long long)json_integer_value(json_object_get(m, "api_calls_today")), detail);
    }
    if (json_array_size(json_object_get(j, "mappings")) == 0)
        fprintf(out, "(no mappings: add one with sfbridge mapping add OBJECT)\n");
    json_decref(j);
    return 0;
}

/* One frame: "Object [####......] done/total rows  N rows/s  ETA 3 s", or
 * for the last "... done/total rows in 2.1 s (N rows/s)". The rate only once
 * half a second has passed, so the first frame never says "0 rows/s". */
static void
draw(status_bar *b, bool last)
{
    int64_t now = util_mono_ms(), done = b->done, total = b->total;
    double secs = (double)(now - b->started_ms) / 1000.0;
    double rate = secs >= 0.5 && done > b->start_done ? (double)(done - b->start_done) / secs : 0;
    char bar[31];
    int fill = total > 0 ? (int)(30 * (done > total ? total : done) / total) : last ? 30 : 0;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    char tail[64] = "";
    if (last && rate > 0)
        snprintf(tail, sizeof tail, " in %.1f s (%.0f rows/s)", secs, rate);
    else if (last)
        snprintf(tail, sizeof tail, " in %.1f s", secs);
    else if (rate > 0 && total > done)
        snprintf(tail, sizeof tail, "  %.0f rows/s  ETA %.0f s", rate,
                 (double)(total - done) / rate);
    else if (rate > 0)
        snprintf(tail, sizeof tail, "  %.0f rows/s", rate);
    char line[256];
    snprintf(line, sizeof line, "%-20s [%s] %lld/%lld rows%s", b->object, bar, (long long)done,
             (long long)(total < 0 ? done : total), tail);
    log_status(line);
    b->last_ms = now;
    if (last) {
        log_status_end();
        b->object[0] = '\0';
    }
}

void
status_progress(void *ctx, const mapping *m, int64_t done, int64_t total)
{
    status_bar *b = ctx;
    int64_t now = util_mono_ms();
    if (strcmp(b->object, m->object) != 0) {
        status_bar_finish(b);
        snprintf(b->object, sizeof b->object, "%s", m->object);
        b->started_ms = now;
        b->start_done = done;
        b->last_ms = 0;
    }
    b->done = done;
    b->total = total;
    bool last = total >= 0 && done >= total;
    /* A terminal redraws ten times a second; a pipe or file gets a line every
     * 2 s, and always the first and the last. */
    if (last || b->last_ms == 0 || now - b->last_ms >= (log_is_tty() ? 100 : 2000))
        draw(b, last);
}

void
status_bar_finish(status_bar *b)
{
    if (b->object[0])
        draw(b, true);
}
