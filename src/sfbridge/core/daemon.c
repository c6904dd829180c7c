/*
 * daemon: the sync loop (see daemon.h).
 */
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "capture.h"
#include "catalog.h"
#include "fsm.h"
#include "log.h"
#include "pg.h"
#include "retry.h"
#include "sdnotify.h"
#include "util.h"
#include "stream.h"
#include "webhook.h"
#include "writer.h"

/* One run of the loop: what its steps share. */
typedef struct daemon_run {
    app *a;
    daemon_mode mode;
    const char *const *objects; /* limit to these (nobj = 0: all) */
    size_t nobj;
    sync_progress_fn progress;
    void *progress_ctx;
    long drift_ms;
    int failures; /* actions that failed (foreground modes fail with the last) */
    int64_t started_ms;
    writer *w;
    stream *st;
    api *http;     /* the management API (SFBRIDGE_HTTP / run --http), or NULL */
    webhook *hook; /* notifications to SFBRIDGE_WEBHOOK_URL, or NULL */
    /* What the writer and stream threads watch: set when the process stops or
     * the configuration is reloaded (the threads start again after). */
    volatile sig_atomic_t threads_stop;
} daemon_run;

static bool
selected(const daemon_run *r, const mapping *m)
{
    if (r->nobj == 0)
        return true;
    for (size_t i = 0; i < r->nobj; i++)
        if (util_streq_ci(r->objects[i], m->object))
            return true;
    return false;
}

/* The class of a failed action, inside its error (an unclassed failure is
 * permanent: only the user can fix it). */
static err_class
action_class(const err_t *e)
{
    return e->cls == ERR_OK ? ERR_PERMANENT : e->cls;
}

static void
record_api_use(app *a, const mapping *m, uint64_t calls)
{
    err_t ue;
    /* The count only paces the daily budget; a lost update costs a little of it. */
    if (calls && cat_api_used(a->pg, a->cfg.schema, m->object, calls, &ue) != 0)
        log_warn("%s: API use not recorded: %s", m->object, ue.msg);
}

static void
on_failure(app *a, mapping *m, fsm_action act, err_class cls, const err_t *e)
{
    map_event ev = cls == ERR_AUTH        ? EV_FAIL_AUTH
                   : cls == ERR_TRANSIENT ? EV_FAIL_TRANSIENT
                                          : EV_FAIL_PERMANENT;
    long delay = cls == ERR_TRANSIENT ? retry_delay_ms(&retry_presets[RETRY_POLL], m->errors + 1,
                                                       a->cfg.backoff_cap_ms)
                                      : 10 * a->cfg.backoff_cap_ms;
    char msg[ERR_MSG_MAX + ERR_CODE_MAX + 4];
    snprintf(msg, sizeof msg, "%s: %s", e->code, e->msg);
    log_msg(cls == ERR_TRANSIENT ? LOG_WARN : LOG_ERROR,
            "%s: %s failed (%s), next attempt in %.1f s", m->object, fsm_action_name(act), msg,
            (double)delay / 1000.0);
    cat_cols cols = {0};
    cat_cols_failure(&cols, msg, delay);
    err_t we;
    if (fsm_fire(a->pg, a->cfg.schema, m, ev, &cols, &we) != 0)
        log_warn("%s: failure not recorded: %s", m->object, we.msg);
    int rc = 0;
    if (cls == ERR_AUTH)
        rc = cat_set_conn_state(a->pg, a->cfg.schema, CS_NEED_AUTHENTICATION, msg, &we);
    else if (cls == ERR_TRANSIENT && (strcmp(e->code, "NETWORK_ERROR") == 0 || e->http >= 500))
        rc = cat_set_conn_state(a->pg, a->cfg.schema, CS_OFFLINE, msg, &we);
    if (rc != 0)
        log_warn("connection state not recorded: %s", we.msg);
}

/* A poll when the daily API budget is spent: put off until tomorrow. */
static int
budget_spent(app *a, mapping *m, err_t *e)
{
    log_warn("%s: the daily API budget (%ld calls) is used up; polling again tomorrow", m->object,
             m->max_daily);
    cat_cols cols = {0};
    cat_cols_budget_spent(&cols);
    return fsm_fire(a->pg, a->cfg.schema, m, EV_BUDGET_SPENT, &cols, e);
}

static int
run_sync(sync_ctx *x, mapping *m, fsm_action act, err_t *e)
{
    int64_t n = 0;
    int rc = 0;
    switch (act) {
    case ACT_LOAD: return sync_load(x, m, e);
    case ACT_RELOAD: return sync_reload(x, m, e);
    case ACT_BACKFILL: return sync_backfill(x, m, e);
    case ACT_POLL:
        rc = sync_poll(x, m, &n, e);
        if (rc == 0 && n)
            log_info("%s: %lld changes applied", m->object, (long long)n);
        return rc;
    case ACT_DRIFT:
        rc = sync_drift(x, m, &n, e);
        if (rc == 0 && fsm_fire(x->pg, x->schema, m, EV_DRIFT_DONE, NULL, e) != 0) {
            rc = -1; /* fsm_fire's err_t carries the class (pg_fail) */
        }
        return rc;
    case ACT_NONE: break;
    }
    return 0;
}

/* Run one action for one mapping. 0 ok, -1 failed (recorded). */
static int
run_action(app *a, sync_ctx *x, mapping *m, fsm_action act, err_t *e)
{
    uint64_t before = sfapi_calls(x->sf);
    if (act != ACT_POLL || m->state != MS_DATA_SYNCED)
        log_info("%s: %s", m->object, fsm_action_name(act));
    map_event start = fsm_action_event(act);
    int rc = 0;
    if (start != EV_COUNT && fsm_fire(a->pg, a->cfg.schema, m, start, NULL, e) != 0) {
        rc = -1; /* fsm_fire's err_t carries the class (pg_fail) */
    }
    if (rc == 0 && act == ACT_POLL && m->api_calls >= m->max_daily)
        return budget_spent(a, m, e);
    if (rc == 0)
        rc = run_sync(x, m, act, e);
    record_api_use(a, m, sfapi_calls(x->sf) - before);
    if (rc != 0) {
        if (!(app_stop && strcmp(e->code, "STOPPED") == 0) && !pg_connection_lost(a->pg))
            on_failure(a, m, act, action_class(e), e);
        return -1;
    }
    return 0;
}

/* Wait until timeout_ms passes, a notification arrives, or a signal.
 * true when a control NOTIFY arrived (a command changed the mappings). */
static bool
wait_for_work(PGconn *c, int64_t timeout_ms)
{
    if (timeout_ms <= 0)
        return false;
    int fd = PQsocket(c);
    if (fd < 0) {
        usleep(100000);
        return false;
    }
    /* A control NOTIFY that came in during the pass counts (it used to be
     * seen only when the wait timed out). */
    return pg_wait_notify(c, timeout_ms);
}

static void
heartbeat(app *a, conn_state state)
{
    err_t he;
    /* A missed heartbeat only makes `status` doubt the daemon for a moment. */
    if (cat_heartbeat(a->pg, a->cfg.schema, state, &he) != 0)
        log_debug("heartbeat not recorded: %s", he.msg);
}

/* Reconnect to Postgres until it answers or we are told to stop. */
static int
pg_recover(app *a, err_t *e)
{
    int tries = 0;
    while (!app_stop) {
        err_t ce;
        if (app_pg_reconnect(a, &ce)) {
            log_info("reconnected to Postgres");
            if (pg_exec(a->pg, e, "LISTEN sfbridge_control") != 0 || app_lock(a, e) != 0)
                return -1;
            return 0;
        }
        long d = retry_delay_ms(&retry_presets[RETRY_PG], ++tries, a->cfg.backoff_cap_ms);
        log_warn("Postgres is unreachable (%s); retrying in %.1f s", ce.msg, (double)d / 1000.0);
        usleep((useconds_t)d * 1000);
    }
    return err_set(e, 503, "STOPPED", "stopped by a signal");
}

/* Salesforce refused or could not be reached: show it on the connection. */
static void
login_failed(app *a, const err_t *le)
{
    err_t ce;
    conn_state cs = le->cls == ERR_AUTH ? CS_NEED_AUTHENTICATION : CS_OFFLINE;
    if (cat_set_conn_state(a->pg, a->cfg.schema, cs, le->msg, &ce) != 0)
        log_warn("connection state not recorded: %s", ce.msg);
}

/* Connect, lock the schema, check the objects named, start the threads. */
static int
daemon_start(daemon_run *r, err_t *e)
{
    app *a = r->a;
    if (!app_pg(a, e) || app_lock(a, e) != 0)
        return -1;
    if (!app_sf(a, e)) {
        login_failed(a, e);
        if (r->mode != DAEMON_RUN)
            return -1;
    }
    if (pg_exec(a->pg, e, "LISTEN sfbridge_control") != 0)
        return -1;
    /* Objects named on the command line must be mapped. */
    for (size_t i = 0; i < r->nobj; i++) {
        mapping *one = NULL;
        size_t n1 = 0;
        if (cat_load_any(a->pg, a->cfg.schema, r->objects[i], &one, &n1, e) != 0)
            return -1;
        mapping_free_all(one, n1);
        if (!n1)
            return err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                           r->objects[i]);
    }
    if (r->mode != DAEMON_RUN)
        return 0;
    /* Tables made by older versions get the current capture triggers; writes
     * a dead process left in flight are marked as of unknown outcome before
     * anything is pulled. */
    if (cap_install_all(a->pg, a->cfg.schema, e) != 0 ||
        writer_recover(a->pg, a->cfg.schema, e) != 0)
        return -1;
    if (r->http) /* kept through a reload */
        api_update(r->http, &a->cfg, a->config_path);
    else if (a->cfg.http_listen &&
             !(r->http = api_start(&a->cfg, a->config_path, r->started_ms, e)))
        return -1;
    r->threads_stop = 0;
    if (a->cfg.webhook_url && !(r->hook = webhook_start(&a->cfg, &r->threads_stop)))
        log_error("cannot start the webhook thread; notifications are recorded, not sent");
    r->w = writer_new(&a->cfg, &r->threads_stop);
    if (writer_start(r->w) != 0) {
        writer_free(r->w);
        r->w = NULL;
        return err_set(e, 500, "THREAD", "cannot start the writer thread");
    }
    r->st = stream_new(&a->cfg, &r->threads_stop);
    if (stream_start(r->st) != 0) {
        stream_free(r->st);
        r->st = NULL;
        log_error("cannot start the streaming thread; accelerated mappings are polled only");
    }
    if (a->sf && sfapi_org_id(a->sf)[0])
        log_info("sfbridge syncing schema %s with org %s at %s (Ctrl-C or SIGTERM stops)",
                 a->cfg.schema, sfapi_org_id(a->sf), sfapi_instance_url(a->sf));
    else
        log_info("sfbridge syncing schema %s (Ctrl-C or SIGTERM stops)", a->cfg.schema);
    return 0;
}

/* A mapping whose catalog row cannot be used: BAD_CONFIG with the reason (once). */
static void
mark_bad(daemon_run *r, mapping *m, err_t *e)
{
    if (r->mode != DAEMON_RUN) {
        r->failures++;
        err_set(e, 500, "BAD_CATALOG", "%s: %s", m->object, m->bad);
    }
    if (m->state == MS_BAD_CONFIG && m->last_error && strcmp(m->last_error, m->bad) == 0)
        return;
    log_error("%s: %s; this mapping stops until it is fixed (sfbridge mapping remove, then add)",
              m->object, m->bad);
    cat_cols cols = {0};
    cat_cols_bad_row(&cols, m->bad);
    err_t be;
    if (fsm_fire(r->a->pg, r->a->cfg.schema, m, EV_BAD_ROW, &cols, &be) != 0)
        log_warn("%s: BAD_CONFIG not recorded: %s", m->object, be.msg);
}

/* Run what the mappings need, in turn. *next: when the next mapping is due.
 * Returns whether anything ran. */
static bool
run_mappings(daemon_run *r, mapping **ms, size_t *n, int64_t *next, err_t *e)
{
    app *a = r->a;
    sync_ctx x = {.pg = a->pg,
                  .sf = a->sf,
                  .cfg = &a->cfg,
                  .schema = a->cfg.schema,
                  .stop = &app_stop,
                  .progress = r->progress,
                  .progress_ctx = r->progress_ctx};
    bool worked = false;
    for (size_t i = 0; i < *n && !app_stop; i++) {
        mapping *m = &(*ms)[i];
        if (!selected(r, m))
            continue;
        if (m->bad) {
            mark_bad(r, m, e);
            continue;
        }
        fsm_action act = fsm_decide(m, r->mode, util_now_ms(), r->drift_ms);
        if (act == ACT_NONE)
            continue;
        if (!worked)
            heartbeat(a, act == ACT_LOAD || act == ACT_RELOAD ? CS_BUSY : CS_POLLING);
        worked = true;
        err_t ae;
        err_clear(&ae);
        if (run_action(a, &x, m, act, &ae) != 0) {
            r->failures++;
            if (r->mode != DAEMON_RUN)
                *e = ae;
        } else if (r->mode == DAEMON_ONCE && act == ACT_LOAD) {
            /* --once: a fresh load is followed by its one poll. */
            i--;
            mapping_free_all(*ms, *n);
            *ms = NULL;
            *n = 0;
            err_t le;
            if (cat_load_any(a->pg, a->cfg.schema, NULL, ms, n, &le) != 0)
                break;
            continue;
        }
        if (r->mode != DAEMON_RUN)
            continue;
        /* Go round again at once: loads and polls are done in turn. */
        *next = util_now_ms();
        break;
    }
    return worked;
}

/* One pass of the loop. 0 to go on, 1 when done (foreground modes), -1 fatal. */
static int
daemon_pass(daemon_run *r, err_t *e)
{
    app *a = r->a;
    if (pg_connection_lost(a->pg) && pg_recover(a, e) != 0)
        return -1;
    if (!a->sf || !a->org_checked) {
        err_t le;
        if (!app_sf(a, &le)) {
            login_failed(a, &le);
            log_warn("cannot log in to Salesforce: %s", le.msg);
            wait_for_work(a->pg, a->cfg.backoff_cap_ms);
            return 0;
        }
    }
    bool paused = false;
    mapping *ms = NULL;
    size_t n = 0;
    err_t le;
    if (cat_conn_paused(a->pg, a->cfg.schema, &paused, &le) != 0 ||
        cat_load_any(a->pg, a->cfg.schema, NULL, &ms, &n, &le) != 0) {
        if (pg_connection_lost(a->pg))
            return 0;
        *e = le;
        return -1;
    }
    int64_t next = util_now_ms() + 5000;
    bool worked = false;
    if (paused) {
        heartbeat(a, CS_PAUSED);
    } else {
        worked = run_mappings(r, &ms, &n, &next, e);
        heartbeat(a, CS_IDLE);
        for (size_t i = 0; i < n; i++)
            if (!ms[i].paused && !ms[i].bad && ms[i].next_poll_ms && ms[i].next_poll_ms < next)
                next = ms[i].next_poll_ms;
    }
    mapping_free_all(ms, n);
    if (r->mode != DAEMON_RUN)
        return 1;
    if (!worked && wait_for_work(a->pg, next - util_now_ms()))
        stream_wake(r->st); /* a new or changed mapping streams without waiting for the held poll */
    return 0;
}

/* Stop and join the writer, stream and API threads (the API's listener
 * stays when keep_http: a reload that does not change it). */
static void
stop_threads(daemon_run *r, bool keep_http)
{
    app *a = r->a;
    r->threads_stop = 1;
    bool pg_ok = a->pg && !pg_connection_lost(a->pg);
    if (r->w) {
        /* Wake the writer so it sees the stop at once. */
        sb chan = SB_INIT, sql = SB_INIT;
        cap_channel(&chan, a->cfg.schema);
        sb_puts(&sql, "NOTIFY ");
        sb_sql_ident(&sql, sb_str(&chan));
        /* Without the wake-up the writer still stops, at its next sweep. */
        if (pg_ok)
            (void)pg_exec(a->pg, NULL, sb_str(&sql));
        sb_free(&chan);
        sb_free(&sql);
        writer_join(r->w);
        writer_free(r->w);
        r->w = NULL;
    }
    if (r->st) {
        stream_join(r->st);
        stream_free(r->st);
        r->st = NULL;
    }
    if (!keep_http) {
        api_stop(r->http);
        r->http = NULL;
    }
    webhook_stop(r->hook);
    r->hook = NULL;
}

/* SIGHUP: read the settings again and start over with them (threads, the
 * connections, the lock), as a restart would but in the same process. Bad
 * settings are refused with the reason and the old ones kept. */
static int
daemon_reload(daemon_run *r, err_t *e)
{
    app *a = r->a;
    err_t ce;
    if (sdnotify_reloading(&ce) != 0)
        log_debug("sdnotify: %s", ce.msg);
    cfg fresh;
    if (app_reload_config(a, &fresh, &ce) != 0) {
        log_error("configuration not reloaded (the current one stays): %s", ce.msg);
        cfg_free(&fresh);
    } else {
        log_info("reloading the configuration (SIGHUP)");
        /* The dashboard's listener stays up through a reload that keeps its
         * address and token: pages open in a browser go on working. */
        stop_threads(r, r->http && api_same_listener(r->http, &fresh));
        app_replace_config(a, &fresh);
        r->drift_ms = a->cfg.drift_seconds * 1000;
        if (daemon_start(r, e) != 0)
            return -1;
    }
    if (sdnotify_ready("syncing", &ce) != 0)
        log_debug("sdnotify: %s", ce.msg);
    return 0;
}

/* The one way out: stop and join the threads, clear the heartbeat, say why. */
static int
daemon_stop(daemon_run *r, int rc, err_t *e)
{
    app *a = r->a;
    bool fatal = rc != 0 && !(app_stop && strcmp(e->code, "STOPPED") == 0);
    err_t ce;
    if (r->mode == DAEMON_RUN && sdnotify_stopping(&ce) != 0)
        log_debug("sdnotify: %s", ce.msg);
    stop_threads(r, false);
    bool pg_ok = a->pg && !pg_connection_lost(a->pg);
    char why[ERR_MSG_MAX + ERR_CODE_MAX + 4];
    snprintf(why, sizeof why, "%s: %s", e->code, e->msg);
    /* Every mode records a heartbeat while it works (load, poll, ...), so
     * every mode clears its own on the way out. */
    if (pg_ok && cat_heartbeat_clear(a->pg, a->cfg.schema, fatal ? why : NULL, &ce) != 0)
        log_warn("heartbeat not cleared (status may say running for 30 s): %s", ce.msg);
    if (r->mode == DAEMON_RUN) {
        if (fatal)
            log_error("sfbridge stopped: %s", why);
        else
            log_info("sfbridge stopped: %s", app_stop ? "stopped by a signal" : "done");
    }
    if (fatal)
        return -1;
    return r->mode != DAEMON_RUN && r->failures ? -1 : 0;
}

int
daemon_main(app *a, daemon_mode mode, const char *const *objects, size_t nobj,
            sync_progress_fn progress, void *progress_ctx, err_t *e)
{
    daemon_run r = {.a = a,
                    .mode = mode,
                    .objects = objects,
                    .nobj = nobj,
                    .progress = progress,
                    .progress_ctx = progress_ctx,
                    .drift_ms = a->cfg.drift_seconds * 1000,
                    .started_ms = util_now_ms()};
    int rc = daemon_start(&r, e);
    err_t ne;
    if (rc == 0 && mode == DAEMON_RUN && sdnotify_ready("syncing", &ne) != 0)
        log_debug("sdnotify: %s", ne.msg);
    while (rc == 0 && !app_stop) {
        if (app_reload && mode == DAEMON_RUN) {
            app_reload = 0;
            if ((rc = daemon_reload(&r, e)) != 0)
                break;
        }
        int p = daemon_pass(&r, e);
        if (p != 0) {
            rc = p < 0 ? -1 : 0;
            break;
        }
    }
    if (rc == 0 && app_stop && mode == DAEMON_RUN)
        err_set(e, 503, "STOPPED", "stopped by a signal");
    return daemon_stop(&r, rc, e);
}
