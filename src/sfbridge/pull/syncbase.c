/*
 * syncbase: what a sync run rests on (see syncbase.h).
 */
#include "syncbase.h"

#include <string.h>

#include "activity.h"
#include "log.h"
#include "pg.h"
#include "sfbulk.h"
#include "util.h"

/* A statement failed on pg (the sync's connection, or a load's loader's):
 * roll back and class the failure. */
int
sync_conn_failed(PGconn *pg, err_t *e)
{
    pg_rollback_quietly(pg);
    if (!e) /* the caller does not want to know (pg_transient needs the error) */
        return -1;
    /* A lost connection or a lock given up (to an app's transaction) is worth
     * retrying; a refused statement is not. */
    return err_class_set(e, pg_transient(pg, e) ? ERR_TRANSIENT : ERR_PERMANENT);
}

/* The same on the sync's own connection. */
int
sync_pg_failed(sync_ctx *x, err_t *e)
{
    return sync_conn_failed(x->pg, e);
}

bool
sync_stop_requested(const sync_ctx *x)
{
    return x->stop && *x->stop;
}

int
sync_stopped(sync_ctx *x, err_t *e)
{
    (void)x;
    err_set(e, 503, "STOPPED", "stopped by a signal");
    return err_class_set(e, ERR_TRANSIENT);
}

void
sync_progress(sync_ctx *x, const mapping *m, int64_t done, int64_t total)
{
    if (x->progress)
        x->progress(x->progress_ctx, m, done, total);
}

/* Rows committed from Salesforce, for the dashboard's charts (activity.c). A
 * count that cannot be recorded is not worth failing the work for. */
void
sync_counted_on(PGconn *pg, const sync_ctx *x, const mapping *m, int64_t rows, int64_t lag_ms)
{
    err_t ae;
    err_clear(&ae);
    if ((rows > 0 || lag_ms >= 0) &&
        act_record(pg, x->schema, m->table, rows, 0, 0, lag_ms, &ae) != 0)
        log_debug("%s: activity not recorded: %s", m->object, ae.msg);
}

/* Check the CSV header names the columns we asked for, in order. */
static int
check_header(sync_copy_sink *k, err_t *e)
{
    const char *p = sb_str(&k->header);
    size_t i = 0;
    while (*p && *p != '\r' && *p != '\n') {
        char name[256];
        size_t n = 0;
        bool q = *p == '"';
        if (q)
            p++;
        while (*p && (q ? *p != '"' : (*p != ',' && *p != '\r' && *p != '\n')) &&
               n < sizeof name - 1)
            name[n++] = *p++;
        name[n] = '\0';
        if (q && *p == '"')
            p++;
        if (i >= k->nf || !util_streq_ci(name, k->f[i]->name))
            return err_set(e, 502, "BAD_RESPONSE", "Bulk results column %zu is '%s', expected '%s'",
                           i + 1, name, i < k->nf ? k->f[i]->name : "(none)");
        i++;
        if (*p == ',')
            p++;
    }
    if (i != k->nf)
        return err_set(e, 502, "BAD_RESPONSE", "Bulk results have %zu columns, expected %zu", i,
                       k->nf);
    return 0;
}

int
sync_copy_sink_fn(void *ctx, const char *data, size_t len, err_t *e)
{
    sync_copy_sink *k = ctx;
    if (sync_stop_requested(k->x))
        return sync_stopped(k->x, e);
    if (!k->header_done) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        if (k->header.len + take > 65536)
            return err_set(e, 502, "BAD_RESPONSE", "Bulk results header line too long");
        sb_append(&k->header, data, take);
        if (!nl)
            return 0;
        k->header_done = true;
        if (check_header(k, e) != 0)
            return -1;
        data += take;
        len -= take;
    }
    for (const char *p = data, *end = data + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        k->lines++;
    if (len && pg_copy_put(k->pg, data, len, e) != 0)
        return -1;
    int64_t now = util_mono_ms();
    if (!k->quiet && now - k->last_ms >= 200) {
        k->last_ms = now;
        sync_progress(k->x, k->m, k->base_done + k->lines, k->m->load_total);
    }
    return 0;
}

void
sync_replace(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? xstrdup(v) : NULL;
}

/* Best-effort cleanup of a finished Bulk query job: Salesforce deletes it
 * after seven days anyway, so a failure is only logged. */
void
sync_drop_job(sync_ctx *x, const char *job)
{
    err_t e;
    err_clear(&e);
    if (sfbulk_query_delete(x->sf, job, &e) != 0)
        log_debug("deleting Bulk job %s failed (%s: %s); Salesforce drops it in time", job, e.code,
                  e.msg);
}
