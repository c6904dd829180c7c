/*
 * metrics: the Prometheus text exposition of /metrics, built from a status
 * document (status_json) and the conflict counts. Pure: the caller reads the
 * database; this module only writes text, so the names and types of every
 * metric live here, in one table.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>

#include <jansson.h>

/* The exposition for status (with "health") and conflicts ({"table": n}),
 * now_ms and started_ms (process start) in ms since the epoch. Caller frees. */
char *metrics_text(json_t *status, json_t *conflicts, int64_t now_ms, int64_t started_ms);

#endif
