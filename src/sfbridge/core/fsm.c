/*
 * fsm: state names, the mapping transition table, decide (see fsm.h).
 */
#include "fsm.h"

#include <string.h>

#include "catalog.h"
#include "log.h"

static const char *const state_names[MS_COUNT] = {
    [MS_INITIAL] = "INITIAL",
    [MS_LOADING] = "LOADING",
    [MS_RELOAD_TABLE] = "RELOAD_TABLE",
    [MS_RESYNC] = "RESYNC",
    [MS_DATA_SYNCED] = "DATA_SYNCED",
    [MS_POLLING_SF_CHANGES] = "POLLING_SF_CHANGES",
    [MS_DRIFT_CHECK] = "DRIFT_CHECK",
    [MS_PAUSED] = "PAUSED",
    [MS_RETRYING] = "RETRYING",
    [MS_BAD_CONFIG] = "BAD_CONFIG",
    [MS_NEED_AUTHENTICATION] = "NEED_AUTHENTICATION",
};

static const char *const event_names[EV_COUNT] = {
    [EV_TAKEOVER] = "takeover",
    [EV_LOAD_START] = "load start",
    [EV_LOAD_RESTART] = "load restart",
    [EV_LOAD_DONE] = "load done",
    [EV_RELOAD_REQUEST] = "reload request",
    [EV_RELOAD_DONE] = "reload done",
    [EV_FIELDS_ADDED] = "fields added",
    [EV_CONFIG_CHANGED] = "config changed",
    [EV_BACKFILL_START] = "backfill start",
    [EV_BACKFILL_DONE] = "backfill done",
    [EV_POLL_START] = "poll start",
    [EV_POLL_DONE] = "poll done",
    [EV_BUDGET_SPENT] = "API budget spent",
    [EV_DRIFT_START] = "drift check start",
    [EV_DRIFT_DONE] = "drift check done",
    [EV_FAIL_TRANSIENT] = "transient failure",
    [EV_FAIL_AUTH] = "authentication failure",
    [EV_FAIL_PERMANENT] = "permanent failure",
    [EV_BAD_ROW] = "bad catalog row",
    [EV_RESUME] = "resume",
};

static const char *const conn_names[CS_COUNT] = {
    [CS_IDLE] = "IDLE",     [CS_POLLING] = "POLLING",
    [CS_BUSY] = "BUSY",     [CS_NEED_AUTHENTICATION] = "NEED_AUTHENTICATION",
    [CS_PAUSED] = "PAUSED", [CS_OFFLINE] = "OFFLINE",
};

static const char *const stream_names[SS_COUNT] = {
    [SS_CONNECTED] = "CONNECTED",
    [SS_CONNECTING] = "CONNECTING",
    [SS_FALLBACK] = "FALLBACK",
    [SS_FAILED] = "FAILED",
    [SS_OFF] = "OFF",
};

/* Every stored state but RELOAD_TABLE: what a failure moves. */
#define FROM_ACTIVE(ev, to)                                                               \
    {MS_INITIAL, ev, W_ANY, to}, {MS_LOADING, ev, W_ANY, to}, {MS_RESYNC, ev, W_ANY, to}, \
        {MS_DATA_SYNCED, ev, W_ANY, to}, {MS_POLLING_SF_CHANGES, ev, W_ANY, to},          \
        {MS_DRIFT_CHECK, ev, W_ANY, to}, {MS_RETRYING, ev, W_ANY, to},                    \
        {MS_BAD_CONFIG, ev, W_ANY, to},                                                   \
    {                                                                                     \
        MS_NEED_AUTHENTICATION, ev, W_ANY, to                                             \
    }

/* A loaded mapping between actions, or after a failure: where an action starts. */
#define FROM_LOADED_IDLE(ev, to)                                                   \
    {MS_DATA_SYNCED, ev, W_LOADED, to}, {MS_POLLING_SF_CHANGES, ev, W_LOADED, to}, \
        {MS_DRIFT_CHECK, ev, W_LOADED, to}, {MS_RESYNC, ev, W_LOADED, to},         \
        {MS_RETRYING, ev, W_LOADED, to}, {MS_BAD_CONFIG, ev, W_LOADED, to},        \
    {                                                                              \
        MS_NEED_AUTHENTICATION, ev, W_LOADED, to                                   \
    }

/* The failure states, which the initial load resumes from. */
#define FROM_FAILED(ev, to)                                       \
    {MS_RETRYING, ev, W_ANY, to}, {MS_BAD_CONFIG, ev, W_ANY, to}, \
    {                                                             \
        MS_NEED_AUTHENTICATION, ev, W_ANY, to                     \
    }

const fsm_transition fsm_table[] = {
    {MS_INITIAL, EV_TAKEOVER, W_ANY, MS_RELOAD_TABLE},

    {MS_INITIAL, EV_LOAD_START, W_ANY, MS_LOADING},
    {MS_LOADING, EV_LOAD_START, W_ANY, MS_LOADING},
    FROM_FAILED(EV_LOAD_START, MS_LOADING),
    {MS_LOADING, EV_LOAD_RESTART, W_ANY, MS_INITIAL},
    FROM_FAILED(EV_LOAD_RESTART, MS_INITIAL),
    {MS_LOADING, EV_LOAD_DONE, W_ANY, MS_DATA_SYNCED},
    FROM_FAILED(EV_LOAD_DONE, MS_DATA_SYNCED),

    /* Only a loaded mapping reloads; a pending load already fetches everything. */
    FROM_LOADED_IDLE(EV_RELOAD_REQUEST, MS_RELOAD_TABLE),
    {MS_RELOAD_TABLE, EV_RELOAD_REQUEST, W_ANY, MS_RELOAD_TABLE},
    {MS_RELOAD_TABLE, EV_RELOAD_DONE, W_ANY, MS_DATA_SYNCED},

    {MS_DATA_SYNCED, EV_FIELDS_ADDED, W_LOADED, MS_RESYNC},
    {MS_RETRYING, EV_FIELDS_ADDED, W_LOADED, MS_RESYNC},
    {MS_BAD_CONFIG, EV_FIELDS_ADDED, W_LOADED, MS_RESYNC},
    {MS_BAD_CONFIG, EV_CONFIG_CHANGED, W_LOADED, MS_DATA_SYNCED},
    {MS_BAD_CONFIG, EV_CONFIG_CHANGED, W_UNLOADED, MS_INITIAL},

    FROM_LOADED_IDLE(EV_BACKFILL_START, MS_RESYNC),
    {MS_RESYNC, EV_BACKFILL_DONE, W_ANY, MS_DATA_SYNCED},

    FROM_LOADED_IDLE(EV_POLL_START, MS_POLLING_SF_CHANGES),
    {MS_POLLING_SF_CHANGES, EV_POLL_DONE, W_ANY, MS_DATA_SYNCED},
    {MS_RETRYING, EV_POLL_DONE, W_ANY, MS_DATA_SYNCED},
    {MS_POLLING_SF_CHANGES, EV_BUDGET_SPENT, W_ANY, MS_DATA_SYNCED},
    FROM_FAILED(EV_BUDGET_SPENT, MS_DATA_SYNCED),

    FROM_LOADED_IDLE(EV_DRIFT_START, MS_DRIFT_CHECK),
    {MS_DRIFT_CHECK, EV_DRIFT_DONE, W_ANY, MS_DATA_SYNCED},

    /* A transient failure of a reload keeps RELOAD_TABLE, so the reload is retried. */
    FROM_ACTIVE(EV_FAIL_TRANSIENT, MS_RETRYING),
    FROM_ACTIVE(EV_FAIL_AUTH, MS_NEED_AUTHENTICATION),
    {MS_RELOAD_TABLE, EV_FAIL_AUTH, W_ANY, MS_NEED_AUTHENTICATION},
    FROM_ACTIVE(EV_FAIL_PERMANENT, MS_BAD_CONFIG),
    {MS_RELOAD_TABLE, EV_FAIL_PERMANENT, W_ANY, MS_BAD_CONFIG},
    FROM_ACTIVE(EV_BAD_ROW, MS_BAD_CONFIG),
    {MS_RELOAD_TABLE, EV_BAD_ROW, W_ANY, MS_BAD_CONFIG},

    {MS_BAD_CONFIG, EV_RESUME, W_LOADED, MS_DATA_SYNCED},
    {MS_BAD_CONFIG, EV_RESUME, W_UNLOADED, MS_INITIAL},
    {MS_NEED_AUTHENTICATION, EV_RESUME, W_LOADED, MS_DATA_SYNCED},
    {MS_NEED_AUTHENTICATION, EV_RESUME, W_UNLOADED, MS_INITIAL},
    {MS_RETRYING, EV_RESUME, W_LOADED, MS_DATA_SYNCED},
    {MS_RETRYING, EV_RESUME, W_UNLOADED, MS_INITIAL},
};
const size_t fsm_table_len = sizeof fsm_table / sizeof fsm_table[0];

static const char *
name_of(const char *const *names, unsigned count, unsigned i)
{
    return i < count ? names[i] : "?";
}

const char *
fsm_state_name(map_state s)
{
    return name_of(state_names, MS_COUNT, (unsigned)s);
}

const char *
fsm_event_name(map_event ev)
{
    return name_of(event_names, EV_COUNT, (unsigned)ev);
}

const char *
fsm_conn_name(conn_state s)
{
    return name_of(conn_names, CS_COUNT, (unsigned)s);
}

const char *
fsm_stream_name(stream_state s)
{
    return name_of(stream_names, SS_COUNT, (unsigned)s);
}

int
fsm_state_parse(const char *s)
{
    for (int i = 0; s && i < MS_COUNT; i++)
        if (strcmp(state_names[i], s) == 0)
            return i;
    return -1;
}

static bool
guard_holds(fsm_guard g, bool loaded)
{
    return g == W_ANY || (g == W_LOADED) == loaded;
}

int
fsm_next(map_state from, map_event ev, bool loaded)
{
    for (size_t i = 0; i < fsm_table_len; i++) {
        const fsm_transition *t = &fsm_table[i];
        if (t->from == from && t->event == ev && guard_holds(t->when, loaded))
            return (int)t->to;
    }
    return -1;
}

void
fsm_case_sql(sb *out, map_event ev)
{
    static const char *const guard_sql[] =
        {[W_ANY] = "", [W_LOADED] = " AND loaded", [W_UNLOADED] = " AND NOT loaded"};
    sb_puts(out, "CASE");
    for (size_t i = 0; i < fsm_table_len; i++) {
        const fsm_transition *t = &fsm_table[i];
        if (t->event == ev)
            sb_printf(out, " WHEN state = '%s'%s THEN '%s'", state_names[t->from],
                      guard_sql[t->when], state_names[t->to]);
    }
    sb_puts(out, " ELSE state END");
}

/* ---- decide ------------------------------------------------------------------ */

static const char *const action_names[] = {"none",     "initial load", "reload",
                                           "backfill", "poll",         "drift check"};

const char *
fsm_action_name(fsm_action act)
{
    return name_of(action_names, ACT_DRIFT + 1, (unsigned)act);
}

map_event
fsm_action_event(fsm_action act)
{
    switch (act) {
    case ACT_BACKFILL: return EV_BACKFILL_START;
    case ACT_POLL: return EV_POLL_START;
    case ACT_DRIFT: return EV_DRIFT_START;
    default: return EV_COUNT;
    }
}

fsm_action
fsm_decide(const mapping *m, daemon_mode mode, int64_t now, long drift_ms)
{
    if (m->paused || m->bad)
        return ACT_NONE;
    bool due = m->next_poll_ms == 0 || now >= m->next_poll_ms || mode != DAEMON_RUN;
    if (m->errors > 0 && !due)
        return ACT_NONE;
    if (m->state == MS_BAD_CONFIG && mode == DAEMON_RUN && !due)
        return ACT_NONE;
    if (!m->loaded)
        return ACT_LOAD;
    if (m->state == MS_RELOAD_TABLE)
        return ACT_RELOAD;
    if (m->resync)
        return ACT_BACKFILL;
    switch (mode) {
    case DAEMON_LOAD: return ACT_NONE;
    case DAEMON_DRIFT: return ACT_DRIFT;
    case DAEMON_ONCE:
    case DAEMON_POLL: return ACT_POLL;
    case DAEMON_RUN:
        if (due)
            return ACT_POLL;
        if (drift_ms > 0 && now - m->last_drift_ms >= drift_ms)
            return ACT_DRIFT;
        return ACT_NONE;
    }
    return ACT_NONE;
}

/* ---- the one state change ------------------------------------------------------- */

int
fsm_fire(PGconn *c, const char *schema, mapping *m, map_event ev, cat_cols *cols, err_t *e)
{
    sb expr = SB_INIT;
    fsm_case_sql(&expr, ev);
    map_state before = m->state, after = m->state;
    int rc = cat_transition(c, schema, m->object, sb_str(&expr), cols, &before, &after, e);
    sb_free(&expr);
    if (rc != 0)
        return -1;
    if (fsm_next(before, ev, m->loaded) < 0)
        log_debug("%s: %s does not apply in state %s; state kept", m->object, fsm_event_name(ev),
                  fsm_state_name(before));
    else if (before != after)
        log_debug("%s: %s -> %s (%s)", m->object, fsm_state_name(before), fsm_state_name(after),
                  fsm_event_name(ev));
    m->state = after;
    return 0;
}
