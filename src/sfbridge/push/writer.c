/*
 * writer: Postgres -> Salesforce (see writer.h).
 *
 * One pass: archive what is finished, claim a batch of due NEW entries
 * (never one whose record has an earlier entry in flight or waiting for a
 * retry), fold each record's entries into one operation, send the operations
 * in collections of 200 (inserts and upserts parents first, then updates, then
 * deletes), and record every outcome in one transaction per collection, on a
 * second connection and thread while the next collection is being sent.
 * Finished entries go straight to the archive; the rows' new sfid and status
 * are written only where no app holds a lock (the rest one by one after the
 * commit), so the writer never takes part in a deadlock with an app.
 */
#include "writer.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <jansson.h>

#include "capture.h"
#include "csv.h"
#include "catalog.h"
#include "log.h"
#include "pg.h"
#include "sb.h"
#include "sfapi.h"
#include "util.h"

#define CLAIM_MAX      10000
#define COLLECTION_MAX 200
#define SWEEP_MS       5000
#define LOOKUP_SKEW_S  120
#define BULK_JOB_MAX   10000

struct writer {
    const cfg             *cfg;
    volatile sig_atomic_t *stop;
    PGconn                *pg;
    PGconn                *pg2; /* records one collection's outcome while the next is sent */
    sfapi                 *sf;
    mapping               *ms;
    size_t                 nms;
    pthread_t              thread;
    bool                   started;
    int64_t                last_prune_ms;
    char                   qlog[160];  /* "schema"._trigger_log */
    char                   qarch[160]; /* "schema"._trigger_log_archive */
};

typedef struct entry {
    int64_t id;
    int     record_id;
    char    action; /* I, U, D */
    char   *sfid;
    bool    unknown;
    int     attempts;
    char    sent_at[40];
    json_t *payload; /* what an earlier attempt sent (unknown inserts) */
    json_t *vals;    /* typed values by column */
    size_t  map;     /* index in w->ms */
} entry;

typedef enum { OUT_NONE, OUT_OK, OUT_FAILED, OUT_RETRY, OUT_DROPPED } outcome;

typedef struct op {
    size_t   map;
    int      record_id;
    char     kind; /* I insert, A upsert, U update, D delete, X nothing to send */
    char    *sfid;
    json_t  *rec;
    int64_t *ids; /* folded entries, the survivor last */
    size_t   nids;
    bool     unknown;
    int      attempts;
    char     sent_at[40];
    bool     row_exists;
    json_t  *sent;  /* what an earlier attempt with an unknown outcome sent */
    json_t  *vals;  /* the folded column values */
    long     retry_ms; /* when set, the retry delay instead of the backoff */
    outcome  out;
    char    *new_sfid;
    char     lastop[16];
    char    *err_json; /* _hc_err */
    char    *msg;      /* sf_message */
} op;

/* ---- small helpers --------------------------------------------------------- */

static void
arr_text(sb *out, const char *const *v, size_t n)
{
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(out, ',');
        if (!v[i]) {
            sb_puts(out, "NULL");
            continue;
        }
        sb_putc(out, '"');
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                sb_putc(out, '\\');
            sb_putc(out, *p);
        }
        sb_putc(out, '"');
    }
    sb_putc(out, '}');
}

static void
arr_i64(sb *out, const int64_t *v, size_t n)
{
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(out, ',');
        sb_put_i64(out, v[i]);
    }
    sb_putc(out, '}');
}

static mapping *
map_by_table(writer *w, const char *table, size_t *idx)
{
    for (size_t i = 0; i < w->nms; i++)
        if (strcmp(w->ms[i].table, table) == 0) {
            if (idx)
                *idx = i;
            return &w->ms[i];
        }
    return NULL;
}

static const map_field *
field_by_column(const mapping *m, const char *col)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].column, col) == 0)
            return &m->fields[i];
    return NULL;
}

static long
backoff_ms(const writer *w, int attempts)
{
    long cap = w->cfg->backoff_cap_ms, d = 500;
    for (int i = 0; i < attempts && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    uint32_t r;
    util_random(&r, sizeof r);
    return d / 2 + (long)(r % (uint32_t)(d / 2 + 1));
}

static void
op_free(op *o)
{
    free(o->sfid);
    json_decref(o->rec);
    json_decref(o->sent);
    json_decref(o->vals);
    free(o->ids);
    free(o->new_sfid);
    free(o->err_json);
    free(o->msg);
}

static void
entry_free(entry *e)
{
    free(e->sfid);
    json_decref(e->payload);
    json_decref(e->vals);
}

/* ---- connections --------------------------------------------------------- */

static int
w_pg(writer *w, err_t *e)
{
    if (w->pg && !pg_connection_lost(w->pg))
        return 0;
    bool reconnect = w->pg != NULL;
    if (w->pg)
        PQfinish(w->pg);
    w->pg = pg_connect(w->cfg->database_url, e);
    if (!w->pg)
        return -1;
    /* What this writer had in flight when the connection went has an unknown outcome. */
    if (reconnect && writer_recover(w->pg, w->cfg->schema, e) != 0)
        return -1;
    sb chan = SB_INIT, sql = SB_INIT;
    cap_channel(&chan, w->cfg->schema);
    /* jit off: the writer's statements are short; compiling them costs more
     * than it saves (hundreds of ms on a large claim). */
    sb_puts(&sql, "SET sfbridge.raw = 'on'; SET jit = off; LISTEN ");
    sb_sql_ident(&sql, sb_str(&chan));
    int rc = pg_exec(w->pg, e, sb_str(&sql));
    sb_free(&chan);
    sb_free(&sql);
    return rc;
}

int
writer_recover(void *pgconn, const char *schema, err_t *e)
{
    sb q = SB_INIT, sql = SB_INIT;
    pg_qname(&q, schema, "_trigger_log");
    /* Only an insert that was sent (its payload is remembered before sending) can have happened. */
    sb_printf(&sql, "UPDATE %s SET state = 'NEW', sfb_unknown = sfb_unknown OR (action = 'INSERT' AND sfb_payload IS NOT NULL),"
                    " sfb_retry_at = NULL WHERE state = 'PENDING'", sb_str(&q));
    int rc = pg_exec(pgconn, e, sb_str(&sql));
    sb_free(&q);
    sb_free(&sql);
    return rc;
}

/* The second connection, for recording outcomes in the background. */
static PGconn *
w_pg2(writer *w)
{
    if (w->pg2 && !pg_connection_lost(w->pg2))
        return w->pg2;
    if (w->pg2)
        PQfinish(w->pg2);
    err_t e;
    err_clear(&e);
    w->pg2 = pg_connect(w->cfg->database_url, &e);
    if (w->pg2 && pg_exec(w->pg2, &e, "SET sfbridge.raw = 'on'; SET jit = off") != 0) {
        PQfinish(w->pg2);
        w->pg2 = NULL;
    }
    if (!w->pg2)
        log_debug("writer: no second connection (%s); recording in line", e.msg);
    return w->pg2;
}

static int
w_sf(writer *w, err_t *e)
{
    if (!w->sf) {
        sfapi_config sc = {
            .login_url = w->cfg->login_url, .client_id = w->cfg->client_id,
            .client_secret = w->cfg->client_secret, .username = w->cfg->username,
            .password = w->cfg->password, .refresh_token = w->cfg->refresh_token,
            .api_version = w->cfg->api_version,
            .max_retries = 0, /* the writer decides what may be sent again */
        };
        w->sf = sfapi_new(&sc);
    }
    if (*sfapi_instance_url(w->sf))
        return 0;
    return sfapi_login(w->sf, e);
}

writer *
writer_new(const cfg *c, volatile sig_atomic_t *stop)
{
    writer *w = xcalloc(1, sizeof *w);
    w->cfg = c;
    w->stop = stop;
    sb q = SB_INIT;
    pg_qname(&q, c->schema, "_trigger_log");
    snprintf(w->qlog, sizeof w->qlog, "%s", sb_str(&q));
    sb_clear(&q);
    pg_qname(&q, c->schema, "_trigger_log_archive");
    snprintf(w->qarch, sizeof w->qarch, "%s", sb_str(&q));
    sb_free(&q);
    return w;
}

void
writer_free(writer *w)
{
    if (!w)
        return;
    if (w->pg)
        PQfinish(w->pg);
    if (w->pg2)
        PQfinish(w->pg2);
    if (w->sf)
        sfapi_free(w->sf);
    mapping_free_all(w->ms, w->nms);
    free(w);
}

/* ---- housekeeping ----------------------------------------------------------- */

#define LOG_COLS "id, txid, created_at, updated_at, processed_at, processed_tx, state, action, table_name, " \
                 "record_id, sfid, old, values, sf_result, sf_message, sfb_attempts, sfb_retry_at, "     \
                 "sfb_unknown, sfb_sent_at, sfb_payload"

static int
housekeeping(writer *w, err_t *e)
{
    sb s = SB_INIT;
    /* Heroku Connect's requeue states. */
    sb_printf(&s, "UPDATE %s SET state = 'NEW', sfb_retry_at = NULL, sfb_attempts = 0 WHERE state = 'REQUEUE';", w->qlog);
    sb_printf(&s, "WITH a AS (UPDATE %s SET state = 'REQUEUED' WHERE state = 'REQUEUE' RETURNING *)"
                  " INSERT INTO %s (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, values)"
                  " SELECT txid, created_at, now(), 'NEW', action, table_name, record_id, sfid, old, values FROM a ORDER BY id;",
              w->qarch, w->qlog);
    /* Finished entries move to the archive. */
    sb_printf(&s, "WITH moved AS (DELETE FROM %s WHERE state IN ('SUCCESS', 'MERGED', 'IGNORE', 'IGNORED', 'READONLY')"
                  " OR (state = 'FAILED' AND processed_at < now() - interval '1 day') RETURNING *)"
                  " INSERT INTO %s (" LOG_COLS ") SELECT id, txid, created_at, updated_at,"
                  " coalesce(processed_at, now()), processed_tx,"
                  " CASE state WHEN 'IGNORE' THEN 'IGNORED' ELSE state END, action, table_name, record_id, sfid,"
                  " old, values, sf_result, sf_message, sfb_attempts, sfb_retry_at, sfb_unknown, sfb_sent_at, sfb_payload"
                  " FROM moved ON CONFLICT (id) DO NOTHING",
              w->qlog, w->qarch);
    int rc = pg_exec(w->pg, e, sb_str(&s));
    int64_t now = util_now_ms();
    if (rc == 0 && now - w->last_prune_ms > 3600 * 1000) {
        sb_clear(&s);
        sb_printf(&s, "DELETE FROM %s WHERE created_at < now() - make_interval(days => %ld)", w->qarch,
                  w->cfg->archive_days);
        rc = pg_exec(w->pg, e, sb_str(&s));
        w->last_prune_ms = now;
    }
    sb_free(&s);
    return rc;
}

/* ---- claiming and folding ------------------------------------------------------- */

static int
cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->map != y->map)
        return x->map < y->map ? -1 : 1;
    if (x->record_id != y->record_id)
        return x->record_id < y->record_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
claim(writer *w, entry **out, size_t *n, err_t *e)
{
    sb s = SB_INIT;
    /* The records that must wait (an entry in flight or waiting out a retry:
     * usually none, both found by small indexes), then the oldest due entries
     * in id order straight from the (state, id) index, stopping at the limit:
     * the cost does not grow with the backlog, whatever the statistics say. */
    sb_printf(&s,
              "WITH blocked AS MATERIALIZED (SELECT table_name, record_id FROM %1$s WHERE state = 'PENDING'"
              "   UNION SELECT table_name, record_id FROM %1$s"
              "   WHERE state = 'NEW' AND sfb_retry_at IS NOT NULL AND sfb_retry_at > now()),"
              " c AS (SELECT l.id FROM %1$s l WHERE l.state = 'NEW'"
              " AND (l.sfb_retry_at IS NULL OR l.sfb_retry_at <= now())"
              " AND (NOT EXISTS (SELECT 1 FROM blocked) OR NOT EXISTS (SELECT 1 FROM blocked b"
              "   WHERE b.table_name = l.table_name AND b.record_id = l.record_id))"
              " ORDER BY l.id LIMIT %2$d FOR UPDATE OF l SKIP LOCKED)"
              " UPDATE %1$s t SET state = 'PENDING', updated_at = now() WHERE t.id = ANY(ARRAY(SELECT id FROM c))"
              " RETURNING t.id, t.table_name, t.record_id, t.action, t.sfid, t.sfb_unknown, t.sfb_attempts,"
              " t.sfb_payload::text,"
              " to_char(coalesce(t.sfb_sent_at, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
              w->qlog, CLAIM_MAX);
    PGresult *r = pg_query(w->pg, e, sb_str(&s), 0, NULL);
    sb_free(&s);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    entry *es = xcalloc(rows ? (size_t)rows : 1, sizeof *es);
    size_t k = 0;
    sb orphan = SB_INIT;
    for (int i = 0; i < rows; i++) {
        size_t mi;
        int64_t id = atoll(PQgetvalue(r, i, 0));
        if (!map_by_table(w, PQgetvalue(r, i, 1), &mi)) {
            /* The mapping is gone: nothing to send the change to. */
            sb_printf(&orphan, "%s%lld", orphan.len ? "," : "", (long long)id);
            continue;
        }
        entry *en = &es[k++];
        en->id = id;
        en->map = mi;
        en->record_id = atoi(PQgetvalue(r, i, 2));
        en->action = PQgetvalue(r, i, 3)[0];
        en->sfid = PQgetisnull(r, i, 4) ? NULL : xstrdup(PQgetvalue(r, i, 4));
        en->unknown = PQgetvalue(r, i, 5)[0] == 't';
        en->attempts = atoi(PQgetvalue(r, i, 6));
        en->payload = PQgetisnull(r, i, 7) ? NULL : json_loads(PQgetvalue(r, i, 7), 0, NULL);
        snprintf(en->sent_at, sizeof en->sent_at, "%s", PQgetvalue(r, i, 8));
    }
    PQclear(r);
    if (orphan.len) {
        sb q = SB_INIT;
        sb_printf(&q, "UPDATE %s SET state = 'IGNORED', sf_message = 'the mapping was removed',"
                      " processed_at = now() WHERE id IN (%s)", w->qlog, sb_str(&orphan));
        pg_exec(w->pg, NULL, sb_str(&q));
        sb_free(&q);
    }
    sb_free(&orphan);
    qsort(es, k, sizeof *es, cmp_entry);
    *out = es;
    *n = k;
    return 0;
}

static int
cmp_entry_id(const void *a, const void *b)
{
    const entry *const *x = a, *const *y = b;
    return (*x)->id < (*y)->id ? -1 : (*x)->id > (*y)->id;
}

/* Typed values of each entry, and each record's current row, for one mapping. */
typedef struct rowinfo {
    int     record_id;
    char   *sfid;
    json_t *row; /* the whole current row */
} rowinfo;

/* A value from the trigger log's hstore (text, as Postgres printed it with
 * the capture function's DateStyle ISO) typed by its column: booleans and
 * numbers become JSON ones, timestamps ISO 8601. Text that does not parse
 * stays text (Salesforce then refuses it for that record alone). */
static json_t *
typed_value(const map_field *f, json_t *v)
{
    const char *s = json_string_value(v);
    const char *t = f ? f->pgtype : NULL;
    if (!s || !t)
        return json_incref(v);
    if (strcmp(t, "boolean") == 0) {
        if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0)
            return json_true();
        if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0)
            return json_false();
        return json_incref(v);
    }
    if (strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0 || strcmp(t, "smallint") == 0 ||
        strcmp(t, "double precision") == 0 || strcmp(t, "real") == 0 || strncmp(t, "numeric", 7) == 0) {
        char *end = NULL;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (*s && end && *end == '\0' && errno == 0)
            return json_integer(i);
        errno = 0;
        double d = strtod(s, &end);
        if (*s && end && *end == '\0' && errno == 0 && isfinite(d))
            return json_real(d);
        return json_incref(v);
    }
    if (strncmp(t, "timestamp", 9) == 0) {
        char buf[64];
        size_t n = strlen(s);
        if (n < 11 || n >= sizeof buf - 4 || s[10] != ' ')
            return json_incref(v);
        memcpy(buf, s, n + 1);
        buf[10] = 'T';
        /* "+05" (an offset without minutes) -> "+05:00" */
        if (n > 3 && (buf[n - 3] == '+' || buf[n - 3] == '-') && buf[n - 2] >= '0' && buf[n - 1] >= '0' &&
            buf[n - 2] <= '9' && buf[n - 1] <= '9')
            memcpy(buf + n, ":00", 4);
        return json_string(buf);
    }
    return json_incref(v);
}

static json_t *
typed_values(const mapping *m, json_t *raw)
{
    if (!json_is_object(raw))
        return raw;
    const char *col;
    json_t *v;
    json_object_foreach(raw, col, v) {
        if (json_is_string(v))
            json_object_set_new(raw, col, typed_value(field_by_column(m, col), v));
    }
    return raw;
}

static int
load_values(writer *w, entry *es, size_t n, size_t map, rowinfo **rows, size_t *nrows, err_t *e)
{
    mapping *m = &w->ms[map];
    int64_t *ids = xcalloc(n + 1, sizeof *ids), *rids = xcalloc(n + 1, sizeof *rids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (es[i].map == map) {
            ids[k] = es[i].id;
            rids[k++] = es[i].record_id;
        }
    sb a = SB_INIT, b = SB_INIT, s = SB_INIT, qt = SB_INIT;
    arr_i64(&a, ids, k);
    arr_i64(&b, rids, k);
    pg_qname(&qt, w->cfg->schema, m->table);
    /* The columns as text (hstore_to_json: a fraction of the cost of
     * populate_record and to_jsonb per entry); typed here by column. */
    sb_printf(&s, "SELECT l.id, hstore_to_json(l.values::hstore)::text FROM %s l WHERE l.id = ANY($1::bigint[])",
              w->qlog);
    const char *p1[] = {sb_str(&a)};
    PGresult *r = pg_query(w->pg, e, sb_str(&s), 1, p1);
    int rc = r ? 0 : -1;
    entry **byid = xcalloc(n + 1, sizeof *byid);
    for (size_t j = 0; j < n; j++)
        byid[j] = &es[j];
    qsort(byid, n, sizeof *byid, cmp_entry_id);
    for (int i = 0; r && i < PQntuples(r); i++) {
        entry probe = {.id = atoll(PQgetvalue(r, i, 0))}, *pp = &probe;
        entry **hit = bsearch(&pp, byid, n, sizeof *byid, cmp_entry_id);
        if (hit && !PQgetisnull(r, i, 1))
            (*hit)->vals = typed_values(m, json_loads(PQgetvalue(r, i, 1), 0, NULL));
    }
    free(byid);
    PQclear(r);
    if (rc == 0) {
        sb_clear(&s);
        /* The row now: whether it exists, its sfid, and the whole row only for
         * a record that may have to be inserted as it is now (no INSERT entry
         * claimed for it, no sfid): see fold_group. */
        sb full = SB_INIT;
        sb_putc(&full, '{');
        for (size_t j = 0; j < n;) {
            size_t h = j;
            bool ins = false;
            while (h < n && es[h].map == es[j].map && es[h].record_id == es[j].record_id) {
                ins = ins || es[h].action == 'I';
                h++;
            }
            if (es[j].map == map)
                sb_printf(&full, "%s%d", full.len > 1 ? "," : "", ins ? -es[j].record_id : es[j].record_id);
            j = h;
        }
        sb_putc(&full, '}');
        sb_printf(&s, "SELECT r.rid, t.sfid, CASE WHEN t.id IS NULL THEN NULL WHEN t.sfid IS NULL AND r.k > 0"
                      " THEN to_jsonb(t.*)::text ELSE '{}' END"
                      " FROM (SELECT DISTINCT abs(k) AS rid, max(k) OVER (PARTITION BY abs(k)) AS k"
                      " FROM unnest($1::int[]) AS k) r LEFT JOIN %s t ON t.id = r.rid ORDER BY r.rid",
                  sb_str(&qt));
        const char *p2[] = {sb_str(&full)};
        r = pg_query(w->pg, e, sb_str(&s), 1, p2);
        sb_free(&full);
        rc = r ? 0 : -1;
        int nr = r ? PQntuples(r) : 0;
        *rows = xcalloc(nr ? (size_t)nr : 1, sizeof **rows);
        *nrows = (size_t)nr;
        sb need = SB_INIT;
        size_t nneed = 0, walk = 0;
        sb_putc(&need, '{');
        for (int i = 0; i < nr; i++) {
            (*rows)[i].record_id = atoi(PQgetvalue(r, i, 0));
            (*rows)[i].sfid = PQgetisnull(r, i, 1) ? NULL : xstrdup(PQgetvalue(r, i, 1));
            (*rows)[i].row = PQgetisnull(r, i, 2) ? NULL : json_loads(PQgetvalue(r, i, 2), 0, NULL);
            bool wants = false; /* an update or delete that does not know its sfid */
            while (walk < n && (es[walk].map != map || es[walk].record_id < (*rows)[i].record_id))
                walk++;
            for (size_t j = walk; j < n && es[j].map == map && es[j].record_id == (*rows)[i].record_id; j++)
                wants = wants || (!(*rows)[i].sfid && es[j].action != 'I' && !es[j].sfid);
            if (wants)
                sb_printf(&need, "%s%d", nneed++ ? "," : "", (*rows)[i].record_id);
        }
        sb_putc(&need, '}');
        PQclear(r);
        r = NULL;
        if (rc == 0 && nneed) {
            /* Rows without an sfid (gone, or never written back): the sfid an
             * earlier successful write got, for their updates and deletes. Any
             * entry of the record counts: an insert folded with later updates
             * is MERGED, the update that carried it SUCCESS. */
            sb_clear(&s);
            sb_printf(&s, "SELECT DISTINCT ON (record_id) record_id, sfid FROM (SELECT id, record_id, sfid FROM %s"
                          " WHERE table_name = $2 AND record_id = ANY($1::int[])"
                          " AND state IN ('SUCCESS', 'MERGED') AND sfid IS NOT NULL UNION ALL SELECT id, record_id, sfid FROM %s"
                          " WHERE record_id = ANY($1::int[]) AND table_name = $2"
                          " AND state IN ('SUCCESS', 'MERGED') AND sfid IS NOT NULL) x ORDER BY record_id, id DESC",
                      w->qlog, w->qarch);
            const char *p3[] = {sb_str(&need), m->table};
            r = pg_query(w->pg, e, sb_str(&s), 2, p3);
            rc = r ? 0 : -1;
            for (int i = 0; r && i < PQntuples(r); i++) {
                int rid = atoi(PQgetvalue(r, i, 0));
                for (size_t k2 = 0; k2 < *nrows; k2++)
                    if ((*rows)[k2].record_id == rid && !(*rows)[k2].sfid)
                        (*rows)[k2].sfid = xstrdup(PQgetvalue(r, i, 1));
            }
        }
        sb_free(&need);
        PQclear(r);
    }
    sb_free(&a);
    sb_free(&b);
    sb_free(&s);
    sb_free(&qt);
    free(ids);
    free(rids);
    return rc;
}

/* A column's value as Salesforce wants it. */
static json_t *
sf_value(const map_field *f, json_t *v)
{
    if (json_is_string(v) && (strcmp(f->sftype, "datetime") == 0 || strcmp(f->sftype, "time") == 0)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        bool zoned = n && (s[n - 1] == 'Z' || strchr(s + (n > 10 ? n - 6 : 0), '+'));
        char buf[64];
        if (strcmp(f->sftype, "time") == 0 && n == 8)
            snprintf(buf, sizeof buf, "%s.000Z", s);
        else
            snprintf(buf, sizeof buf, "%s%s", s, zoned ? "" : "Z");
        return json_string(buf);
    }
    return json_incref(v);
}

static json_t *build_record_ex(const mapping *m, json_t *vals, bool insert, bool nulls);

/* The record to send from typed column values; NULL when nothing is left. */
static json_t *
build_record(const mapping *m, json_t *vals, bool insert)
{
    return build_record_ex(m, vals, insert, false);
}

static json_t *
build_record_ex(const mapping *m, json_t *vals, bool insert, bool nulls)
{
    json_t *rec = json_pack("{s:{s:s}}", "attributes", "type", m->object);
    const char *col;
    json_t *v;
    size_t n = 0;
    json_object_foreach(vals, col, v) {
        const map_field *f = field_by_column(m, col);
        if (!f || strcmp(col, "sfid") == 0 || f->via)
            continue;
        if (insert ? !f->createable : !f->updateable)
            continue;
        if (insert && !nulls && json_is_null(v))
            continue;
        json_object_set_new(rec, f->name, sf_value(f, v));
        n++;
    }
    /* A parent named by external id ("School__r": {"External_Id__c": "S-1"}),
     * unless the lookup itself is set. */
    json_object_foreach(vals, col, v) {
        const map_field *f = field_by_column(m, col);
        if (!f || !f->via || json_is_null(v) || (insert ? !f->createable : !f->updateable))
            continue;
        if (json_is_string(json_object_get(rec, f->via)))
            continue;
        json_object_del(rec, f->via);
        const char *dot = strchr(f->name, '.');
        char rel[256];
        snprintf(rel, sizeof rel, "%.*s", (int)(dot - f->name), f->name);
        json_object_set_new(rec, rel, json_pack("{s:O}", dot + 1, v));
        n++;
    }
    if (!n && !insert) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

static void
fold_group(writer *w, entry *es, size_t n, const rowinfo *ri, op *o)
{
    mapping *m = &w->ms[es[0].map];
    memset(o, 0, sizeof *o);
    o->map = es[0].map;
    o->record_id = es[0].record_id;
    o->ids = xcalloc(n, sizeof *o->ids);
    o->nids = n;
    json_t *vals = json_object();
    char kind = 0;
    const char *sfid = NULL;
    for (size_t i = 0; i < n; i++) {
        entry *en = &es[i];
        o->ids[i] = en->id;
        o->unknown = o->unknown || en->unknown;
        if (en->unknown && en->payload && !o->sent)
            o->sent = json_incref(en->payload);
        o->attempts = en->attempts > o->attempts ? en->attempts : o->attempts;
        if (i == 0)
            snprintf(o->sent_at, sizeof o->sent_at, "%s", en->sent_at);
        if (en->sfid)
            sfid = en->sfid;
        if (en->action == 'I') {
            kind = 'I';
            json_object_clear(vals);
            if (en->vals)
                json_object_update(vals, en->vals);
        } else if (en->action == 'U') {
            if (kind != 'I')
                kind = 'U';
            if (en->vals)
                json_object_update(vals, en->vals);
        } else {
            kind = 'D';
        }
    }
    if (!sfid && ri)
        sfid = ri->sfid;
    o->row_exists = ri && ri->row;
    o->sfid = sfid ? xstrdup(sfid) : NULL;
    if (kind == 'U' && !sfid) {
        /* The record never reached Salesforce (its insert failed): insert the row as it is now. */
        kind = ri && ri->row ? 'I' : 'X';
        json_object_clear(vals);
        if (ri && ri->row)
            json_object_update(vals, ri->row);
    }
    if (kind == 'I' && sfid)
        kind = 'U'; /* the row already names its Salesforce record */
    if (kind == 'D' && !sfid) /* created and deleted before anything was sent... */
        kind = o->unknown && o->sent ? 'Z' : 'X'; /* ...unless an insert may have reached Salesforce */
    if (kind == 'I' || kind == 'U') {
        o->rec = build_record(m, vals, kind == 'I');
        if (!o->rec)
            kind = 'X';
        else if (kind == 'U')
            json_object_set_new(o->rec, "id", json_string(sfid));
        if (kind == 'I' && m->upsert_field && json_is_string(json_object_get(o->rec, m->upsert_field))) {
            /* An upsert may update an existing record: fields the app emptied are sent as null. */
            kind = 'A';
            json_decref(o->rec);
            o->rec = build_record_ex(m, vals, true, true);
        }
    }
    if (kind == 'X') {
        log_debug("writer: %s row %d: nothing to send (entries %lld..%lld, row %s, sfid %s)", m->table, o->record_id,
                  (long long)es[0].id, (long long)es[n - 1].id, o->row_exists ? "present" : "gone",
                  sfid ? sfid : "none");
        o->out = OUT_DROPPED;
        snprintf(o->lastop, sizeof o->lastop, "SYNCED");
    }
    o->kind = kind;
    o->vals = vals;
}

/* ---- unknown outcomes ---------------------------------------------------------- */

static bool
filterable(const map_field *f)
{
    static const char *const ok[] = {"string", "email", "phone", "url", "picklist", "boolean", "int", "double",
                                     "currency", "percent", "date", "datetime", "reference", "id", "combobox"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(f->sftype, ok[i]) == 0)
            return true;
    return false;
}

/* An insert whose outcome is unknown: did Salesforce create it? 1 found
 * (o->new_sfid set), 0 not found, -1 could not tell (e filled). */
static int
find_created(writer *w, op *o, err_t *e)
{
    mapping *m = &w->ms[o->map];
    json_t *rec = o->sent ? o->sent : o->rec;
    int64_t sent;
    if (util_parse_datetime(o->sent_at, &sent) != 0)
        sent = util_now_ms();
    char since[32];
    util_fmt_datetime_z(sent - LOOKUP_SKEW_S * 1000, since);
    sb q = SB_INIT;
    const char *ext = m->upsert_field ? json_string_value(json_object_get(rec, m->upsert_field)) : NULL;
    if (ext) {
        /* Keyed by the unique identifier: the record, if it exists, is the one. */
        sb_printf(&q, "SELECT Id FROM %s WHERE %s = '", m->object, m->upsert_field);
        sfapi_soql_escape(&q, ext);
        sb_putc(&q, '\'');
    } else {
        sb_printf(&q, "SELECT Id FROM %s WHERE CreatedById = '", m->object);
        sfapi_soql_escape(&q, sfapi_user_id(w->sf));
        sb_printf(&q, "' AND CreatedDate >= %s", since);
    }
    const char *key;
    json_t *v;
    json_object_foreach(rec, key, v) {
        if (ext)
            break;
        const map_field *f = NULL;
        for (size_t i = 0; i < m->nfields; i++)
            if (strcmp(m->fields[i].name, key) == 0)
                f = &m->fields[i];
        if (!f || !filterable(f))
            continue;
        if (json_is_string(v)) {
            bool quoted = strcmp(f->sftype, "date") != 0 && strcmp(f->sftype, "datetime") != 0;
            sb_printf(&q, " AND %s = %s", f->name, quoted ? "'" : "");
            sfapi_soql_escape(&q, json_string_value(v));
            if (quoted)
                sb_putc(&q, '\'');
        } else if (json_is_boolean(v)) {
            sb_printf(&q, " AND %s = %s", f->name, json_is_true(v) ? "true" : "false");
        } else if (json_is_integer(v)) {
            sb_printf(&q, " AND %s = %lld", f->name, (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            char num[64];
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
            sb_printf(&q, " AND %s = %s", f->name, num);
        }
    }
    json_t *page = NULL;
    int rc = sfapi_query(w->sf, sb_str(&q), false, 0, &page, e);
    log_debug("writer: looking for an insert whose answer was lost: %s -> %s", sb_str(&q),
              rc == 0 ? "answered" : e->msg);
    sb_free(&q);
    if (rc != 0)
        return -1;
    /* Candidates not already linked to a row. */
    json_t *recs = json_object_get(page, "records");
    size_t i;
    json_t *r;
    const char *found = NULL;
    int matches = 0;
    sb qt = SB_INIT;
    pg_qname(&qt, w->cfg->schema, m->table);
    sb s = SB_INIT;
    sb_printf(&s, "SELECT 1 FROM %s WHERE sfid = $1", sb_str(&qt));
    json_array_foreach(recs, i, r) {
        const char *id = json_string_value(json_object_get(r, "Id"));
        if (!id)
            continue;
        const char *p[] = {id};
        PGresult *pr = pg_query(w->pg, e, sb_str(&s), 1, p);
        if (!pr) {
            rc = -1;
            break;
        }
        if (PQntuples(pr) == 0) {
            matches++;
            found = id;
        }
        PQclear(pr);
    }
    if (rc == 0 && matches == 1)
        o->new_sfid = xstrdup(found);
    sb_free(&s);
    sb_free(&qt);
    json_decref(page);
    if (rc != 0)
        return -1;
    if (matches > 1)
        return err_set(e, 409, "AMBIGUOUS_INSERT",
                       "the insert's outcome was unknown and %d records created since then match it; check them in "
                       "Salesforce, then requeue with sfbridge retry", matches);
    return matches == 1;
}

/* ---- sending ---------------------------------------------------------------------- */

static void
set_failed(op *o, const char *code, const char *message, json_t *fields)
{
    o->out = OUT_FAILED;
    snprintf(o->lastop, sizeof o->lastop, "FAILED");
    json_t *err = json_pack("{s:s,s:s,s:O?}", "statusCode", code, "message", message, "fields", fields);
    json_t *j = json_pack("{s:s,s:[o]}", "op",
                          o->kind == 'D' ? "DELETE" : o->kind == 'U' ? "UPDATE" : o->kind == 'A' ? "UPSERT" : "INSERT",
                          "errors", err);
    free(o->err_json);
    o->err_json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    free(o->msg);
    sb m = SB_INIT;
    sb_printf(&m, "%s: %s", code, message);
    o->msg = sb_steal(&m);
}

static bool
transient_code(const char *code)
{
    return code && (strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 || strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 ||
                    strcmp(code, "SERVER_UNAVAILABLE") == 0);
}

static void
set_retry(op *o, const char *why, bool unknown)
{
    o->out = OUT_RETRY;
    o->unknown = o->unknown || unknown;
    free(o->msg);
    o->msg = xstrdup(why);
}

/* One collection request for ops[0..n) of one mapping and one kind. */
static void
send_chunk(writer *w, op **ops, size_t n, writer_stats *st)
{
    mapping *m = &w->ms[ops[0]->map];
    char kind = ops[0]->kind;
    sb path = SB_INIT; /* 200 ids do not fit a fixed buffer */
    sb body = SB_INIT;
    const char *method;
    if (kind == 'D') {
        method = "DELETE";
        sb_printf(&path, "/services/data/v%s/composite/sobjects?ids=", w->cfg->api_version);
        for (size_t i = 0; i < n; i++)
            sb_printf(&path, "%s%s", i ? "," : "", ops[i]->sfid);
        sb_puts(&path, "&allOrNone=false");
    } else {
        json_t *recs = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(recs, ops[i]->rec);
        json_t *b = json_pack("{s:b,s:o}", "allOrNone", 0, "records", recs);
        char *txt = json_dumps(b, JSON_COMPACT);
        sb_puts(&body, txt);
        free(txt);
        json_decref(b);
        if (kind == 'A') {
            method = "PATCH";
            sb_printf(&path, "/services/data/v%s/composite/sobjects/%s/%s", w->cfg->api_version, m->object,
                      m->upsert_field);
        } else {
            method = kind == 'I' ? "POST" : "PATCH";
            sb_printf(&path, "/services/data/v%s/composite/sobjects", w->cfg->api_version);
        }
    }
    long status = 0;
    json_t *res = NULL;
    err_t e;
    err_clear(&e);
    uint64_t before = sfapi_calls(w->sf);
    int rc = sfapi_rest(w->sf, method, sb_str(&path), kind == 'D' ? NULL : sb_str(&body), &status, &res, &e);
    st->api_calls += (int64_t)(sfapi_calls(w->sf) - before);
    sb_free(&body);
    sb_free(&path);
    if (rc != 0 || !json_is_array(res) || json_array_size(res) != n) {
        sfapi_class cls = rc != 0 ? sfapi_last_class(w->sf) : SFAPI_TRANSIENT;
        char why[ERR_MSG_MAX + 80];
        snprintf(why, sizeof why, "%s: %s", rc != 0 ? e.code : "BAD_RESPONSE",
                 rc != 0 ? e.msg : "the collection reply does not match the request");
        for (size_t i = 0; i < n; i++) {
            if (cls == SFAPI_PERMANENT && rc != 0)
                set_failed(ops[i], e.code, e.msg, NULL);
            else
                set_retry(ops[i], why, kind == 'I' || kind == 'A'); /* an insert may have happened */
        }
        log_warn("writer: %s %s of %zu %s records failed: %s", method, kind == 'D' ? "delete" : "write", n, m->object,
                 why);
        json_decref(res);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(res, i);
        op *o = ops[i];
        if (json_is_true(json_object_get(r, "success"))) {
            o->out = OUT_OK;
            const char *id = json_string_value(json_object_get(r, "id"));
            if (id && (kind == 'I' || kind == 'A')) {
                free(o->new_sfid);
                o->new_sfid = xstrdup(id);
            }
            snprintf(o->lastop, sizeof o->lastop, "%s",
                     kind == 'I' ? "INSERTED"
                     : kind == 'A' ? (json_is_false(json_object_get(r, "created")) ? "UPDATED" : "INSERTED")
                     : kind == 'U' ? "UPDATED" : "DELETED");
            st->sent++;
            continue;
        }
        json_t *err = json_array_get(json_object_get(r, "errors"), 0);
        const char *code = json_string_value(json_object_get(err, "statusCode"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (kind == 'D' && code && (strcmp(code, "ENTITY_IS_DELETED") == 0 || strcmp(code, "INVALID_CROSS_REFERENCE_KEY") == 0)) {
            o->out = OUT_OK; /* already gone: the delete is done */
            snprintf(o->lastop, sizeof o->lastop, "DELETED");
            continue;
        }
        if (transient_code(code)) {
            set_retry(o, msg ? msg : code, false);
            continue;
        }
        set_failed(o, code ? code : "UNKNOWN_ERROR", msg ? msg : "Salesforce refused the record",
                   json_object_get(err, "fields"));
        st->failed++;
    }
    json_decref(res);
}

/* ---- recording outcomes --------------------------------------------------------------- */

/* The trigger-log side of ops[i] for every i with sel[i] (all when sel is
 * NULL): finished entries go straight to the archive (one write each, not an
 * update now and a move later); failures stay in the log (for a day, as Heroku
 * Connect shows them), retries wait there. */
static int
log_outcomes(writer *w, PGconn *pg, op **ops, size_t n, const bool *sel, err_t *e)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += !sel || sel[i] ? ops[i]->nids : 0;
    if (total == 0)
        return 0;
    /* Per entry: id, state, sfid, message, retry delay ms, unknown, payload. */
    int64_t *ids = xcalloc(total, sizeof *ids);
    const char **state = xcalloc(total, sizeof *state), **sfid = xcalloc(total, sizeof *sfid),
               **msg = xcalloc(total, sizeof *msg), **delay = xcalloc(total, sizeof *delay),
               **unk = xcalloc(total, sizeof *unk), **payload = xcalloc(total, sizeof *payload);
    char (*delays)[24] = xcalloc(n, sizeof *delays);
    char **payloads = xcalloc(n, sizeof *payloads);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        op *o = ops[i];
        if (sel && !sel[i])
            continue;
        const char *final = o->out == OUT_OK ? "SUCCESS" : o->out == OUT_FAILED ? "FAILED"
                            : o->out == OUT_DROPPED ? "IGNORED" : "NEW";
        snprintf(delays[i], sizeof delays[i], "%ld",
                 o->out != OUT_RETRY ? 0L : o->retry_ms > 0 ? o->retry_ms : backoff_ms(w, o->attempts));
        if (o->out == OUT_RETRY && o->unknown && o->rec)
            payloads[i] = json_dumps(o->rec, JSON_COMPACT);
        for (size_t j = 0; j < o->nids; j++) {
            bool survivor = j == o->nids - 1;
            ids[k] = o->ids[j];
            state[k] = o->out == OUT_OK && !survivor ? "MERGED" : final;
            sfid[k] = o->new_sfid ? o->new_sfid : o->sfid;
            msg[k] = o->msg;
            delay[k] = delays[i];
            unk[k] = o->unknown ? "t" : "f";
            payload[k] = payloads[i];
            k++;
        }
    }
    sb a_ids = SB_INIT, a_state = SB_INIT, a_sfid = SB_INIT, a_msg = SB_INIT, a_delay = SB_INIT, a_unk = SB_INIT,
       a_pay = SB_INIT, s = SB_INIT;
    arr_i64(&a_ids, ids, k);
    arr_text(&a_state, state, k);
    arr_text(&a_sfid, sfid, k);
    arr_text(&a_msg, msg, k);
    arr_text(&a_delay, delay, k);
    arr_text(&a_unk, unk, k);
    arr_text(&a_pay, payload, k);
    sb_printf(&s, "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
                  "   $6::text[], $7::text[]) AS u(id, state, sfid, msg, delay, unk, payload)),"
                  " moved AS (DELETE FROM %1$s l USING u WHERE l.id = u.id"
                  "   AND u.state IN ('SUCCESS', 'MERGED', 'IGNORED')"
                  "   RETURNING l.*, u.state AS n_state, u.sfid AS n_sfid, u.msg AS n_msg, u.unk AS n_unk),"
                  " archived AS (INSERT INTO %2$s (" LOG_COLS ") SELECT id, txid, created_at, now(), now(),"
                  "   txid_current(), n_state, action, table_name, record_id, coalesce(n_sfid, sfid), old, values, 0,"
                  "   n_msg, sfb_attempts, NULL, n_unk::boolean, sfb_sent_at, sfb_payload FROM moved"
                  "   ON CONFLICT (id) DO NOTHING)"
                  " UPDATE %1$s l SET state = u.state, sfid = coalesce(u.sfid, l.sfid), updated_at = now(),"
                  " processed_at = CASE WHEN u.state = 'NEW' THEN NULL ELSE now() END,"
                  " processed_tx = CASE WHEN u.state = 'NEW' THEN NULL ELSE txid_current() END,"
                  " sf_result = CASE u.state WHEN 'FAILED' THEN 1 WHEN 'NEW' THEN NULL ELSE 0 END,"
                  " sf_message = u.msg,"
                  " sfb_attempts = l.sfb_attempts + CASE WHEN u.state = 'NEW' THEN 1 ELSE 0 END,"
                  " sfb_retry_at = CASE WHEN u.state = 'NEW' THEN now() + make_interval(secs => u.delay::double precision / 1000) END,"
                  " sfb_unknown = u.unk::boolean"
                  " FROM u WHERE l.id = u.id AND u.state NOT IN ('SUCCESS', 'MERGED', 'IGNORED')",
              w->qlog, w->qarch);
    const char *p[] = {sb_str(&a_ids), sb_str(&a_state), sb_str(&a_sfid), sb_str(&a_msg), sb_str(&a_delay),
                       sb_str(&a_unk), sb_str(&a_pay)};
    int rc = pg_run(pg, e, sb_str(&s), 7, p);
    sb_free(&a_ids);
    sb_free(&a_state);
    sb_free(&a_sfid);
    sb_free(&a_msg);
    sb_free(&a_delay);
    sb_free(&a_unk);
    sb_free(&a_pay);
    sb_free(&s);
    for (size_t i = 0; i < n; i++)
        free(payloads[i]);
    free(payloads);
    free(delays);
    free(ids);
    free(state);
    free(sfid);
    free(msg);
    free(delay);
    free(unk);
    free(payload);
    return rc;
}

/* The rows of ops[i] for every i with sel[i]: sfid, _hc_lastop, _hc_err. With
 * skip_locked, rows an app holds a lock on are left alone and flagged in
 * *skipped (an array of n, caller's); without, the statement waits for them. */
static int
row_outcomes(writer *w, PGconn *pg, op **ops, size_t n, const bool *sel, bool skip_locked, bool *skipped,
             err_t *e)
{
    mapping *m = &w->ms[ops[0]->map];
    int64_t *rids = xcalloc(n, sizeof *rids);
    const char **rsfid = xcalloc(n, sizeof *rsfid), **rlast = xcalloc(n, sizeof *rlast),
               **rerr = xcalloc(n, sizeof *rerr);
    size_t *at = xcalloc(n, sizeof *at), nr = 0;
    sb mine = SB_INIT; /* this batch's own entries, not "a newer change waiting" */
    sb_putc(&mine, '{');
    for (size_t i = 0; i < n; i++) {
        op *o = ops[i];
        for (size_t j = 0; j < o->nids; j++)
            sb_printf(&mine, "%s%lld", mine.len > 1 ? "," : "", (long long)o->ids[j]);
        if ((sel && !sel[i]) || !o->row_exists || !(o->out == OUT_OK || o->out == OUT_FAILED || o->out == OUT_DROPPED))
            continue;
        rids[nr] = o->record_id;
        rsfid[nr] = o->new_sfid;
        rlast[nr] = o->lastop;
        rerr[nr] = o->out == OUT_FAILED ? o->err_json : NULL;
        at[nr++] = i;
    }
    sb_putc(&mine, '}');
    int rc = 0;
    if (nr) {
        sb qt = SB_INIT, s = SB_INIT, r_ids = SB_INIT, r_sfid = SB_INIT, r_last = SB_INIT, r_err = SB_INIT;
        pg_qname(&qt, w->cfg->schema, m->table);
        /* A row with a newer change waiting keeps PENDING. Only the records of
         * this batch are looked up in the log (by index), so the cost does not
         * grow with the backlog. */
        sb_printf(&s, "WITH busy AS (SELECT DISTINCT l.record_id FROM %s l WHERE l.table_name = $5"
                      "   AND l.record_id = ANY($1::int[]) AND l.state IN ('NEW', 'PENDING')"
                      "   AND l.id <> ALL($7::bigint[])),"
                      " free AS (SELECT id FROM %s WHERE id = ANY($1::int[]) AND $6::boolean"
                      "   FOR UPDATE SKIP LOCKED)"
                      " UPDATE %s t SET sfid = coalesce(t.sfid, u.sfid),"
                      " \"_hc_lastop\" = CASE WHEN t.id IN (SELECT record_id FROM busy) THEN t.\"_hc_lastop\" ELSE u.lastop END,"
                      " \"_hc_err\" = u.err"
                      " FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS u(rid, sfid, lastop, err)"
                      " WHERE t.id = u.rid AND (NOT $6::boolean OR t.id IN (SELECT id FROM free)) RETURNING t.id",
                  w->qlog, sb_str(&qt), sb_str(&qt));
        arr_i64(&r_ids, rids, nr);
        arr_text(&r_sfid, rsfid, nr);
        arr_text(&r_last, rlast, nr);
        arr_text(&r_err, rerr, nr);
        const char *p[] = {sb_str(&r_ids), sb_str(&r_sfid), sb_str(&r_last), sb_str(&r_err), m->table,
                           skip_locked ? "true" : "false", sb_str(&mine)};
        PGresult *r = pg_query(pg, e, sb_str(&s), 7, p);
        rc = r ? 0 : -1;
        if (r && skipped && (size_t)PQntuples(r) < nr) {
            for (size_t i = 0; i < nr; i++) {
                bool hit = false;
                for (int j = 0; j < PQntuples(r) && !hit; j++)
                    hit = atoll(PQgetvalue(r, j, 0)) == rids[i];
                skipped[at[i]] = !hit;
            }
        }
        PQclear(r);
        sb_free(&qt);
        sb_free(&s);
        sb_free(&r_ids);
        sb_free(&r_sfid);
        sb_free(&r_last);
        sb_free(&r_err);
    }
    free(rids);
    free(rsfid);
    free(rlast);
    free(rerr);
    free(at);
    sb_free(&mine);
    return rc;
}

/* Record the outcome of ops[0..n) (one mapping): the trigger log and the rows.
 * The rows are written only where no app holds a lock, so the writer never
 * waits for an app while holding locks of its own (no deadlock with an app's
 * multi-row transaction). A row an app had locked is written after COMMIT, in
 * a statement of its own that may wait for the app but holds nothing it could
 * be waiting for, and only then are its entries marked done: until then they
 * stay PENDING, so a crash in between is recovered like any insert in flight. */
static int
record_on(writer *w, PGconn *pg, op **ops, size_t n, err_t *e)
{
    if (n == 0)
        return 0;
    mapping *m = &w->ms[ops[0]->map];
    bool *skipped = xcalloc(n, sizeof *skipped), *done = xcalloc(n, sizeof *done);
    int rc = pg_exec(pg, e, "BEGIN");
    if (rc == 0)
        rc = row_outcomes(w, pg, ops, n, NULL, true, skipped, e);
    for (size_t i = 0; i < n; i++)
        done[i] = !skipped[i];
    if (rc == 0)
        rc = log_outcomes(w, pg, ops, n, done, e);
    if (rc == 0) {
        /* Earlier failures of records that have now gone through are superseded. */
        sb ok = SB_INIT, s = SB_INIT;
        size_t nok = 0;
        sb_putc(&ok, '{');
        for (size_t i = 0; i < n; i++)
            if (ops[i]->out == OUT_OK)
                sb_printf(&ok, "%s%d", nok++ ? "," : "", ops[i]->record_id);
        sb_putc(&ok, '}');
        if (nok) {
            sb_printf(&s, "UPDATE %s SET state = 'MERGED', processed_at = now(),"
                          " sf_message = sf_message || ' (superseded by a later successful write)'"
                          " WHERE state = 'FAILED' AND table_name = $1 AND record_id = ANY($2::int[])",
                      w->qlog);
            const char *p[] = {m->table, sb_str(&ok)};
            rc = pg_run(pg, e, sb_str(&s), 2, p);
        }
        sb_free(&ok);
        sb_free(&s);
    }
    rc = rc == 0 ? pg_exec(pg, e, "COMMIT") : (pg_rollback_quietly(pg), -1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!skipped[i])
            continue;
        bool one[1] = {true};
        rc = row_outcomes(w, pg, &ops[i], 1, one, false, NULL, e);
        if (rc == 0)
            rc = log_outcomes(w, pg, &ops[i], 1, NULL, e);
    }
    free(skipped);
    free(done);
    return rc;
}

static int
record(writer *w, op **ops, size_t n, err_t *e)
{
    return record_on(w, w->pg, ops, n, e);
}

/* One collection's outcome recorded on the second connection, on a thread of
 * its own, while the main one sends the next collection. */
typedef struct rec_job {
    writer   *w;
    PGconn   *pg;
    op      **ops;
    size_t    n;
    int       rc;
    err_t     e;
    pthread_t th;
    bool      running;
} rec_job;

static void *
rec_thread(void *arg)
{
    rec_job *j = arg;
    j->rc = record_on(j->w, j->pg, j->ops, j->n, &j->e);
    return NULL;
}

static void
rec_start(rec_job *j, writer *w, op **ops, size_t n)
{
    *j = (rec_job){.w = w, .pg = w_pg2(w), .ops = ops, .n = n};
    err_clear(&j->e);
    if (j->pg && pthread_create(&j->th, NULL, rec_thread, j) == 0) {
        j->running = true;
        return;
    }
    j->pg = w->pg; /* no second connection or thread: in line */
    rec_thread(j);
}

/* Wait for the job; 0 or -1 with e filled. */
static int
rec_join(rec_job *j, err_t *e)
{
    if (j->running) {
        pthread_join(j->th, NULL);
        j->running = false;
    }
    if (j->rc != 0) {
        if (e)
            *e = j->e;
        if (j->pg && j->pg != j->w->pg && !pg_connection_lost(j->pg))
            pg_rollback_quietly(j->pg);
    }
    int rc = j->rc;
    j->rc = 0;
    return rc;
}

/* Serialise with the pull for one table while inserts are in flight, so a
 * poll never sees a new record before its sfid is written back. */
static void
table_lock(writer *w, const mapping *m, bool lock)
{
    sb k = SB_INIT;
    sb_printf(&k, "%s.%s", w->cfg->schema, m->table);
    const char *p[] = {sb_str(&k)};
    pg_run(w->pg, NULL, lock ? "SELECT pg_advisory_lock(4242003, hashtext($1))"
                             : "SELECT pg_advisory_unlock(4242003, hashtext($1))", 1, p);
    sb_free(&k);
}

/* Insert order: a mapping comes after the mappings its lookups point to. */
static size_t *
insert_order(writer *w)
{
    size_t n = w->nms, *order = xcalloc(n + 1, sizeof *order);
    bool *placed = xcalloc(n + 1, sizeof *placed);
    size_t k = 0;
    for (size_t pass = 0; pass < n && k < n; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (placed[i])
                continue;
            bool ready = true;
            for (size_t f = 0; f < w->ms[i].nfields && ready; f++) {
                const char *to = w->ms[i].fields[f].ref_to;
                for (size_t j = 0; to && j < n; j++)
                    if (j != i && !placed[j] && strcmp(w->ms[j].object, to) == 0)
                        ready = false;
            }
            if (ready || pass == n - 1) {
                placed[i] = true;
                order[k++] = i;
            }
        }
    }
    free(placed);
    return order;
}

/* Before an insert goes out, its entries remember what is sent: should the
 * outcome be lost (a reset, a crash), the retry looks for exactly this. */
static int
remember_payloads(writer *w, op **ops, size_t n, err_t *e)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ops[i]->nids;
    int64_t *ids = xcalloc(total + 1, sizeof *ids);
    const char **pay = xcalloc(total + 1, sizeof *pay);
    char **txt = xcalloc(n + 1, sizeof *txt);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        txt[i] = json_dumps(ops[i]->rec, JSON_COMPACT);
        for (size_t j = 0; j < ops[i]->nids; j++) {
            ids[k] = ops[i]->ids[j];
            pay[k++] = txt[i];
        }
    }
    sb a = SB_INIT, b = SB_INIT, s = SB_INIT;
    arr_i64(&a, ids, k);
    arr_text(&b, pay, k);
    sb_printf(&s, "UPDATE %s l SET sfb_payload = u.p::jsonb, sfb_sent_at = now()"
                  " FROM unnest($1::bigint[], $2::text[]) AS u(id, p) WHERE l.id = u.id", w->qlog);
    const char *p[] = {sb_str(&a), sb_str(&b)};
    int rc = pg_run(w->pg, e, sb_str(&s), 2, p);
    for (size_t i = 0; i < n; i++)
        free(txt[i]);
    free(txt);
    free(ids);
    free(pay);
    sb_free(&a);
    sb_free(&b);
    sb_free(&s);
    return rc;
}

/* ---- Bulk API 2.0 for large upserts --------------------------------------------- */

static int
cmp_op_key(const void *a, const void *b)
{
    const op *const *x = a, *const *y = b;
    return strcmp(json_string_value(json_object_get((*x)->rec, "_k")), json_string_value(json_object_get((*y)->rec, "_k")));
}

/* Flatten a record for CSV: "School__r": {"External_Id__c": v} -> "School__r.External_Id__c". */
static void
flat_put(json_t *flat, const char *key, json_t *v)
{
    if (json_is_object(v)) {
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
            char name[600];
            snprintf(name, sizeof name, "%s.%s", key, k2);
            json_object_set(flat, name, v2);
        }
    } else {
        json_object_set(flat, key, v);
    }
}

static void
csv_value(sb *out, json_t *v)
{
    if (!v || json_is_null(v))
        return; /* empty: no value */
    if (json_is_string(v)) {
        csv_put_str(out, json_string_value(v));
    } else if (json_is_boolean(v)) {
        sb_puts(out, json_is_true(v) ? "true" : "false");
    } else if (json_is_integer(v)) {
        sb_put_i64(out, json_integer_value(v));
    } else if (json_is_real(v)) {
        sb_printf(out, "%.17g", json_real_value(v));
    }
}

/* One ingest job for ops (all upserts of one mapping). Operations Salesforce
 * did not answer for are left OUT_NONE, for the collections to send. */
static void
send_bulk(writer *w, op **ops, size_t n, writer_stats *st)
{
    mapping *m = &w->ms[ops[0]->map];
    json_t *cols = json_object(); /* column -> index */
    json_t **flat = xcalloc(n, sizeof *flat);
    for (size_t i = 0; i < n; i++) {
        flat[i] = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(ops[i]->rec, k, v) {
            if (strcmp(k, "attributes") != 0)
                flat_put(flat[i], k, v);
        }
        json_object_foreach(flat[i], k, v) {
            if (!json_object_get(cols, k))
                json_object_set_new(cols, k, json_integer((json_int_t)json_object_size(cols)));
        }
    }
    size_t nc = json_object_size(cols);
    const char **names = xcalloc(nc + 1, sizeof *names);
    const char *k;
    json_t *v;
    json_object_foreach(cols, k, v) names[json_integer_value(v)] = k;
    sb csv = SB_INIT;
    for (size_t c = 0; c < nc; c++) {
        if (c)
            sb_putc(&csv, ',');
        csv_put_str(&csv, names[c]);
    }
    sb_putc(&csv, '\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < nc; c++) {
            if (c)
                sb_putc(&csv, ',');
            csv_value(&csv, json_object_get(flat[i], names[c]));
        }
        sb_putc(&csv, '\n');
        /* the sort key: the external id value */
        json_object_set(ops[i]->rec, "_k", json_object_get(flat[i], m->upsert_field));
    }
    char *job = NULL;
    long processed = 0, failed = 0;
    err_t e;
    err_clear(&e);
    uint64_t before = sfapi_calls(w->sf);
    int rc = sfapi_bulk_ingest(w->sf, m->object, "upsert", m->upsert_field, sb_str(&csv), 0, &job, &processed,
                               &failed, &e);
    sb ok = SB_INIT, bad = SB_INIT;
    if (rc == 0)
        rc = sfapi_bulk_ingest_results(w->sf, job, false, &ok, &e);
    if (rc == 0 && failed)
        rc = sfapi_bulk_ingest_results(w->sf, job, true, &bad, &e);
    st->api_calls += (int64_t)(sfapi_calls(w->sf) - before);
    if (rc != 0) {
        log_warn("writer: Bulk API upsert of %zu %s records failed (%s: %s); falling back to collections", n,
                 m->object, e.code, e.msg);
    } else {
        qsort(ops, n, sizeof *ops, cmp_op_key);
        for (int pass = 0; pass < 2; pass++) {
            sb *body = pass == 0 ? &ok : &bad;
            csv_reader *r = csv_reader_new(NULL);
            csv_feed(r, body->buf ? body->buf : "", body->len);
            csv_finish(r);
            csv_row row;
            long kcol = -1;
            while (csv_next(r, &row) == CSV_ROW) {
                if (row.index == 0) {
                    for (size_t c = 0; c < row.nfields; c++)
                        if (util_streq_ci(row.field[c], m->upsert_field))
                            kcol = (long)c;
                    continue;
                }
                if (kcol < 0 || (size_t)kcol >= row.nfields || row.nfields < 2)
                    break;
                json_t *key = json_string(row.field[kcol]);
                op probe_op = {.rec = json_pack("{s:O}", "_k", key)};
                op *probe = &probe_op, **hit = bsearch(&probe, ops, n, sizeof *ops, cmp_op_key);
                json_decref(probe_op.rec);
                json_decref(key);
                if (!hit || (*hit)->out != OUT_NONE)
                    continue;
                op *o = *hit;
                if (pass == 0) {
                    o->out = OUT_OK;
                    free(o->new_sfid);
                    o->new_sfid = xstrdup(row.field[0]);
                    snprintf(o->lastop, sizeof o->lastop, "%s",
                             strcmp(row.field[1], "true") == 0 ? "INSERTED" : "UPDATED");
                    st->sent++;
                } else {
                    /* "STATUS_CODE:message" */
                    char code[64] = "UNKNOWN_ERROR";
                    const char *err = row.field[1], *colon = strchr(err, ':');
                    if (colon && (size_t)(colon - err) < sizeof code)
                        snprintf(code, sizeof code, "%.*s", (int)(colon - err), err);
                    if (transient_code(code)) {
                        set_retry(o, err, false);
                    } else {
                        set_failed(o, code, colon ? colon + 1 : err, NULL);
                        st->failed++;
                    }
                }
            }
            csv_reader_free(r);
        }
        log_info("writer: Bulk API job %s upserted %ld %s records (%ld failed)", job, processed - failed, m->object,
                 failed);
    }
    for (size_t i = 0; i < n; i++) {
        json_object_del(ops[i]->rec, "_k");
        json_decref(flat[i]);
    }
    free(flat);
    free(names);
    json_decref(cols);
    sb_free(&csv);
    sb_free(&ok);
    sb_free(&bad);
    free(job);
}

static int
send_kind(writer *w, op *ops, size_t nops, size_t map, const char *kinds, writer_stats *st, err_t *e)
{
    /* Thousands of upserts waiting for one mapping: Bulk API 2.0 jobs of up to
     * 10,000 first; whatever they leave undecided goes by collections. */
    if (strchr(kinds, 'A')) {
        size_t na = 0;
        for (size_t i = 0; i < nops; i++)
            na += ops[i].map == map && ops[i].kind == 'A' && ops[i].out == OUT_NONE;
        if ((long)na >= w->cfg->bulk_write_min) {
            op **big = xcalloc(na, sizeof *big);
            size_t nb = 0;
            for (size_t i = 0; i < nops; i++)
                if (ops[i].map == map && ops[i].kind == 'A' && ops[i].out == OUT_NONE)
                    big[nb++] = &ops[i];
            mapping *m = &w->ms[map];
            int rc = 0;
            for (size_t i = 0; i < nb && rc == 0; i += BULK_JOB_MAX) {
                size_t cnt = nb - i < BULK_JOB_MAX ? nb - i : BULK_JOB_MAX;
                table_lock(w, m, true);
                send_bulk(w, big + i, cnt, st);
                op **decided = xcalloc(cnt, sizeof *decided);
                size_t nd = 0;
                for (size_t j = 0; j < cnt; j++)
                    if (big[i + j]->out != OUT_NONE)
                        decided[nd++] = big[i + j];
                rc = record(w, decided, nd, e);
                free(decided);
                table_lock(w, m, false);
            }
            free(big);
            if (rc != 0)
                return rc;
        }
    }
    /* Collections go out one after another; each one's outcome is recorded
     * (second connection, own thread) while the next is being sent. Inserts
     * hold the table's lock from sending to recording, released every few
     * collections so a poll is not kept waiting long. */
    op **batch = xcalloc(COLLECTION_MAX, sizeof *batch), **recording = xcalloc(COLLECTION_MAX, sizeof *recording);
    mapping *m = &w->ms[map];
    bool inserts = strchr(kinds, 'I') || strchr(kinds, 'A');
    bool locked = false;
    int held = 0;
    rec_job job = {0};
    int rc = 0;
    for (const char *kp = kinds; *kp && rc == 0; kp++) {
        size_t nb = 0;
        for (size_t i = 0; i <= nops && rc == 0; i++) {
            bool take = i < nops && ops[i].map == map && ops[i].kind == *kp && ops[i].out == OUT_NONE;
            if (take)
                batch[nb++] = &ops[i];
            if (nb && (nb == COLLECTION_MAX || i == nops)) {
                if (inserts && !locked) {
                    table_lock(w, m, true);
                    locked = true;
                }
                if ((*kp == 'I' || *kp == 'A') && remember_payloads(w, batch, nb, e) != 0) {
                    rc = -1;
                    break;
                }
                send_chunk(w, batch, nb, st);
                if (rec_join(&job, e) != 0) {
                    rc = -1; /* this collection was sent: the caller's recovery sees it PENDING */
                    break;
                }
                op **t = recording;
                recording = batch;
                batch = t;
                rec_start(&job, w, recording, nb);
                nb = 0;
                if (locked && ++held >= 10) {
                    rc = rec_join(&job, e);
                    table_lock(w, m, false);
                    locked = false;
                    held = 0;
                }
            }
        }
    }
    if (rec_join(&job, rc == 0 ? e : NULL) != 0)
        rc = -1;
    if (locked)
        table_lock(w, m, false);
    free(batch);
    free(recording);
    return rc;
}

int
writer_pass(writer *w, writer_stats *st, err_t *e)
{
    memset(st, 0, sizeof *st);
    if (w_pg(w, e) != 0)
        return -1;
    mapping_free_all(w->ms, w->nms);
    w->ms = NULL;
    w->nms = 0;
    if (cat_load(w->pg, w->cfg->schema, NULL, &w->ms, &w->nms, e) != 0 || housekeeping(w, e) != 0)
        return -1;
    bool logged_in = false, analyzed = false;
    while (!(w->stop && *w->stop)) {
        entry *es = NULL;
        size_t n = 0;
        int64_t t0 = util_mono_ms();
        if (claim(w, &es, &n, e) != 0)
            return -1;
        int64_t t1 = util_mono_ms();
        if (n == 0) {
            free(es);
            break;
        }
        if (n >= 5000 && !analyzed) {
            analyzed = true;
            /* A large backlog: fresh statistics keep the per-batch statements on their indexes. */
            sb an = SB_INIT;
            sb_printf(&an, "ANALYZE %s", w->qlog);
            pg_exec(w->pg, NULL, sb_str(&an));
            sb_free(&an);
        }
        if (!logged_in && w_sf(w, e) != 0) {
            /* Put the claim back: nothing was sent. */
            sb s = SB_INIT;
            sb_printf(&s, "UPDATE %s SET state = 'NEW', sfb_retry_at = now() + interval '5 seconds'"
                          " WHERE state = 'PENDING'", w->qlog);
            pg_exec(w->pg, NULL, sb_str(&s));
            sb_free(&s);
            for (size_t i = 0; i < n; i++)
                entry_free(&es[i]);
            free(es);
            return -1;
        }
        logged_in = true;
        /* Values and rows per mapping, then fold each record's entries. */
        op *ops = xcalloc(n, sizeof *ops);
        size_t nops = 0;
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0;) {
            size_t map = es[i].map, j = i;
            while (j < n && es[j].map == map)
                j++;
            rowinfo *rows = NULL;
            size_t nrows = 0;
            rc = load_values(w, es + i, j - i, map, &rows, &nrows, e);
            size_t rw = 0;
            for (size_t g = i; rc == 0 && g < j;) {
                size_t h = g;
                while (h < j && es[h].record_id == es[g].record_id)
                    h++;
                const rowinfo *ri = NULL;
                while (rw < nrows && rows[rw].record_id < es[g].record_id)
                    rw++;
                if (rw < nrows && rows[rw].record_id == es[g].record_id)
                    ri = &rows[rw];
                fold_group(w, es + g, h - g, ri, &ops[nops++]);
                g = h;
            }
            for (size_t r = 0; r < nrows; r++) {
                free(rows[r].sfid);
                json_decref(rows[r].row);
            }
            free(rows);
            i = j;
        }
        int64_t t2 = util_mono_ms();
        /* Inserts whose outcome was unknown: look before sending again. */
        for (size_t i = 0; rc == 0 && i < nops; i++) {
            op *o = &ops[i];
            if (!((o->kind == 'I' && o->unknown) || o->kind == 'Z') || o->out != OUT_NONE)
                continue;
            /* A request Salesforce may still be running must be over before
             * looking for its record, or a miss would send it twice. */
            int64_t sent_ms;
            if (util_parse_datetime(o->sent_at, &sent_ms) != 0)
                sent_ms = 0;
            int64_t settle_at = sent_ms + w->cfg->write_settle_ms;
            if (util_now_ms() < settle_at) {
                set_retry(o, "waiting for an earlier attempt to settle before looking for its record", true);
                o->retry_ms = (long)(settle_at - util_now_ms()) + 1;
                continue;
            }
            err_t le;
            err_clear(&le);
            int found = find_created(w, o, &le);
            if (o->kind == 'Z') {
                /* Deleted in Postgres after an insert whose outcome is unknown. */
                if (found == 1) {
                    o->kind = 'D';
                    free(o->sfid);
                    o->sfid = xstrdup(o->new_sfid);
                } else if (found == 0) {
                    o->out = OUT_DROPPED;
                } else {
                    set_retry(o, le.msg, true);
                }
                continue;
            }
            if (found == 1) {
                log_info("writer: %s record %s was created by an earlier attempt; adopted", w->ms[o->map].object,
                         o->new_sfid);
                if (o->sent && !json_equal(o->sent, o->rec)) {
                    /* Changed since that attempt: the record gets the later values
                     * (nulls included) as an update. */
                    json_t *upd = build_record(&w->ms[o->map], o->vals, false);
                    o->kind = 'U';
                    free(o->sfid);
                    o->sfid = xstrdup(o->new_sfid);
                    if (upd) {
                        json_decref(o->rec);
                        o->rec = upd;
                    }
                    json_object_set_new(o->rec, "id", json_string(o->new_sfid));
                } else {
                    o->out = OUT_OK;
                    snprintf(o->lastop, sizeof o->lastop, "INSERTED");
                }
            } else if (found < 0 && strcmp(le.code, "AMBIGUOUS_INSERT") == 0) {
                set_failed(o, le.code, le.msg, NULL);
            } else if (found < 0) {
                set_retry(o, le.msg, true);
            } else {
                o->unknown = false;
            }
        }
        /* Everything already decided (dropped, adopted, ambiguous) is recorded per mapping. */
        for (size_t mi = 0; rc == 0 && mi < w->nms; mi++) {
            op **done = xcalloc(nops + 1, sizeof *done);
            size_t nd = 0;
            for (size_t i = 0; i < nops; i++)
                if (ops[i].map == mi && ops[i].out != OUT_NONE)
                    done[nd++] = &ops[i];
            rc = record(w, done, nd, e);
            free(done);
        }
        size_t *order = insert_order(w);
        for (size_t k = 0; rc == 0 && k < w->nms; k++)
            rc = send_kind(w, ops, nops, order[k], "IA", st, e);
        for (size_t k = 0; rc == 0 && k < w->nms; k++)
            rc = send_kind(w, ops, nops, order[k], "U", st, e);
        for (size_t k = w->nms; rc == 0 && k > 0; k--)
            rc = send_kind(w, ops, nops, order[k - 1], "D", st, e);
        free(order);
        log_debug("writer: %zu entries: claim %lld ms, fold %lld ms, send+record %lld ms", n, (long long)(t1 - t0),
                  (long long)(t2 - t1), (long long)(util_mono_ms() - t2));
        for (size_t i = 0; i < nops; i++)
            op_free(&ops[i]);
        free(ops);
        for (size_t i = 0; i < n; i++)
            entry_free(&es[i]);
        free(es);
        if (rc != 0) {
            /* A statement failed after the claim (a deadlock with an app, a lost
             * connection): what this pass had claimed is released, inserts that
             * were sent as of unknown outcome, so nothing stays stuck. */
            if (!pg_connection_lost(w->pg)) {
                pg_rollback_quietly(w->pg);
                err_t re;
                writer_recover(w->pg, w->cfg->schema, &re);
            }
            return -1;
        }
    }
    /* Everything that waits for a retry, from this pass or earlier ones. */
    sb q = SB_INIT;
    sb_printf(&q, "SELECT count(*) FROM %s WHERE state = 'NEW' AND sfb_retry_at > now()", w->qlog);
    PGresult *r = pg_query(w->pg, e, sb_str(&q), 0, NULL);
    sb_free(&q);
    if (!r)
        return -1;
    st->retrying = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return housekeeping(w, e);
}

/* ---- the thread --------------------------------------------------------------------- */

static int64_t
next_retry_ms(writer *w)
{
    sb s = SB_INIT;
    sb_printf(&s, "SELECT (extract(epoch FROM min(sfb_retry_at) - now()) * 1000)::bigint FROM %s"
                  " WHERE state = 'NEW' AND sfb_retry_at > now()", w->qlog);
    PGresult *r = pg_query(w->pg, NULL, sb_str(&s), 0, NULL);
    sb_free(&s);
    int64_t ms = SWEEP_MS;
    if (r && PQntuples(r) && !PQgetisnull(r, 0, 0))
        ms = atoll(PQgetvalue(r, 0, 0)) + 1;
    PQclear(r);
    return ms < 0 ? 0 : ms > SWEEP_MS ? SWEEP_MS : ms;
}

static void
wait_notify(writer *w, int64_t ms)
{
    int fd = PQsocket(w->pg);
    if (fd < 0 || ms <= 0)
        return;
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (select(fd + 1, &rd, NULL, NULL, &tv) > 0) {
        PQconsumeInput(w->pg);
        PGnotify *nt;
        while ((nt = PQnotifies(w->pg)) != NULL)
            PQfreemem(nt);
    }
}

static void *
writer_main(void *arg)
{
    writer *w = arg;
    int failures = 0;
    while (!*w->stop) {
        writer_stats st;
        err_t e;
        err_clear(&e);
        if (writer_pass(w, &st, &e) != 0) {
            failures++;
            long d = backoff_ms(w, failures);
            log_warn("writer: %s (retrying in %.1f s)", e.msg, (double)d / 1000.0);
            if (w->pg && !pg_connection_lost(w->pg))
                wait_notify(w, d);
            else
                usleep((useconds_t)(d > 5000 ? 5000 : d) * 1000);
            continue;
        }
        failures = 0;
        if (st.sent || st.failed)
            log_msg(st.failed || st.sent >= 1000 ? LOG_INFO : LOG_DEBUG, "writer: %lld records written, %lld refused, %lld waiting to retry", (long long)st.sent,
                     (long long)st.failed, (long long)st.retrying);
        wait_notify(w, next_retry_ms(w));
        /* A trickle of writes: let the changes that follow the first one gather
         * (SFBRIDGE_WRITE_GATHER_MS), so that several go in one request. */
        for (int64_t left = w->cfg->write_gather_ms; left > 0 && !*w->stop; left -= 100)
            usleep((useconds_t)(left < 100 ? left : 100) * 1000);
    }
    return NULL;
}

int
writer_start(writer *w)
{
    /* Signals go to the main thread; it sets *stop and wakes us. */
    sigset_t all, old;
    sigemptyset(&all);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    w->started = true;
    return 0;
}

void
writer_join(writer *w)
{
    if (w && w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

int
writer_requeue(void *pgconn, const char *schema, const char *const *ids, size_t nids, bool all, int64_t *n,
               err_t *e)
{
    PGconn *c = pgconn;
    sb a = SB_INIT, s = SB_INIT, ql = SB_INIT, qa = SB_INIT;
    for (size_t i = 0; i < nids; i++) {
        int64_t v;
        if (util_parse_i64(ids[i], &v) != 0 || v <= 0) {
            sb_free(&a);
            return err_set(e, 400, "BAD_USAGE", "'%s' is not a trigger log id", ids[i]);
        }
        sb_printf(&a, "%s%lld", i ? "," : "", (long long)v);
    }
    pg_qname(&ql, schema, "_trigger_log");
    pg_qname(&qa, schema, "_trigger_log_archive");
    sb ab = SB_INIT;
    sb_printf(&ab, "{%s}", sb_str(&a));
    const char *p[] = {all ? NULL : sb_str(&ab)};
    int rc = pg_exec(c, e, "BEGIN");
    int64_t total = 0;
    if (rc == 0) {
        sb_printf(&s, "UPDATE %s SET state = 'NEW', sfb_retry_at = NULL, sfb_attempts = 0, sf_message = NULL,"
                      " processed_at = NULL WHERE state = 'FAILED' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))",
                  sb_str(&ql));
        PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
        rc = r ? 0 : -1;
        if (r)
            total += atoll(PQcmdTuples(r));
        PQclear(r);
    }
    if (rc == 0) {
        sb_clear(&s);
        sb_printf(&s, "WITH a AS (UPDATE %s SET state = 'REQUEUED' WHERE state = 'FAILED'"
                      " AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) RETURNING *)"
                      " INSERT INTO %s (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, values)"
                      " SELECT txid, created_at, now(), 'NEW', action, table_name, record_id, sfid, old, values FROM a ORDER BY id",
                  sb_str(&qa), sb_str(&ql));
        PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
        rc = r ? 0 : -1;
        if (r)
            total += atoll(PQcmdTuples(r));
        PQclear(r);
    }
    rc = rc == 0 ? pg_exec(c, e, "COMMIT") : (pg_rollback_quietly(c), -1);
    *n = total;
    sb_free(&a);
    sb_free(&ab);
    sb_free(&s);
    sb_free(&ql);
    sb_free(&qa);
    return rc;
}
