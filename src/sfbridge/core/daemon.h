/*
 * daemon: sfbridge's one loop. Each pass reads the mappings from the catalog,
 * picks each mapping's next action from its state (the table in daemon.c:
 * load, reload, backfill, poll, drift check), runs it, records the outcome
 * (state, errors, backoff, API use), then sleeps on the Postgres socket until
 * the next mapping is due or a NOTIFY sfbridge_control arrives.
 *
 * The CLI's foreground commands (load, poll, drift, run --once) are the same
 * loop run once in a given mode.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stddef.h>

#include "app.h"
#include "err.h"
#include "sync.h"

typedef enum {
    DAEMON_RUN,   /* forever */
    DAEMON_ONCE,  /* pending loads, then one poll of every active mapping */
    DAEMON_LOAD,  /* pending loads, reloads and backfills only */
    DAEMON_POLL,  /* one poll now (loads first if pending) */
    DAEMON_DRIFT, /* one drift check now */
} daemon_mode;

/* objects: limit to these mappings (n = 0: all). progress: optional bar. */
int daemon_main(app *a, daemon_mode mode, const char *const *objects, size_t n, sync_progress_fn progress,
                void *progress_ctx, err_t *e);

#endif
