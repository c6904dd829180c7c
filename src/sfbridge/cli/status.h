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

int status_print(app *a, bool json, FILE *out, err_t *e) ERR_MUST_CHECK;

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
