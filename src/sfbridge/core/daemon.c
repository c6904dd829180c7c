/*
 * daemon: the sync loop (see daemon.h).
 */
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "capture.h"
#include "catalog.h"
#include "log.h"
#include "pg.h"
#include "util.h"
#include "stream.h"
#include "writer.h"

typedef enum { ACT_NONE, ACT_LOAD, ACT_RELOAD, ACT_BACKFILL, ACT_POLL, ACT_DRIFT } action;

static const char *const action_names[] = {"none", "initial load", "reload", "backfill", "poll", "drift check"};
/* The state a mapping shows while an action runs. */
static const char *const action_states[] = {NULL, "LOADING", "RELOAD_TABLE", "RESYNC", "POLLING_SF_CHANGES",
                                            "DRIFT_CHECK"};

static bool
state_is(const mapping *m, const char *s)
{
    return m->state && strcmp(m->state, s) == 0;
}

/* What a mapping needs next. Structural work (load, reload, backfill) comes
 * before polls; after a failure nothing runs before its retry time. */
static action
decide(const mapping *m, daemon_mode mode, int64_t now, long drift_ms)
{
    if (m->paused || state_is(m, "PAUSED"))
        return ACT_NONE;
    bool due = m->next_poll_ms == 0 || now >= m->next_poll_ms || mode != DAEMON_RUN;
    if (m->errors > 0 && !due)
        return ACT_NONE;
    if (state_is(m, "BAD_CONFIG") && mode == DAEMON_RUN && !due)
        return ACT_NONE;
    if (!m->loaded)
        return ACT_LOAD;
    if (state_is(m, "RELOAD_TABLE"))
        return ACT_RELOAD;
    if (m->resync)
        return ACT_BACKFILL;
    switch (mode) {
    case DAEMON_LOAD:
        return ACT_NONE;
    case DAEMON_DRIFT:
        return ACT_DRIFT;
    case DAEMON_ONCE:
    case DAEMON_POLL:
        return ACT_POLL;
    case DAEMON_RUN:
        if (due)
            return ACT_POLL;
        if (drift_ms > 0 && now - m->last_drift_ms >= drift_ms)
            return ACT_DRIFT;
        return ACT_NONE;
    }
    return ACT_NONE;
}

static bool
selected(const mapping *m, const char *const *objects, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (util_streq_ci(objects[i], m->object))
            return true;
    return false;
}

static void
record_api_use(app *a, const mapping *m, uint64_t calls)
{
    if (!calls)
        return;
    char n[24];
    snprintf(n, sizeof n, "%llu", (unsigned long long)calls);
    const char *p[] = {m->object, n};
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    pg_qname(&s, a->cfg.schema, "_sfbridge_mapping");
    sb_puts(&s, " SET api_calls = CASE WHEN api_day = (now() AT TIME ZONE 'UTC')::date THEN api_calls ELSE 0 END"
                " + $2::int, api_day = (now() AT TIME ZONE 'UTC')::date WHERE object_name = $1");
    pg_run(a->pg, NULL, sb_str(&s), 2, p);
    sb_free(&s);
}

/* Capped exponential backoff with jitter: half fixed, half random. */
static long
backoff_ms(const app *a, int errors)
{
    long cap = a->cfg.backoff_cap_ms;
    long d = 1000;
    for (int i = 1; i < errors && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    uint32_t r;
    util_random(&r, sizeof r);
    return d / 2 + (long)(r % (uint32_t)(d / 2 + 1));
}

static void
on_failure(app *a, const mapping *m, action act, sfapi_class cls, const err_t *e)
{
    const char *state = cls == SFAPI_AUTH ? "NEED_AUTHENTICATION" : cls == SFAPI_TRANSIENT ? "RETRYING" : "BAD_CONFIG";
    long delay = cls == SFAPI_TRANSIENT ? backoff_ms(a, m->errors + 1) : 10 * a->cfg.backoff_cap_ms;
    char msg[ERR_MSG_MAX + ERR_CODE_MAX + 4], dl[24];
    snprintf(msg, sizeof msg, "%s: %s", e->code, e->msg);
    snprintf(dl, sizeof dl, "%ld", delay);
    log_msg(cls == SFAPI_TRANSIENT ? LOG_WARN : LOG_ERROR, "%s: %s failed (%s), next attempt in %.1f s", m->object,
            action_names[act], msg, (double)delay / 1000.0);
    const char *p[] = {m->object, state, msg, dl};
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    pg_qname(&s, a->cfg.schema, "_sfbridge_mapping");
    sb_puts(&s, " SET state = CASE WHEN state = 'RELOAD_TABLE' AND $2 = 'RETRYING' THEN state ELSE $2 END,"
                " last_error = $3, errors = errors + 1,"
                " next_poll_at = now() + make_interval(secs => $4::double precision / 1000) WHERE object_name = $1");
    pg_run(a->pg, NULL, sb_str(&s), 4, p);
    sb_free(&s);
    if (cls == SFAPI_AUTH)
        cat_set_conn_state(a->pg, a->cfg.schema, "NEED_AUTHENTICATION", msg, NULL);
    else if (cls == SFAPI_TRANSIENT && (strcmp(e->code, "NETWORK_ERROR") == 0 || e->http >= 500))
        cat_set_conn_state(a->pg, a->cfg.schema, "OFFLINE", msg, NULL);
}

/* Run one action for one mapping. 0 ok, -1 failed (recorded). */
static int
run_action(app *a, sync_ctx *x, mapping *m, action act, err_t *e)
{
    uint64_t before = sfapi_calls(x->sf);
    if (act != ACT_POLL || !state_is(m, "DATA_SYNCED"))
        log_info("%s: %s", m->object, action_names[act]);
    if (act != ACT_LOAD && act != ACT_RELOAD)
        cat_set_state(a->pg, a->cfg.schema, m->object, action_states[act], m->last_error, NULL);
    int rc = 0;
    int64_t n = 0;
    switch (act) {
    case ACT_LOAD:
        rc = sync_load(x, m, e);
        break;
    case ACT_RELOAD:
        rc = sync_reload(x, m, e);
        break;
    case ACT_BACKFILL:
        rc = sync_backfill(x, m, e);
        break;
    case ACT_POLL:
        if (m->api_calls >= m->max_daily) {
            log_warn("%s: the daily API budget (%ld calls) is used up; polling again tomorrow", m->object,
                     m->max_daily);
            const char *p[] = {m->object};
            sb s = SB_INIT;
            sb_puts(&s, "UPDATE ");
            pg_qname(&s, a->cfg.schema, "_sfbridge_mapping");
            sb_puts(&s, " SET state = 'DATA_SYNCED', last_error = 'daily API budget used up',"
                        " next_poll_at = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'"
                        " WHERE object_name = $1");
            pg_run(a->pg, NULL, sb_str(&s), 1, p);
            sb_free(&s);
            return 0;
        }
        rc = sync_poll(x, m, &n, e);
        if (rc == 0 && n)
            log_info("%s: %lld changes applied", m->object, (long long)n);
        break;
    case ACT_DRIFT:
        rc = sync_drift(x, m, &n, e);
        if (rc == 0) {
            const char *p[] = {m->object};
            sb s = SB_INIT;
            sb_puts(&s, "UPDATE ");
            pg_qname(&s, a->cfg.schema, "_sfbridge_mapping");
            sb_puts(&s, " SET state = 'DATA_SYNCED' WHERE object_name = $1 AND state = 'DRIFT_CHECK'");
            pg_run(a->pg, NULL, sb_str(&s), 1, p);
            sb_free(&s);
        }
        break;
    case ACT_NONE:
        break;
    }
    record_api_use(a, m, sfapi_calls(x->sf) - before);
    if (rc != 0) {
        if (x->fail == SFAPI_OK)
            x->fail = SFAPI_PERMANENT;
        if (!(app_stop && strcmp(e->code, "STOPPED") == 0) && !pg_connection_lost(a->pg))
            on_failure(a, m, act, x->fail, e);
        return -1;
    }
    return 0;
}

/* Wait until timeout_ms passes, a notification arrives, or a signal. */
static void
wait_for_work(PGconn *c, int64_t timeout_ms)
{
    if (timeout_ms <= 0)
        return;
    int fd = PQsocket(c);
    if (fd < 0) {
        usleep(100000);
        return;
    }
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
    int n = select(fd + 1, &rd, NULL, NULL, &tv);
    if (n > 0) {
        PQconsumeInput(c);
        PGnotify *nt;
        while ((nt = PQnotifies(c)) != NULL)
            PQfreemem(nt);
    }
}

static void
heartbeat(app *a, const char *state)
{
    char pid[16], host[256] = "";
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    gethostname(host, sizeof host - 1);
    const char *p[] = {pid, host, state};
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    pg_qname(&s, a->cfg.schema, "_sfbridge_connection");
    sb_puts(&s, " SET daemon_pid = $1::int, daemon_host = $2, heartbeat_at = now(),"
                " state = CASE WHEN state IN ('NEED_AUTHENTICATION', 'OFFLINE') AND $3 = 'IDLE' THEN state ELSE $3 END");
    pg_run(a->pg, NULL, sb_str(&s), 3, p);
    sb_free(&s);
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
        long d = backoff_ms(a, ++tries);
        log_warn("Postgres is unreachable (%s); retrying in %.1f s", ce.msg, (double)d / 1000.0);
        usleep((useconds_t)d * 1000);
    }
    return err_set(e, 503, "STOPPED", "stopped by a signal");
}

int
daemon_main(app *a, daemon_mode mode, const char *const *objects, size_t nobj, sync_progress_fn progress,
            void *progress_ctx, err_t *e)
{
    if (!app_pg(a, e) || app_lock(a, e) != 0)
        return -1;
    sfapi *sf = app_sf(a, e);
    if (!sf) {
        cat_set_conn_state(a->pg, a->cfg.schema, sfapi_last_class(a->sf) == SFAPI_AUTH ? "NEED_AUTHENTICATION" : "OFFLINE",
                           e->msg, NULL);
        if (mode != DAEMON_RUN)
            return -1;
    }
    if (pg_exec(a->pg, e, "LISTEN sfbridge_control") != 0)
        return -1;
    /* Objects named on the command line must be mapped. */
    for (size_t i = 0; i < nobj; i++) {
        mapping *one = NULL;
        size_t n1 = 0;
        if (cat_load(a->pg, a->cfg.schema, objects[i], &one, &n1, e) != 0)
            return -1;
        mapping_free_all(one, n1);
        if (!n1)
            return err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)", objects[i]);
    }
    long drift_ms = a->cfg.drift_seconds * 1000;
    int failures = 0;
    writer *w = NULL;
    stream *st = NULL;
    if (mode == DAEMON_RUN) {
        /* Tables made by older versions get the current capture triggers; writes
         * a dead process left in flight are marked as of unknown outcome before
         * anything is pulled. */
        if (cap_install_all(a->pg, a->cfg.schema, e) != 0 || writer_recover(a->pg, a->cfg.schema, e) != 0)
            return -1;
        w = writer_new(&a->cfg, &app_stop);
        if (writer_start(w) != 0) {
            writer_free(w);
            return err_set(e, 500, "THREAD", "cannot start the writer thread");
        }
        st = stream_new(&a->cfg, &app_stop);
        if (stream_start(st) != 0) {
            stream_free(st);
            st = NULL;
            log_error("cannot start the streaming thread; accelerated mappings are polled only");
        }
        log_info("sfbridge syncing schema %s (Ctrl-C or SIGTERM stops)", a->cfg.schema);
    }
    while (!app_stop) {
        if (pg_connection_lost(a->pg) && pg_recover(a, e) != 0)
            break;
        if (!a->sf || !a->org_checked) {
            err_t le;
            if (!app_sf(a, &le)) {
                cat_set_conn_state(a->pg, a->cfg.schema,
                                   sfapi_last_class(a->sf) == SFAPI_AUTH ? "NEED_AUTHENTICATION" : "OFFLINE", le.msg, NULL);
                log_warn("cannot log in to Salesforce: %s", le.msg);
                wait_for_work(a->pg, a->cfg.backoff_cap_ms);
                continue;
            }
        }
        bool paused = false;
        mapping *ms = NULL;
        size_t n = 0;
        err_t le;
        if (cat_conn_paused(a->pg, a->cfg.schema, &paused, &le) != 0 ||
            cat_load(a->pg, a->cfg.schema, NULL, &ms, &n, &le) != 0) {
            if (pg_connection_lost(a->pg))
                continue;
            *e = le;
            return -1;
        }
        sync_ctx x = {.pg = a->pg, .sf = a->sf, .cfg = &a->cfg, .schema = a->cfg.schema, .stop = &app_stop,
                      .progress = progress, .progress_ctx = progress_ctx};
        int64_t now = util_now_ms();
        int64_t next = now + 5000;
        bool worked = false;
        if (paused) {
            heartbeat(a, "PAUSED");
        } else {
            for (size_t i = 0; i < n && !app_stop; i++) {
                mapping *m = &ms[i];
                if (!selected(m, objects, nobj))
                    continue;
                action act = decide(m, mode, util_now_ms(), drift_ms);
                if (act == ACT_NONE)
                    continue;
                if (!worked)
                    heartbeat(a, act == ACT_LOAD || act == ACT_RELOAD ? "BUSY" : "POLLING");
                worked = true;
                err_t ae;
                err_clear(&ae);
                if (run_action(a, &x, m, act, &ae) != 0) {
                    failures++;
                    if (mode != DAEMON_RUN)
                        *e = ae;
                } else if (mode == DAEMON_ONCE && act == ACT_LOAD) {
                    /* --once: a fresh load is followed by its one poll. */
                    i--;
                    mapping_free_all(ms, n);
                    if (cat_load(a->pg, a->cfg.schema, NULL, &ms, &n, &le) != 0)
                        break;
                    continue;
                }
                if (mode != DAEMON_RUN)
                    continue;
                /* Go round again at once: loads and polls are done in turn. */
                next = util_now_ms();
                break;
            }
            heartbeat(a, "IDLE");
            for (size_t i = 0; i < n; i++)
                if (!ms[i].paused && ms[i].next_poll_ms && ms[i].next_poll_ms < next)
                    next = ms[i].next_poll_ms;
        }
        mapping_free_all(ms, n);
        if (mode != DAEMON_RUN)
            break;
        if (!worked)
            wait_for_work(a->pg, next - util_now_ms());
    }
    if (w) {
        /* Wake the writer so it sees the stop at once. */
        sb chan = SB_INIT, sql = SB_INIT;
        cap_channel(&chan, a->cfg.schema);
        sb_puts(&sql, "NOTIFY ");
        sb_sql_ident(&sql, sb_str(&chan));
        if (a->pg && !pg_connection_lost(a->pg))
            pg_exec(a->pg, NULL, sb_str(&sql));
        sb_free(&chan);
        sb_free(&sql);
        writer_join(w);
        writer_free(w);
    }
    if (st) {
        stream_join(st);
        stream_free(st);
    }
    if (mode != DAEMON_RUN && failures)
        return -1;
    if (!pg_connection_lost(a->pg)) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        const char *p[] = {pid};
        sb s = SB_INIT;
        sb_puts(&s, "UPDATE ");
        pg_qname(&s, a->cfg.schema, "_sfbridge_connection");
        sb_puts(&s, " SET heartbeat_at = NULL WHERE daemon_pid = $1::int");
        pg_run(a->pg, NULL, sb_str(&s), 1, p);
        sb_free(&s);
    }
    if (mode == DAEMON_RUN)
        log_info("sfbridge stopped");
    return 0;
}
