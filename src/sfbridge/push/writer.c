/*
 * writer: Postgres -> Salesforce, the pass and the thread (see writer.h).
 *
 * One pass: archive what is finished, claim a batch of due NEW entries
 * (tlog_claim: never one whose record has an earlier entry in flight or
 * waiting for a retry), read their values and rows, fold each record's
 * entries into one operation (fold.c), look in Salesforce before sending again
 * an insert whose outcome was lost (settle.c), send the operations (send.c) in
 * collections of 200 (inserts and upserts parents first, then updates, then
 * deletes), up to SFBRIDGE_WRITE_CONCURRENCY of them in flight at once
 * (lanes.c), and record every outcome in one transaction per collection
 * (recorder.c) as it comes back, on the lane's thread and one of the pool's
 * connections (SFBRIDGE_WRITE_CONNECTIONS), side by side. Inserts hold the
 * table's advisory lock (on the writer's connection, which holds no
 * transaction meanwhile) from sending to recording, so a pull never inserts a
 * second row for a record whose sfid is on its way.
 */
#include "writer.h"
#include "writer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "apiusage.h"
#include "app.h"
#include "capture.h"
#include "catalog.h"
#include "ddl.h"
#include "fold.h"
#include "lanes.h"
#include "activity.h"
#include "notices.h"
#include "locks.h"
#include "log.h"
#include "pg.h"
#include "pgpool.h"
#include "recorder.h"
#include "retry.h"
#include "sb.h"
#include "send.h"
#include "settle.h"
#include "sfapi.h"
#include "tlog.h"
#include "typed.h"
#include "util.h"
#include "worker.h"

#define CLAIM_MAX       10000
#define COLLECTION_MAX  200
#define SWEEP_MS        5000
#define HOUSEKEEPING_MS 1000
#define BULK_JOB_MAX    10000
#define LOCK_HOLD_MAX   10   /* collections sent under one hold of a table's lock, per lane */
#define ANALYZE_MIN     5000 /* a claim this large refreshes the log's statistics (once a pass) */
#define FOLD_CHUNK      1000 /* entries whose values are read and folded at a time */

static int lane_remember(void *ctx, lane_job *j, err_t *e);
static int lane_record(void *ctx, lane_job *j, err_t *e);

static void
batch_free(batch *b)
{
    for (size_t i = 0; i < b->nops; i++)
        op_free(&b->ops[i]);
    free(b->ops);
    for (size_t i = 0; i < b->n; i++)
        fold_entry_free(&b->es[i]);
    free(b->es);
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

/* ---- connections ----------------------------------------------------------- */

static int
w_pg(writer *w, err_t *e)
{
    if (w->pg && !pg_connection_lost(w->pg))
        return 0;
    if (w->pg)
        PQfinish(w->pg);
    w->pg = pg_connect(w->cfg->database_url, e);
    if (!w->pg)
        return -1;
    /* What this writer had in flight when the connection went has an unknown outcome. */
    if (w->connected && tlog_recover(w->pg, w->cfg->schema, e) != 0)
        return -1;
    w->connected = true;
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

static int
w_sf(writer *w, err_t *e)
{
    if (!w->sf)
        w->sf = app_sfapi_new(w->cfg, 0, 0,
                              NULL); /* no retries: the writer decides what may be sent again */
    if (*sfapi_instance_url(w->sf))
        return 0;
    return sfapi_login(w->sf, e);
}

int
writer_recover(void *pgconn, const char *schema, err_t *e)
{
    return tlog_recover(pgconn, schema, e);
}

int
writer_requeue(void *pgconn, const char *schema, const char *const *ids, size_t nids, bool all,
               int64_t *n, sb *missing, err_t *e)
{
    mapping *ms = NULL;
    size_t nms = 0;
    if (cat_load(pgconn, schema, NULL, &ms, &nms, e) != 0)
        return -1;
    const char **tables = xcalloc(nms + 1, sizeof *tables);
    for (size_t i = 0; i < nms; i++)
        tables[i] = ms[i].table;
    int rc = tlog_requeue(pgconn, schema, ids, nids, all, tables, nms, n, missing, e);
    free(tables);
    mapping_free_all(ms, nms);
    return rc;
}

writer *
writer_new(const cfg *c, volatile sig_atomic_t *stop)
{
    writer *w = xcalloc(1, sizeof *w);
    w->cfg = c;
    w->stop = stop;
    w->rec = recorder_new(c->schema, c->backoff_cap_ms);
    /* (the writer's own connection's settings, without its LISTEN) */
    w->pool = pgpool_new(c->database_url, (int)c->write_connections,
                         "SET sfbridge.raw = 'on'; SET jit = off");
    lane_hooks h = {.before = lane_remember, .after = lane_record, .ctx = w};
    w->lanes = lanes_new(c, (int)c->write_concurrency, &h);
    return w;
}

void
writer_free(writer *w)
{
    if (!w)
        return;
    lanes_free(w->lanes);
    for (size_t i = 0; i < w->nlater; i++)
        lane_job_free(w->later[i]);
    free(w->later);
    pgpool_free(w->pool);
    recorder_free(w->rec);
    if (w->pg)
        PQfinish(w->pg);
    if (w->sf)
        sfapi_free(w->sf);
    mapping_free_all(w->ms, w->nms);
    free(w);
}

/* ---- housekeeping and claiming ------------------------------------------------ */

static int
housekeeping(writer *w, bool if_due, err_t *e)
{
    int64_t now = util_now_ms();
    /* Before a pass (if_due) it is skipped when the last pass ended less than
     * HOUSEKEEPING_MS ago: the change that woke the writer waits for whatever
     * comes before its claim, and at a trickle of writes that was most of it. */
    if (if_due && now - w->last_housekeeping_ms < HOUSEKEEPING_MS && now >= w->last_housekeeping_ms)
        return 0;
    w->last_housekeeping_ms = now;
    if (tlog_housekeeping(w->pg, w->cfg->schema, e) != 0)
        return -1;
    if (now - w->last_prune_ms <= 3600 * 1000)
        return 0;
    w->last_prune_ms = now;
    if (tlog_prune_archive(w->pg, w->cfg->schema, w->cfg->archive_days, e) != 0)
        return -1;
    if (notices_prune(w->pg, w->cfg->schema, w->cfg->archive_days, e) != 0)
        return -1;
    return act_prune(w->pg, w->cfg->schema, e);
}

static int
cmp_entry(const void *a, const void *b)
{
    const fold_entry *x = a, *y = b;
    if (x->map != y->map)
        return x->map < y->map ? -1 : 1;
    if (x->record_id != y->record_id)
        return x->record_id < y->record_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Claim due entries into b, sorted by mapping, record and id. */
static int
claim(writer *w, batch *b, err_t *e)
{
    tlog_entry *te = NULL;
    size_t n = 0;
    if (tlog_claim(w->pg, w->cfg->schema, CLAIM_MAX, &te, &n, e) != 0)
        return -1;
    b->es = xcalloc(n ? n : 1, sizeof *b->es);
    int64_t *orphans = xcalloc(n ? n : 1, sizeof *orphans),
            *readonly = xcalloc(n ? n : 1, sizeof *readonly);
    size_t k = 0, norphans = 0, nreadonly = 0;
    for (size_t i = 0; i < n; i++) {
        size_t mi;
        if (!map_by_table(w, te[i].table, &mi)) {
            orphans[norphans++] = te[i].id; /* the mapping is gone: nothing to send the change to */
            continue;
        }
        if (!w->ms[mi].read_write) {
            /* Capture logs a read-only mapping's changes as READONLY, never NEW:
             * a NEW one did not come from capture. Never sent. */
            log_warn("writer: trigger-log entry %lld for read-only %s ignored", (long long)te[i].id,
                     w->ms[mi].object);
            readonly[nreadonly++] = te[i].id;
            continue;
        }
        fold_entry *en = &b->es[k++];
        en->id = te[i].id;
        en->map = mi;
        en->record_id = te[i].record_id;
        en->action = te[i].action;
        en->sfid = te[i].sfid;
        te[i].sfid = NULL;
        en->unknown = te[i].unknown;
        en->attempts = te[i].attempts;
        en->payload = te[i].payload ? json_loads(te[i].payload, 0, NULL) : NULL;
        snprintf(en->sent_at, sizeof en->sent_at, "%s", te[i].sent_at);
    }
    tlog_entries_free(te, n);
    err_t ie;
    err_clear(&ie);
    /* Ignored on failure: the entries stay PENDING, and the next recovery
     * (a failed pass, a reconnect, a restart) hands them back. */
    if (tlog_ignore(w->pg, w->cfg->schema, orphans, norphans, "the mapping was removed", &ie) != 0)
        log_warn("writer: could not mark entries of a removed mapping: %s", ie.msg);
    if (tlog_ignore(w->pg, w->cfg->schema, readonly, nreadonly, "the mapping is read-only", &ie) !=
        0)
        log_warn("writer: could not mark entries of a read-only mapping: %s", ie.msg);
    free(orphans);
    free(readonly);
    qsort(b->es, k, sizeof *b->es, cmp_entry);
    b->n = k;
    return 0;
}

/* ---- values and rows --------------------------------------------------------- */

static int
cmp_entry_id(const void *a, const void *b)
{
    const fold_entry *const *x = a, *const *y = b;
    return (*x)->id < (*y)->id ? -1 : (*x)->id > (*y)->id;
}

/* The typed values of es[0..n) (one mapping's). */
static int
load_entry_values(writer *w, fold_entry *es, size_t n, const mapping *m, err_t *e)
{
    int64_t *ids = xcalloc(n + 1, sizeof *ids);
    fold_entry **byid = xcalloc(n + 1, sizeof *byid);
    for (size_t i = 0; i < n; i++) {
        ids[i] = es[i].id;
        byid[i] = &es[i];
    }
    qsort(byid, n, sizeof *byid, cmp_entry_id);
    PGresult *r = tlog_values(w->pg, w->cfg->schema, ids, n, e);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fold_entry probe = {.id = atoll(PQgetvalue(r, i, 0))}, *pp = &probe;
        fold_entry **hit = bsearch(&pp, byid, n, sizeof *byid, cmp_entry_id);
        if (hit && !PQgetisnull(r, i, 1))
            (*hit)->vals = typed_values(m, json_loads(PQgetvalue(r, i, 1), 0, NULL));
    }
    int rc = r ? 0 : -1;
    PQclear(r);
    free(byid);
    free(ids);
    return rc;
}

/* The records of es (one mapping's) as a Postgres int[]: negative where the
 * record has an INSERT entry (its row need not be read whole). */
static void
record_keys(sb *out, const fold_entry *es, size_t n)
{
    sb_putc(out, '{');
    for (size_t j = 0; j < n;) {
        size_t h = j;
        bool ins = false;
        while (h < n && es[h].record_id == es[j].record_id) {
            ins = ins || es[h].action == TLOG_INSERT;
            h++;
        }
        sb_printf(out, "%s%d", out->len > 1 ? "," : "", ins ? -es[j].record_id : es[j].record_id);
        j = h;
    }
    sb_putc(out, '}');
}

/* Rows without an sfid (gone, or never written back) whose updates and deletes
 * do not know it either: the sfid an earlier successful write got. */
static int
load_written_sfids(writer *w, const fold_entry *es, size_t n, const mapping *m, fold_row *rows,
                   size_t nrows, err_t *e)
{
    int *need = xcalloc(nrows + 1, sizeof *need);
    size_t nneed = 0, walk = 0;
    for (size_t i = 0; i < nrows; i++) {
        bool wants = false; /* an update or delete that does not know its sfid */
        while (walk < n && es[walk].record_id < rows[i].record_id)
            walk++;
        for (size_t j = walk; j < n && es[j].record_id == rows[i].record_id; j++)
            wants = wants || (!rows[i].sfid && es[j].action != TLOG_INSERT && !es[j].sfid);
        if (wants)
            need[nneed++] = rows[i].record_id;
    }
    int rc = 0;
    if (nneed) {
        PGresult *r = tlog_written_sfids(w->pg, w->cfg->schema, m->table, need, nneed, e);
        rc = r ? 0 : -1;
        for (int i = 0; r && i < PQntuples(r); i++) {
            int rid = atoi(PQgetvalue(r, i, 0));
            for (size_t k = 0; k < nrows; k++)
                if (rows[k].record_id == rid && !rows[k].sfid)
                    rows[k].sfid = xstrdup(PQgetvalue(r, i, 1));
        }
        PQclear(r);
    }
    free(need);
    return rc;
}

/* Each record's row now: whether it exists, its sfid, and the whole row only
 * for a record that may have to be inserted as it is now (no INSERT entry
 * claimed for it, no sfid): see fold_group. Sorted by record id. */
static int
load_rows(writer *w, const fold_entry *es, size_t n, const mapping *m, fold_row **rows,
          size_t *nrows, err_t *e)
{
    sb keys = SB_INIT, qt = SB_INIT, s = SB_INIT;
    record_keys(&keys, es, n);
    pg_qname(&qt, w->cfg->schema, m->table);
    sb_printf(&s,
              "SELECT r.rid, t.sfid, CASE WHEN t.id IS NULL THEN NULL WHEN t.sfid IS NULL AND r.k "
              "> 0"
              " THEN to_jsonb(t.*)::text ELSE '{}' END"
              " FROM (SELECT DISTINCT abs(k) AS rid, max(k) OVER (PARTITION BY abs(k)) AS k"
              " FROM unnest($1::int[]) AS k) r LEFT JOIN %s t ON t.id = r.rid ORDER BY r.rid",
              sb_str(&qt));
    const char *p[] = {sb_str(&keys)};
    PGresult *r = pg_query(w->pg, e, sb_str(&s), 1, p);
    sb_free(&keys);
    sb_free(&qt);
    sb_free(&s);
    int nr = r ? PQntuples(r) : 0;
    *rows = xcalloc(nr ? (size_t)nr : 1, sizeof **rows);
    *nrows = (size_t)nr;
    for (int i = 0; i < nr; i++) {
        (*rows)[i].record_id = atoi(PQgetvalue(r, i, 0));
        (*rows)[i].sfid = PQgetisnull(r, i, 1) ? NULL : xstrdup(PQgetvalue(r, i, 1));
        (*rows)[i].row = PQgetisnull(r, i, 2) ? NULL : json_loads(PQgetvalue(r, i, 2), 0, NULL);
    }
    if (!r)
        return -1;
    PQclear(r);
    return load_written_sfids(w, es, n, m, *rows, *nrows, e);
}

static void
rows_free(fold_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].sfid);
        json_decref(rows[i].row);
    }
    free(rows);
}

/* Fold es[0..n) (one mapping's, whole records) into b->ops: their values and
 * rows, then each record's entries. Memory stays within bounds: the entries'
 * values are dropped once folded into the op, and the op keeps its values only
 * while an earlier attempt may have to be adopted (adopt_created); the rest
 * need only the record to send. */
static int
fold_chunk(writer *w, batch *b, fold_entry *es, size_t n, const mapping *m, err_t *e)
{
    fold_row *rows = NULL;
    size_t nrows = 0, rw = 0;
    int rc = load_entry_values(w, es, n, m, e);
    if (rc == 0)
        rc = load_rows(w, es, n, m, &rows, &nrows, e);
    for (size_t g = 0; rc == 0 && g < n;) {
        size_t h = g;
        while (h < n && es[h].record_id == es[g].record_id)
            h++;
        while (rw < nrows && rows[rw].record_id < es[g].record_id)
            rw++;
        const fold_row *ri = rw < nrows && rows[rw].record_id == es[g].record_id ? &rows[rw] : NULL;
        op *o = &b->ops[b->nops++];
        fold_group(m, es + g, h - g, ri, o);
        if (!o->unknown) {
            json_decref(o->vals);
            o->vals = NULL;
        }
        for (; g < h; g++) {
            json_decref(es[g].vals);
            es[g].vals = NULL;
        }
    }
    rows_free(rows, nrows);
    return rc;
}

/* Each record's entries folded into b->ops, per mapping, FOLD_CHUNK entries
 * (whole records) at a time: only a chunk's values are parsed at once. */
static int
fold_batch(writer *w, batch *b, err_t *e)
{
    b->ops = xcalloc(b->n ? b->n : 1, sizeof *b->ops);
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0;) {
        size_t j = i + FOLD_CHUNK < b->n ? i + FOLD_CHUNK : b->n;
        while (j < b->n && b->es[j].map == b->es[i].map &&
               b->es[j].record_id == b->es[j - 1].record_id)
            j++; /* (a record's entries in one chunk) */
        size_t k = i + 1;
        while (k < j && b->es[k].map == b->es[i].map)
            k++; /* (one mapping's) */
        rc = fold_chunk(w, b, b->es + i, k - i, &w->ms[b->es[i].map], e);
        i = k;
    }
    return rc;
}

/* ---- sending ------------------------------------------------------------------------- */

/* Serialise with the pull for one table while inserts are in flight, so a
 * poll never sees a new record before its sfid is written back. */
static int
table_lock(writer *w, const mapping *m, err_t *e)
{
    sb k = SB_INIT;
    sb_printf(&k, "%s.%s", w->cfg->schema, m->table);
    const char *p[] = {sb_str(&k)};
    int rc = pg_run(w->pg, e, "SELECT pg_advisory_lock(" LOCK_TABLE ", hashtext($1))", 1, p);
    sb_free(&k);
    return rc;
}

/* The lock must not outlive the send: a poll of the table would wait for it
 * for good. Should the unlock fail, the connection is closed, which releases
 * it; the next pass reconnects and recovers what was in flight. */
static int
table_unlock(writer *w, const mapping *m, err_t *e)
{
    sb k = SB_INIT;
    sb_printf(&k, "%s.%s", w->cfg->schema, m->table);
    const char *p[] = {sb_str(&k)};
    err_t ue;
    err_clear(&ue);
    int rc = pg_run(w->pg, &ue, "SELECT pg_advisory_unlock(" LOCK_TABLE ", hashtext($1))", 1, p);
    sb_free(&k);
    if (rc == 0)
        return 0;
    log_warn("writer: could not release the lock on %s (%s); reconnecting", m->table, ue.msg);
    PQfinish(w->pg);
    w->pg = NULL;
    if (e)
        *e = ue;
    return -1;
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
remember_payloads(writer *w, PGconn *pg, op **ops, size_t n, err_t *e)
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
    int rc = tlog_remember_payloads(pg, w->cfg->schema, ids, pay, k, e);
    for (size_t i = 0; i < n; i++)
        free(txt[i]);
    free(txt);
    free(ids);
    free(pay);
    return rc;
}

/* Whether upserts should go by Bulk jobs rather than collections. A job costs
 * about seven requests for up to 10,000 records where collections cost one per
 * 200, but its requests go one after the other (create, upload, close, wait,
 * results) where collections go side by side: at 1 s a call, 10,000 upserts
 * take 7 s or more by a job and about 2 s by collections. So requests are spent
 * for speed while the org has them to spare, and saved once it has used
 * SFBRIDGE_BULK_WRITE_USAGE percent of its daily allowance (0: always jobs, as
 * Heroku Connect does). The usage is what the latest answer to any client of
 * the process told (Sforce-Limit-Info, sessions.h): a poll's, a lane's. No
 * round trip is spent to learn it; until an answer has told it, collections. */
static bool
bulk_writes_due(const writer *w)
{
    long pct = w->cfg->bulk_write_usage, used, max;
    if (pct <= 0)
        return true;
    sfapi_limit_info(w->sf, &used, &max);
    return au_reached(used, max, pct);
}

/* Thousands of upserts waiting for one mapping, once requests are to be saved
 * (bulk_writes_due): Bulk API 2.0 jobs of up to 10,000 first, each recorded in
 * line under the table's lock; whatever they leave undecided goes by collections. */
static int
send_bulk_upserts(writer *w, batch *b, size_t map, writer_stats *st, err_t *e)
{
    size_t na = 0;
    for (size_t i = 0; i < b->nops; i++)
        na += b->ops[i].map == map && b->ops[i].kind == OP_UPSERT && b->ops[i].out == OUT_NONE;
    if ((long)na < w->cfg->bulk_write_min)
        return 0;
    if (!bulk_writes_due(w))
        return 0;
    op **big = xcalloc(na, sizeof *big), **decided = xcalloc(na, sizeof *decided);
    size_t nb = 0;
    for (size_t i = 0; i < b->nops; i++)
        if (b->ops[i].map == map && b->ops[i].kind == OP_UPSERT && b->ops[i].out == OUT_NONE)
            big[nb++] = &b->ops[i];
    const mapping *m = &w->ms[map];
    int rc = 0;
    for (size_t i = 0; i < nb && rc == 0; i += BULK_JOB_MAX) {
        size_t cnt = nb - i < BULK_JOB_MAX ? nb - i : BULK_JOB_MAX;
        if ((rc = table_lock(w, m, e)) != 0)
            break; /* not sent: the pass fails and its claim is recovered */
        send_bulk_upsert(w->sf, m, big + i, cnt, st);
        size_t nd = 0;
        for (size_t j = 0; j < cnt; j++)
            if (big[i + j]->out != OUT_NONE)
                decided[nd++] = big[i + j];
        rc = recorder_record(w->rec, w->pg, m, decided, nd, e);
        if (table_unlock(w, m, rc == 0 ? e : NULL) != 0)
            rc = -1;
    }
    free(big);
    free(decided);
    return rc;
}

/* Whether two undecided upserts of this mapping carry the same unique
 * identifier: sent at the same time they could both create a record, so
 * their collections then go one at a time. */
static bool
shared_upsert_keys(const writer *w, const batch *b, size_t map, op_kinds kinds)
{
    const char *key = w->ms[map].upsert_field;
    if (!(kinds & OP_SET(OP_UPSERT)) || !key)
        return false;
    json_t *seen = json_object();
    bool dup = false;
    for (size_t i = 0; i < b->nops && !dup; i++) {
        const op *o = &b->ops[i];
        if (o->map != map || o->kind != OP_UPSERT || o->out != OUT_NONE)
            continue;
        json_t *v = json_object_get(o->rec, key);
        char *k = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        for (char *p = k; p && *p; p++) /* Salesforce matches External IDs ignoring case */
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        if (k && json_object_get(seen, k))
            dup = true;
        else if (k)
            json_object_set_new(seen, k, json_true());
        free(k);
    }
    json_decref(seen);
    return dup;
}

/* The lanes' hooks (lanes.h), on a lane's thread: before an insert or upsert
 * goes out its payload is remembered, and what came back is recorded, each on
 * a connection of the pool. A collection whose recording failed leaves its
 * entries PENDING: the recovery treats them as sent with the outcome unknown. */
static int
lane_remember(void *ctx, lane_job *j, err_t *e)
{
    writer *w = ctx;
    PGconn *pg = pgpool_take(w->pool, e);
    if (!pg)
        return -1;
    int rc = remember_payloads(w, pg, j->ops, j->n, e);
    pgpool_give(w->pool, pg);
    return rc;
}

/* (rows an app holds locked are left to the writer: no connection of the
 * pool waits for an app while other collections could be recorded on it) */
static int
lane_record(void *ctx, lane_job *j, err_t *e)
{
    writer *w = ctx;
    PGconn *pg = pgpool_take(w->pool, e);
    if (!pg)
        return -1;
    j->skipped = xcalloc(j->n ? j->n : 1, sizeof *j->skipped);
    int rc = recorder_record_some(w->rec, pg, j->m, j->ops, j->n, j->skipped, e);
    pgpool_give(w->pool, pg);
    return rc;
}

static bool
has_skipped(const lane_job *j)
{
    for (size_t i = 0; j->skipped && i < j->n; i++)
        if (j->skipped[i])
            return true;
    return false;
}

/* Take back the next collection the lanes finished (sent and recorded): its
 * counts to the pass's, and the first failure as the pass's; one with rows an
 * app holds locked waits in w->later for drain. 0 when none. */
static int
finish_one(writer *w, writer_stats *st, int rc, err_t *e)
{
    lane_job *j = lanes_done(w->lanes);
    if (!j)
        return rc;
    st->sent += j->st.sent;
    st->failed += j->st.failed;
    st->retrying += j->st.retrying;
    st->api_calls += j->st.api_calls;
    if (j->rc != 0 && rc == 0) {
        rc = -1;
        if (e)
            *e = j->e;
    }
    if (j->rc == 0 && has_skipped(j)) {
        w->later = xrealloc(w->later, (w->nlater + 1) * sizeof *w->later);
        w->later[w->nlater++] = j;
        return rc;
    }
    lane_job_free(j);
    return rc;
}

/* Every collection in flight back and recorded, the rows apps held locked
 * last, on the writer's connection, waiting for the apps (which it holds no
 * transaction against). Once something failed they are left PENDING: the
 * recovery treats them as sent with the outcome unknown. */
static int
drain(writer *w, writer_stats *st, int rc, err_t *e)
{
    while (lanes_in_flight(w->lanes) > 0)
        rc = finish_one(w, st, rc, e);
    for (size_t i = 0; i < w->nlater; i++) {
        lane_job *j = w->later[i];
        if (rc == 0)
            rc = recorder_record_skipped(w->rec, w->pg, j->m, j->ops, j->n, j->skipped, e);
        lane_job_free(j);
    }
    w->nlater = 0;
    return rc;
}

/* The undecided operations of one mapping and the kinds in `kinds` (in the
 * order of op_kind), in collections of up to 200, up to the lanes' limit of
 * them in flight at once (all of one kind: records written in any order);
 * each outcome is recorded as it comes back, while the others are on their
 * way. Inserts hold the table's lock from sending to recording, released
 * every LOCK_HOLD_MAX collections per lane (all of them back) so a poll is
 * not kept waiting long. A failure stops the sending; what is in flight is waited for. */
static int
send_collections(writer *w, batch *b, size_t map, op_kinds kinds, writer_stats *st, err_t *e)
{
    const mapping *m = &w->ms[map];
    bool inserts = kinds & (OP_SET(OP_INSERT) | OP_SET(OP_UPSERT)), locked = false;
    bool one_at_a_time = shared_upsert_keys(w, b, map, kinds);
    int held = 0, rc = 0;
    for (int k = 0; k < OP_KIND_COUNT && rc == 0; k++) {
        if (!(kinds & OP_SET(k)))
            continue;
        rc = drain(w, st, rc, e); /* one kind after the other */
        op **buf = NULL;
        size_t nb = 0;
        for (size_t i = 0; i <= b->nops && rc == 0; i++) {
            op *o = i < b->nops ? &b->ops[i] : NULL;
            if (o && o->map == map && (int)o->kind == k && o->out == OUT_NONE) {
                if (!buf)
                    buf = xcalloc(COLLECTION_MAX, sizeof *buf);
                buf[nb++] = o;
            }
            if (!nb || (nb < COLLECTION_MAX && i < b->nops))
                continue;
            if (inserts && !locked) {
                if ((rc = table_lock(w, m, e)) != 0)
                    break; /* without the lock the inserts are not sent */
                locked = true;
            }
            int room = one_at_a_time ? 1 : lanes_limit(w->lanes);
            while (rc == 0 && lanes_in_flight(w->lanes) >= room)
                rc = finish_one(w, st, rc, e);
            if (rc != 0)
                break; /* this collection was not sent */
            lane_job *j = xcalloc(1, sizeof *j);
            *j = (lane_job){.m = m, .ops = buf, .n = nb, .remember = op_kind_creates((op_kind)k)};
            lanes_send(w->lanes, j);
            buf = NULL;
            nb = 0;
            /* (as long a hold as LOCK_HOLD_MAX collections one at a time) */
            if (locked && ++held >= LOCK_HOLD_MAX * lanes_limit(w->lanes)) {
                rc = drain(w, st, rc, e);
                if (table_unlock(w, m, rc == 0 ? e : NULL) != 0)
                    rc = -1;
                locked = false;
                held = 0;
            }
        }
        free(buf);
    }
    rc = drain(w, st, rc, rc == 0 ? e : NULL);
    if (locked && table_unlock(w, m, rc == 0 ? e : NULL) != 0)
        rc = -1;
    return rc;
}

static int
send_kind(writer *w, batch *b, size_t map, op_kinds kinds, writer_stats *st, err_t *e)
{
    if ((kinds & OP_SET(OP_UPSERT)) && send_bulk_upserts(w, b, map, st, e) != 0)
        return -1;
    return send_collections(w, b, map, kinds, st, e);
}

/* Inserts and upserts parents first, then updates, then deletes children first. */
static int
send_all(writer *w, batch *b, writer_stats *st, err_t *e)
{
    size_t *order = insert_order(w);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < w->nms; k++)
        rc = send_kind(w, b, order[k], OP_SET(OP_INSERT) | OP_SET(OP_UPSERT), st, e);
    for (size_t k = 0; rc == 0 && k < w->nms; k++)
        rc = send_kind(w, b, order[k], OP_SET(OP_UPDATE), st, e);
    for (size_t k = w->nms; rc == 0 && k > 0; k--)
        rc = send_kind(w, b, order[k - 1], OP_SET(OP_DELETE), st, e);
    free(order);
    return rc;
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* Claim the next batch: 1 with entries, 0 when nothing is due, -1 failed. */
static int
next_batch(writer *w, batch *b, bool *analyzed, err_t *e)
{
    memset(b, 0, sizeof *b);
    if (claim(w, b, e) != 0)
        return -1;
    if (b->n == 0)
        return 0;
    if (b->n >= ANALYZE_MIN && !*analyzed) {
        *analyzed = true;
        /* A large backlog: fresh statistics keep the per-batch statements on
         * their indexes. Only an optimisation: a failure changes nothing else. */
        err_t ae;
        err_clear(&ae);
        if (tlog_analyze(w->pg, w->cfg->schema, &ae) != 0)
            log_debug("writer: ANALYZE of the trigger log failed: %s", ae.msg);
    }
    return 1;
}

/* Log in before sending the first batch; on failure the claim goes back. */
static int
login(writer *w, err_t *e)
{
    if (w_sf(w, e) == 0)
        return 0;
    /* Put the claim back: nothing was sent. Ignored on failure: the pass
     * fails anyway, and the next recovery (a reconnect, a restart) or this
     * statement on the next failed login hands the entries back. */
    err_t ue;
    err_clear(&ue);
    if (tlog_unclaim(w->pg, w->cfg->schema, 5, &ue) != 0)
        log_warn("writer: could not put the claim back: %s", ue.msg);
    return -1;
}

/* Fold, settle, record what is decided, send and record the rest. claim_ms is
 * how long the claim took, for the one timing line per batch. */
static int
process_batch(writer *w, batch *b, int64_t claim_ms, writer_stats *st, err_t *e)
{
    int64_t t1 = util_mono_ms();
    int rc = fold_batch(w, b, e);
    int64_t t2 = util_mono_ms();
    if (rc == 0) {
        settle_unknown(w, b);
        rc = settle_record_decided(w, b, e);
    }
    if (rc == 0)
        rc = send_all(w, b, st, e);
    log_debug("writer: %zu entries: claim %lld ms, fold %lld ms, send+record %lld ms", b->n,
              (long long)claim_ms, (long long)(t2 - t1), (long long)(util_mono_ms() - t2));
    return rc;
}

/* A statement failed after the claim (a deadlock with an app, a lost
 * connection): what this pass had claimed is released, inserts that were
 * sent as of unknown outcome, so nothing stays stuck. */
static void
release_after_failure(writer *w)
{
    if (!w->pg || pg_connection_lost(w->pg))
        return; /* the reconnect recovers */
    pg_rollback_quietly(w->pg);
    err_t re;
    err_clear(&re);
    if (tlog_recover(w->pg, w->cfg->schema, &re) != 0)
        log_warn("writer: could not release the claim (%s); the next reconnect will", re.msg);
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
    if (cat_load(w->pg, w->cfg->schema, NULL, &w->ms, &w->nms, e) != 0 ||
        housekeeping(w, true, e) != 0)
        return -1;
    bool logged_in = false, analyzed = false;
    while (!(w->stop && *w->stop)) {
        batch b;
        int64_t t0 = util_mono_ms();
        int got = next_batch(w, &b, &analyzed, e);
        if (got <= 0) {
            batch_free(&b);
            if (got < 0)
                return -1;
            break;
        }
        int64_t claim_ms = util_mono_ms() - t0;
        if (!logged_in && login(w, e) != 0) {
            batch_free(&b);
            return -1;
        }
        logged_in = true;
        int rc = process_batch(w, &b, claim_ms, st, e);
        batch_free(&b);
        if (rc != 0) {
            release_after_failure(w);
            return -1;
        }
    }
    recorder_flush(w->rec, w->pg);
    /* Everything that waits for a retry, from this pass or earlier ones. */
    if (tlog_retrying(w->pg, w->cfg->schema, &st->retrying, e) != 0)
        return -1;
    return housekeeping(w, false, e);
}

/* ---- the thread ----------------------------------------------------------------------------- */

static int64_t
next_retry_ms(writer *w)
{
    int64_t ms;
    /* Ignored on failure: the writer then simply looks again after SWEEP_MS. */
    if (tlog_next_retry_ms(w->pg, w->cfg->schema, &ms, NULL) != 0 || ms < 0)
        return SWEEP_MS;
    ms += 1;
    return ms > SWEEP_MS ? SWEEP_MS : ms;
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
            /* Equal jitter from 1 s, doubling (the write preset counts from 500 ms). */
            long d = retry_delay_ms(&retry_presets[RETRY_WRITE], failures + 1,
                                    w->cfg->backoff_cap_ms);
            log_warn("writer: %s (retrying in %.1f s)", e.msg, (double)d / 1000.0);
            if (w->pg && !pg_connection_lost(w->pg))
                (void)pg_wait_notify(w->pg, d);
            else
                usleep((useconds_t)(d > 5000 ? 5000 : d) * 1000);
            continue;
        }
        failures = 0;
        if (st.sent || st.failed)
            log_msg(st.failed || st.sent >= 1000 ? LOG_INFO : LOG_DEBUG,
                    "writer: %lld records written, %lld refused, %lld waiting to retry",
                    (long long)st.sent, (long long)st.failed, (long long)st.retrying);
        /* woken at once by a change committed during the pass (pg_wait_notify) */
        (void)pg_wait_notify(w->pg, next_retry_ms(w));
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
    return worker_start(&w->thread, writer_main, w);
}

void
writer_join(writer *w)
{
    if (w)
        worker_join(&w->thread);
}
