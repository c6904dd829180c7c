/*
 * fsm: sfbridge's states and the mapping state machine, in one place.
 *
 * The names of the mapping, connection and stream states (the strings stored
 * in the catalog and shown by `status`), the events that move a mapping, the
 * transition table {from, event, to}, and `fsm_decide`, which picks a
 * mapping's next action from its state. All of it is pure (no I/O), so it is
 * unit-tested (tests/unit/test_fsm.c), which also checks that the States
 * section of docs/sfbridge.md lists exactly these names.
 *
 * fsm_fire is the one function that changes a mapping's state: the new state
 * is computed in the UPDATE from the table (a CASE on the row's current
 * state), so a CLI command and the daemon changing the same row never lose
 * each other's transition; the catalog (cat_transition) runs the statement.
 *
 * Pausing is a flag (`paused`), not a state: a paused mapping keeps the state
 * it was in (a half-done load stays LOADING and resumes where it stopped).
 * PAUSED is only what `status` shows for a paused mapping or connection.
 */
#ifndef FSM_H
#define FSM_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

struct mapping;
struct cat_cols;

typedef enum map_state {
    MS_INITIAL,             /* table made, initial load pending */
    MS_LOADING,             /* initial load running (resumable) */
    MS_RELOAD_TABLE,        /* reload requested or running */
    MS_RESYNC,              /* backfilling columns just added */
    MS_DATA_SYNCED,         /* idle between polls */
    MS_POLLING_SF_CHANGES,  /* incremental poll running */
    MS_DRIFT_CHECK,         /* drift check running */
    MS_PAUSED,              /* shown only: the paused flag (never stored) */
    MS_RETRYING,            /* transient failure; next attempt scheduled */
    MS_BAD_CONFIG,          /* only the user can fix it (reason in last_error) */
    MS_NEED_AUTHENTICATION, /* Salesforce refused the credentials */
    MS_COUNT
} map_state;

typedef enum map_event {
    EV_TAKEOVER,     /* mapping add took over a Heroku Connect table */
    EV_LOAD_START,   /* initial load begins (TRUNCATE, position recorded) */
    EV_LOAD_RESTART, /* the load position was lost: start over */
    EV_LOAD_DONE,
    EV_RELOAD_REQUEST, /* sfbridge reload */
    EV_RELOAD_DONE,
    EV_FIELDS_ADDED,   /* mapping edit added columns to a loaded mapping */
    EV_CONFIG_CHANGED, /* mapping edit applied a new configuration */
    EV_BACKFILL_START,
    EV_BACKFILL_DONE,
    EV_POLL_START,
    EV_POLL_DONE,
    EV_BUDGET_SPENT, /* the daily API budget is used up */
    EV_DRIFT_START,
    EV_DRIFT_DONE,
    EV_FAIL_TRANSIENT,
    EV_FAIL_AUTH,
    EV_FAIL_PERMANENT,
    EV_BAD_ROW, /* the catalog row itself is unusable */
    EV_RESUME,  /* sfbridge resume: clear a failure state */
    EV_COUNT
} map_event;

/* A transition may depend on whether the initial load has finished. */
typedef enum fsm_guard { W_ANY, W_LOADED, W_UNLOADED } fsm_guard;

typedef struct fsm_transition {
    map_state from;
    map_event event;
    fsm_guard when;
    map_state to;
} fsm_transition;

extern const fsm_transition fsm_table[];
extern const size_t fsm_table_len;

typedef enum conn_state {
    CS_IDLE,
    CS_POLLING,
    CS_BUSY,
    CS_NEED_AUTHENTICATION,
    CS_PAUSED, /* shown only: the connection's paused flag */
    CS_OFFLINE,
    CS_COUNT
} conn_state;

typedef enum stream_state {
    SS_CONNECTED,
    SS_CONNECTING,
    SS_FALLBACK,
    SS_FAILED,
    SS_OFF, /* shown only: a streamed mapping with no stream state yet */
    SS_COUNT
} stream_state;

const char *fsm_state_name(map_state s);
const char *fsm_event_name(map_event ev);
const char *fsm_conn_name(conn_state s);
const char *fsm_stream_name(stream_state s);
/* The state named s; -1 when unknown. */
int fsm_state_parse(const char *s);

/* The state `ev` moves a mapping in `from` to; -1 when the table has no such
 * transition (refused). */
int fsm_next(map_state from, map_event ev, bool loaded);
/* Append the SQL expression of the new state for ev: a CASE on the column
 * `state` (and `loaded`) that keeps the state when ev does not apply. */
void fsm_case_sql(sb *out, map_event ev);

/* The mode the daemon loop runs in (daemon_main). */
typedef enum {
    DAEMON_RUN,   /* forever */
    DAEMON_ONCE,  /* pending loads, then one poll of every active mapping */
    DAEMON_LOAD,  /* pending loads, reloads and backfills only */
    DAEMON_POLL,  /* one poll now (loads first if pending) */
    DAEMON_DRIFT, /* one drift check now */
} daemon_mode;

typedef enum fsm_action {
    ACT_NONE,
    ACT_LOAD,
    ACT_RELOAD,
    ACT_BACKFILL,
    ACT_POLL,
    ACT_DRIFT
} fsm_action;

const char *fsm_action_name(fsm_action act);
/* The event that marks the start of act (a state the mapping shows while it
 * runs); EV_COUNT when the action sets its state itself (load, reload). */
map_event fsm_action_event(fsm_action act);
/* What a mapping needs next. Structural work (load, reload, backfill) comes
 * before polls; after a failure nothing runs before its retry time. */
fsm_action fsm_decide(const struct mapping *m, daemon_mode mode, int64_t now_ms, long drift_ms);

/* Change m's state by ev (the one place that does): the UPDATE sets the state
 * from the table together with cols (other columns of the same change; may be
 * NULL; freed here), then m->state is the row's new state and the transition
 * is logged.
 * Returns 0 when the state moved or ev did not apply to the row's state
 * (logged at debug: a concurrent change won), -1 on a Postgres failure. */
int fsm_fire(PGconn *c, const char *schema, struct mapping *m, map_event ev, struct cat_cols *cols,
             err_t *e) ERR_MUST_CHECK;

#endif
