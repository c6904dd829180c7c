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

typedef struct status_bar {
    FILE *out;
    bool tty;
    int64_t started_ms;
    int64_t start_done;
    int64_t last_ms;
    char object[64];
} status_bar;

/* A sync_progress_fn: draws "Object [####....] rows/total  N rows/s  ETA". */
void status_progress(void *ctx, const mapping *m, int64_t done, int64_t total);
void status_bar_finish(status_bar *b);

#endif
