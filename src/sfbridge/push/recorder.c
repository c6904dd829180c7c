/*
 * recorder: outcomes to Postgres (see recorder.h).
 */
#include "recorder.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "log.h"
#include "notices.h"
#include "pg.h"
#include "retry.h"
#include "sb.h"
#include "tlog.h"
#include "util.h"

#define ACT_TABLES 16

struct recorder {
    char *schema;
    long backoff_cap_ms;
    pthread_mutex_t mu; /* over act: collections are recorded side by side */
    /* records written and refused since the last recorder_flush, per table */
    struct {
        char table[64];
        int64_t ok, failed;
    } act[ACT_TABLES];
    int nact;
};

/* ---- the trigger log's side --------------------------------------------------- */

/* The delay before an op's retry: its own (settling) or the write backoff,
 * from 500 ms doubling per attempt already made. */
static long
retry_delay(const recorder *r, const op *o)
{
    if (o->out != OUT_RETRY)
        return 0;
    if (o->retry_ms > 0)
        return o->retry_ms;
    return retry_delay_ms(&retry_presets[RETRY_WRITE], o->attempts + 1, r->backoff_cap_ms);
}

static tlog_state
entry_state(const op *o, bool survivor)
{
    switch (o->out) {
    case OUT_OK: return survivor ? TLOG_SUCCESS : TLOG_MERGED;
    case OUT_FAILED: return TLOG_FAILED;
    case OUT_DROPPED: return TLOG_IGNORED;
    case OUT_RETRY:
    case OUT_NONE:
    default: return TLOG_NEW;
    }
}

/* The entries of ops[i] for every i with sel[i] (all when sel is NULL). */
static int
log_outcomes(const recorder *r, PGconn *pg, op **ops, size_t n, const bool *sel, err_t *e)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += !sel || sel[i] ? ops[i]->nids : 0;
    if (total == 0)
        return 0;
    tlog_outcome *out = xcalloc(total, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const op *o = ops[i];
        if (sel && !sel[i])
            continue;
        long delay = retry_delay(r, o);
        for (size_t j = 0; j < o->nids; j++)
            out[k++] = (tlog_outcome){
                .id = o->ids[j],
                .state = entry_state(o, j == o->nids - 1),
                .sfid = o->new_sfid ? o->new_sfid : o->sfid,
                .message = o->msg,
                .delay_ms = delay,
                .unknown = o->unknown,
            };
    }
    int rc = tlog_record_outcomes(pg, r->schema, out, k, e);
    free(out);
    return rc;
}

/* ---- the rows' side --------------------------------------------------------------- */

typedef struct row_batch {
    int64_t *rids;
    const char **sfid, **lastop, **err;
    size_t *at; /* index in ops */
    size_t n;
    sb own; /* this batch's own entries, not "a newer change waiting" */
} row_batch;

static void
row_batch_collect(row_batch *b, op **ops, size_t n, const bool *sel)
{
    b->rids = xcalloc(n, sizeof *b->rids);
    b->sfid = xcalloc(n, sizeof *b->sfid);
    b->lastop = xcalloc(n, sizeof *b->lastop);
    b->err = xcalloc(n, sizeof *b->err);
    b->at = xcalloc(n, sizeof *b->at);
    b->n = 0;
    b->own = (sb)SB_INIT;
    sb_putc(&b->own, '{');
    for (size_t i = 0; i < n; i++) {
        const op *o = ops[i];
        for (size_t j = 0; j < o->nids; j++)
            sb_printf(&b->own, "%s%lld", b->own.len > 1 ? "," : "", (long long)o->ids[j]);
        if ((sel && !sel[i]) || !o->row_exists ||
            !(o->out == OUT_OK || o->out == OUT_FAILED || o->out == OUT_DROPPED))
            continue;
        b->rids[b->n] = o->record_id;
        /* Whatever write went through, the row learns its record's sfid (never
         * overwritten: coalesce in row_sql): an update that followed an adopted
         * insert, or a change made while the insert was in flight, must leave
         * the row linked, or a pull would make a second row (issue 12 #3). */
        b->sfid[b->n] = o->new_sfid ? o->new_sfid : o->out == OUT_OK ? o->sfid : NULL;
        b->lastop[b->n] = o->lastop;
        b->err[b->n] = o->out == OUT_FAILED ? o->err_json : NULL;
        b->at[b->n++] = i;
    }
    sb_putc(&b->own, '}');
}

static void
row_batch_free(row_batch *b)
{
    free(b->rids);
    free(b->sfid);
    free(b->lastop);
    free(b->err);
    free(b->at);
    sb_free(&b->own);
}

/* The row statement. A row with a newer change waiting keeps PENDING. Only the
 * records of this batch are looked up in the log (by index), so the cost does
 * not grow with the backlog. */
static void
row_sql(sb *s, const char *schema, const mapping *m)
{
    sb qt = SB_INIT;
    pg_qname(&qt, schema, m->table);
    sb_puts(s, "WITH busy AS (");
    tlog_sql_waiting_records(s, schema, "$5", "$1::int[]", "$7::bigint[]");
    sb_printf(s,
              "), free AS (SELECT id FROM %s WHERE id = ANY($1::int[]) AND $6::boolean FOR UPDATE "
              "SKIP LOCKED)"
              " UPDATE %s t SET sfid = coalesce(t.sfid, u.sfid),"
              " \"_hc_lastop\" = CASE WHEN t.id IN (SELECT record_id FROM busy) THEN "
              "t.\"_hc_lastop\""
              " ELSE u.lastop END, \"_hc_err\" = u.err"
              " FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS u(rid, sfid, lastop, "
              "err)"
              " WHERE t.id = u.rid AND (NOT $6::boolean OR t.id IN (SELECT id FROM free)) "
              "RETURNING t.id",
              sb_str(&qt), sb_str(&qt));
    sb_free(&qt);
}

/* The rows of ops[i] for every i with sel[i]: sfid, _hc_lastop, _hc_err. With
 * skip_locked, rows an app holds a lock on are left alone and flagged in
 * *skipped (an array of n, caller's); without, the statement waits for them. */
static int
row_outcomes(const recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, const bool *sel,
             bool skip_locked, bool *skipped, err_t *e)
{
    row_batch b;
    row_batch_collect(&b, ops, n, sel);
    int rc = 0;
    if (b.n) {
        sb s = SB_INIT, a[4] = {SB_INIT, SB_INIT, SB_INIT, SB_INIT};
        row_sql(&s, r->schema, m);
        pg_i64_array(&a[0], b.rids, b.n);
        pg_text_array(&a[1], b.sfid, b.n);
        pg_text_array(&a[2], b.lastop, b.n);
        pg_text_array(&a[3], b.err, b.n);
        const char *p[] = {sb_str(&a[0]), sb_str(&a[1]), sb_str(&a[2]),
                           sb_str(&a[3]), m->table,      skip_locked ? "true" : "false",
                           sb_str(&b.own)};
        PGresult *res = pg_query(pg, e, sb_str(&s), 7, p);
        rc = res ? 0 : -1;
        if (res && skipped && (size_t)PQntuples(res) < b.n) {
            for (size_t i = 0; i < b.n; i++) {
                bool hit = false;
                for (int j = 0; j < PQntuples(res) && !hit; j++)
                    hit = atoll(PQgetvalue(res, j, 0)) == b.rids[i];
                skipped[b.at[i]] = !hit;
            }
        }
        PQclear(res);
        sb_free(&s);
        for (int i = 0; i < 4; i++)
            sb_free(&a[i]);
    }
    row_batch_free(&b);
    return rc;
}

/* Earlier failures of records that have now gone through are superseded. */
static int
supersede(const recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, err_t *e)
{
    int *ok = xcalloc(n + 1, sizeof *ok);
    size_t nok = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i]->out == OUT_OK)
            ok[nok++] = ops[i]->record_id;
    int rc = tlog_supersede_failures(pg, r->schema, m->table, ok, nok, e);
    free(ok);
    return rc;
}

/* One notification for the writes of this batch Salesforce refused (with the
 * batch's outcome, in its transaction: once per failure). */
static int
notice_failures(const recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, err_t *e)
{
    size_t failed = 0;
    const op *first = NULL;
    for (size_t i = 0; i < n; i++)
        if (ops[i]->out == OUT_FAILED) {
            failed++;
            if (!first)
                first = ops[i];
        }
    if (!failed)
        return 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "%zu write%s to %s refused by Salesforce (row %d: %.600s)", failed,
             failed == 1 ? "" : "s", m->table, first->record_id, first->msg ? first->msg : "?");
    return notices_add(pg, r->schema, "WRITE_FAILED", "error", m->object, msg, e);
}

/* The dashboard's counts of records written and refused (activity.c), kept
 * until the pass ends (recorder_flush): a statement less per collection. */
static void
count_activity(recorder *r, const mapping *m, op **ops, size_t n)
{
    int64_t ok = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        ok += ops[i]->out == OUT_OK;
        failed += ops[i]->out == OUT_FAILED;
    }
    pthread_mutex_lock(&r->mu);
    int k = 0;
    while (k < r->nact && strcmp(r->act[k].table, m->table) != 0)
        k++;
    if (k == r->nact && r->nact < ACT_TABLES) {
        snprintf(r->act[k].table, sizeof r->act[k].table, "%s", m->table);
        r->act[k].ok = r->act[k].failed = 0;
        r->nact++;
    }
    if (k < r->nact) { /* (else more tables than that in one pass: the charts miss some) */
        r->act[k].ok += ok;
        r->act[k].failed += failed;
    }
    pthread_mutex_unlock(&r->mu);
}

void
recorder_flush(recorder *r, PGconn *pg)
{
    pthread_mutex_lock(&r->mu);
    for (int k = 0; k < r->nact; k++) {
        err_t e;
        err_clear(&e);
        if (act_record(pg, r->schema, r->act[k].table, 0, r->act[k].ok, r->act[k].failed, -1, &e) !=
            0)
            log_debug("writer: activity of %s not recorded: %s", r->act[k].table, e.msg);
    }
    r->nact = 0;
    pthread_mutex_unlock(&r->mu);
}

/* Writes Salesforce resolved to a record another row already holds, or that
 * another op of this batch is given: two rows whose unique identifiers are one
 * to Salesforce (External IDs ignore case). The table holds an sfid once, so
 * the later row fails, naming the row that has the record, instead of the
 * whole recording failing on the unique index. */
static bool
clash_possible(const op *o)
{
    /* (an upsert can match a record already linked; an insert makes a new one) */
    return o->out == OUT_OK && o->kind == OP_UPSERT && o->new_sfid && o->row_exists;
}

static int
sfid_clashes(const recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, err_t *e)
{
    const char **ids = xcalloc(n + 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (clash_possible(ops[i]))
            ids[k++] = ops[i]->new_sfid;
    int rc = 0;
    if (k) {
        sb s = SB_INIT, qt = SB_INIT, arr = SB_INIT;
        pg_qname(&qt, r->schema, m->table);
        sb_printf(&s, "SELECT sfid, id FROM %s WHERE sfid = ANY($1::text[])", sb_str(&qt));
        pg_text_array(&arr, ids, k);
        const char *p[] = {sb_str(&arr)};
        PGresult *res = pg_query(pg, e, sb_str(&s), 1, p);
        rc = res ? 0 : -1;
        json_t *held = json_object(); /* sfid -> the row id that has it */
        for (int j = 0; res && j < PQntuples(res); j++)
            json_object_set_new(held, PQgetvalue(res, j, 0),
                                json_integer(atoll(PQgetvalue(res, j, 1))));
        for (size_t i = 0; rc == 0 && i < n; i++) {
            op *o = ops[i];
            if (!clash_possible(o))
                continue;
            json_t *h = json_object_get(held, o->new_sfid);
            if (!h) {
                json_object_set_new(held, o->new_sfid, json_integer(o->record_id));
                continue;
            }
            if (json_integer_value(h) == o->record_id)
                continue;
            char msg[600];
            snprintf(msg, sizeof msg,
                     "Salesforce wrote this row to record %s, which row %lld of %s already holds "
                     "(Salesforce reads both rows' %s as one: External IDs ignore case); give one "
                     "of them another value",
                     o->new_sfid, (long long)json_integer_value(h), m->table,
                     m->upsert_field ? m->upsert_field : "unique identifier");
            log_warn("writer: %s row %d: %s", m->table, o->record_id, msg);
            op_set_failed(o, "DUPLICATE_RECORD", msg, NULL);
            free(o->new_sfid);
            o->new_sfid = NULL;
        }
        json_decref(held);
        PQclear(res);
        sb_free(&s);
        sb_free(&qt);
        sb_free(&arr);
    }
    free(ids);
    return rc;
}

/* The rows are written only where no app holds a lock, so the writer never
 * waits for an app while holding locks of its own (no deadlock with an app's
 * multi-row transaction). A row an app had locked is flagged in skipped[] and
 * its entries stay PENDING: recorder_record_skipped writes it later, after
 * COMMIT, in a statement of its own that may wait for the app but holds
 * nothing it could be waiting for, and only then marks its entries done; a
 * crash in between is recovered like any insert in flight. */
int
recorder_record_some(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, bool *skipped,
                     err_t *e)
{
    if (n == 0)
        return 0;
    bool *done = xcalloc(n, sizeof *done);
    memset(skipped, 0, n * sizeof *skipped);
    int rc = pg_exec(pg, e, "BEGIN");
    if (rc == 0)
        rc = sfid_clashes(r, pg, m, ops, n, e);
    if (rc == 0)
        rc = row_outcomes(r, pg, m, ops, n, NULL, true, skipped, e);
    for (size_t i = 0; i < n; i++)
        done[i] = !skipped[i];
    if (rc == 0)
        rc = log_outcomes(r, pg, ops, n, done, e);
    if (rc == 0)
        rc = supersede(r, pg, m, ops, n, e);
    if (rc == 0)
        rc = notice_failures(r, pg, m, ops, n, e);
    rc = rc == 0 ? pg_exec(pg, e, "COMMIT") : (pg_rollback_quietly(pg), -1);
    if (rc == 0)
        count_activity(r, m, ops, n);
    free(done);
    return rc;
}

int
recorder_record_skipped(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n,
                        const bool *skipped, err_t *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!skipped[i])
            continue;
        bool one[1] = {true};
        rc = row_outcomes(r, pg, m, &ops[i], 1, one, false, NULL, e);
        if (rc == 0)
            rc = log_outcomes(r, pg, &ops[i], 1, NULL, e);
    }
    return rc;
}

int
recorder_record(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n, err_t *e)
{
    if (n == 0)
        return 0;
    bool *skipped = xcalloc(n, sizeof *skipped);
    int rc = recorder_record_some(r, pg, m, ops, n, skipped, e);
    if (rc == 0)
        rc = recorder_record_skipped(r, pg, m, ops, n, skipped, e);
    free(skipped);
    return rc;
}

/* ---- the recorder --------------------------------------------------------------------- */

recorder *
recorder_new(const char *schema, long backoff_cap_ms)
{
    recorder *r = xcalloc(1, sizeof *r);
    r->schema = xstrdup(schema);
    r->backoff_cap_ms = backoff_cap_ms;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void
recorder_free(recorder *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->schema);
    free(r);
}
