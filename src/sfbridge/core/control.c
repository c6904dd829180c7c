/*
 * control: pause, resume, reload (see control.h).
 */
#include "control.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "catalog.h"
#include "fsm.h"
#include "pg.h"
#include "tlog.h"
#include "util.h"

static const char *const names[] = {
    [CONTROL_PAUSE] = "pause",
    [CONTROL_RESUME] = "resume",
    [CONTROL_RELOAD] = "reload",
};

int
control_parse(const char *name)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

/* One mapping's change: resume clears a failure state (EV_RESUME), reload
 * asks for RELOAD_TABLE (EV_RELOAD_REQUEST); pause is a flag, not a state. */
static int
mapping_change(app *a, mapping *m, control_action what, err_t *e)
{
    cat_cols cols = {0};
    switch (what) {
    case CONTROL_PAUSE: return cat_set_paused(a->pg, a->cfg.schema, m->object, true, e);
    case CONTROL_RESUME:
        cat_cols_resume(&cols);
        return fsm_fire(a->pg, a->cfg.schema, m, EV_RESUME, &cols, e);
    case CONTROL_RELOAD:
        cat_cols_reload_request(&cols);
        return fsm_fire(a->pg, a->cfg.schema, m, EV_RELOAD_REQUEST, &cols, e);
    }
    return 0;
}

int
control_apply(app *a, const char *object, control_action what, err_t *e)
{
    if (!app_pg(a, e))
        return -1;
    int rc;
    if (object) {
        mapping *m = NULL;
        size_t n = 0;
        if (cat_load_any(a->pg, a->cfg.schema, object, &m, &n, e) != 0)
            return -1;
        rc = n ? mapping_change(a, m, what, e)
               : err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                         object);
        mapping_free_all(m, n);
    } else if (what == CONTROL_RELOAD) {
        rc = err_set(e, 400, "BAD_REQUEST", "reload needs a mapped object");
    } else {
        rc = cat_set_conn_paused(a->pg, a->cfg.schema, what == CONTROL_PAUSE, e);
    }
    if (rc == 0)
        rc = cat_notify(a->pg, a->cfg.schema, e);
    return rc;
}

/* ---- asking the running daemon ------------------------------------------------ */

static const char *const ask_names[] = {
    [ASK_LOAD] = "load",
    [ASK_POLL] = "poll",
    [ASK_DRIFT] = "check for drift",
    [ASK_PUSH] = "write the waiting changes",
};

static bool
selected(const mapping *m, const char *const *objects, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (util_streq_ci(objects[i], m->object))
            return true;
    return n == 0;
}

/* Postgres's clock, ms since the epoch (the catalog's times are its). */
static int
pg_now_ms(PGconn *c, int64_t *ms, err_t *e)
{
    PGresult *r = pg_query(c, e, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", 0,
                           NULL);
    if (!r)
        return -1;
    *ms = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Whether m shows the asked work done since asked_ms. */
static bool
done_since(const mapping *m, control_ask what, int64_t asked_ms)
{
    bool loading = !m->loaded || m->state == MS_INITIAL || m->state == MS_LOADING ||
                   m->state == MS_RELOAD_TABLE || m->state == MS_RESYNC;
    if (m->paused || m->state == MS_BAD_CONFIG || m->state == MS_NEED_AUTHENTICATION)
        return true; /* nothing will happen: said below */
    switch (what) {
    case ASK_LOAD: return !loading;
    case ASK_POLL: return !loading && m->next_poll_ms > asked_ms + 1000;
    case ASK_DRIFT: return !loading && m->last_drift_ms > asked_ms;
    case ASK_PUSH: return true;
    }
    return true;
}

/* Set the selected mappings' work due, and wake the daemon (and its writer). */
static int
ask(app *a, control_ask what, const char *const *objects, size_t n, err_t *e)
{
    mapping *ms = NULL;
    size_t nm = 0;
    if (cat_load(a->pg, a->cfg.schema, NULL, &ms, &nm, e) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0; i++) {
        if (!selected(&ms[i], objects, n))
            continue;
        if (what == ASK_POLL)
            rc = cat_poll_soon(a->pg, a->cfg.schema, ms[i].object, e);
        else if (what == ASK_DRIFT)
            rc = cat_drift_soon(a->pg, a->cfg.schema, ms[i].object, e);
    }
    mapping_free_all(ms, nm);
    if (rc == 0)
        rc = cat_notify(a->pg, a->cfg.schema, e);
    if (rc == 0 && what == ASK_PUSH) {
        sb chan = SB_INIT, sql = SB_INIT;
        cap_channel(&chan, a->cfg.schema);
        sb_puts(&sql, "NOTIFY ");
        sb_sql_ident(&sql, sb_str(&chan));
        rc = pg_exec(a->pg, e, sb_str(&sql));
        sb_free(&chan);
        sb_free(&sql);
    }
    return rc;
}

/* Whether everything asked is done; what is not yet, in *left. */
static int
check_done(app *a, control_ask what, const char *const *objects, size_t n, int64_t asked_ms,
           bool *done, err_t *e)
{
    if (what == ASK_PUSH) {
        int64_t waiting = 0;
        if (tlog_waiting(a->pg, a->cfg.schema, &waiting, e) != 0)
            return -1;
        *done = waiting == 0;
        return 0;
    }
    mapping *ms = NULL;
    size_t nm = 0;
    if (cat_load(a->pg, a->cfg.schema, NULL, &ms, &nm, e) != 0)
        return -1;
    *done = true;
    for (size_t i = 0; i < nm; i++)
        if (selected(&ms[i], objects, n) && !done_since(&ms[i], what, asked_ms))
            *done = false;
    mapping_free_all(ms, nm);
    return 0;
}

int
control_via_daemon(app *a, control_ask what, const char *const *objects, size_t n, int timeout_s,
                   FILE *out, err_t *e)
{
    int64_t asked_ms; /* after asking: a poll made since has its next poll later than a second on */
    if (!app_pg(a, e) || ask(a, what, objects, n, e) != 0 || pg_now_ms(a->pg, &asked_ms, e) != 0)
        return -1;
    fprintf(out, "a running sfbridge daemon syncs schema %s: asked it to %s\n", a->cfg.schema,
            ask_names[what]);
    fflush(out);
    for (int64_t waited = 0; !app_stop; waited += 200) {
        bool done = false;
        if (check_done(a, what, objects, n, asked_ms, &done, e) != 0)
            return -1;
        if (done) {
            fprintf(out, "done (sfbridge status shows the details)\n");
            return 0;
        }
        if (waited >= (int64_t)timeout_s * 1000)
            return err_set(e, 504, "TIMEOUT",
                           "the daemon has not finished after %d s; it goes on (sfbridge status "
                           "shows where it is)",
                           timeout_s);
        usleep(200000);
    }
    return err_set(e, 503, "STOPPED", "stopped waiting (the daemon goes on)");
}
