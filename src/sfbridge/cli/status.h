/*
 * status: `sfbridge status` (connection and mapping states, load progress
 * with rate and estimate, watermarks, errors, API use) as text or JSON, and
 * the progress bar the foreground commands draw.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "app.h"
#include "catalog.h"
#include "err.h"

#include <jansson.h>

/* How sfbridge is doing, for health checks: the exit status of `status`. */
typedef enum {
    STATUS_HEALTHY = 0,  /* the daemon runs, the org is reachable, nothing in error */
    STATUS_DEGRADED = 1, /* a mapping in error or retrying, a stream down, writes failed */
    STATUS_DOWN = 2,     /* no daemon, the org offline or refusing, no catalog, no database */
} status_health;

/* Everything `status --json` shows, with "health": {"status", "reasons"}.
 * Reads only (nothing is created: NOT_SET_UP for a schema without catalog). */
json_t *status_json(app *a, err_t *e);
/* The verdict on a status document; each reason appended to reasons. Pure. */
status_health status_health_of(json_t *status, json_t *reasons);
const char *status_health_name(status_health h);
/* `sfbridge status` as text or JSON; *health gets the verdict. */
int status_print(app *a, bool json, FILE *out, status_health *health, err_t *e) ERR_MUST_CHECK;

/* The progress bar of the foreground commands, drawn on stderr through
 * log_status (in place on a terminal, under the log lines; a line every 2 s
 * elsewhere). Start it zeroed. */
typedef struct status_bar {
    int64_t started_ms;
    int64_t start_done; /* rows done when this object's bar began (a resumed load) */
    int64_t last_ms;    /* when the last frame was drawn; 0: none yet */
    int64_t done, total;
    char object[64]; /* "": no bar open */
} status_bar;

/* A sync_progress_fn: draws "Object [####....] rows/total  N rows/s  ETA";
 * the frame that reaches the total is the object's last. */
void status_progress(void *ctx, const mapping *m, int64_t done, int64_t total);
/* Draws the open bar's last frame (where its rows stopped) and ends it. */
void status_bar_finish(status_bar *b);

#endif
