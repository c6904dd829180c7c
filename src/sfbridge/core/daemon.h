/*
 * daemon: sfbridge's one loop. Each pass reads the mappings from the catalog,
 * picks each mapping's next action from its state (fsm_decide: load, reload,
 * backfill, poll, drift check), runs it, records the outcome through the
 * state machine (fsm_fire: state, errors, backoff, API use), then sleeps on the
 * Postgres socket until the next mapping is due or a NOTIFY sfbridge_control
 * arrives. A mapping whose catalog row is unusable goes to BAD_CONFIG with the
 * reason and is skipped; the others go on.
 *
 * There is one way out of `run` (daemon_stop): on a signal or a fatal error
 * the writer and stream threads are stopped and joined, the heartbeat is
 * cleared (so `status` stops saying running) and "sfbridge stopped: <why>" is
 * logged.
 *
 * The CLI's foreground commands (load, poll, drift, run --once) are the same
 * loop run once in a given mode.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stddef.h>

#include "app.h"
#include "err.h"
#include "fsm.h"
#include "sync.h"

/* objects: limit to these mappings (n = 0: all). progress: optional bar. */
int daemon_main(app *a, daemon_mode mode, const char *const *objects, size_t n,
                sync_progress_fn progress, void *progress_ctx, err_t *e) ERR_MUST_CHECK;

#endif
