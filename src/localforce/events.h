/*
 * events: the org's change event log, behind Change Data Capture and
 * PushTopics. The store reports every committed record change (create,
 * update, delete, undelete); events turns each into CDC events on
 * /data/ChangeEvents and /data/<Object>ChangeEvent and into PushTopic events
 * on /topic/<Name> when the record matches a topic's query, each with a
 * replayId, and keeps them in the org's database for the retention period so
 * a client that reconnects with its last replayId misses nothing.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

typedef struct lf_events lf_events;

typedef struct lf_events_config {
    int64_t retention_s;   /* how long events are kept; 0 = 72 hours; <0 = none (replay fails) */
    bool    gap_events;    /* emit GAP_* events (header only) instead of full change events */
} lf_events_config;

lf_events *events_new(store *st, const lf_events_config *cfg, err_t *e);
void       events_free(lf_events *ev);

#endif
