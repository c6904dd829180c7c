/*
 * events: the org's change event log, behind Change Data Capture and
 * PushTopics. The store reports every committed record change (create,
 * update, delete, undelete); events turns each into CDC events on
 * /data/ChangeEvents and /data/<Object>ChangeEvent and into PushTopic events
 * on /topic/<Name> when the record matches a topic's query, each with a
 * replayId, and keeps them in the org's database for the retention period so
 * a client that reconnects with its last replayId misses nothing.
 *
 * Event rows are written by the store's change hook (store.h) inside the
 * transaction that makes the change, so a rollback drops them; listeners
 * (the CometD server) are told after the outermost COMMIT. Every event is
 * one row of _lf_events: replayId (increasing, never reused within a
 * database), its channel, whether it is a CDC event (and so also on
 * /data/ChangeEvents), its creation time and the Bayeux "data" JSON, stored
 * exactly as delivered. PushTopic is a standard object of every org; its
 * records define the topics, and a topic whose Query does not compile is
 * refused when it is saved.
 *
 * Locking: everything here runs under the store lock (the hook already holds
 * it; the other functions take it). The listener is called under the store
 * lock, so it must not wait for anything that needs that lock.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "sb.h"
#include "store.h"

typedef struct lf_events lf_events;

typedef struct lf_events_config {
    int64_t retention_s; /* how long events are kept; 0 = 72 hours; <0 = none (replay fails) */
    bool gap_events;     /* emit GAP_* events (header only) instead of full change events */
} lf_events_config;

lf_events *events_new(store *st, const lf_events_config *cfg, err_t *e);
void events_free(lf_events *ev);

/* Called (under the store lock) after each commit that made events. One
 * listener; NULL removes it. */
void events_set_listener(lf_events *ev, void (*fn)(void *ctx), void *ctx);
/* The newest committed replayId (0 if none yet). Lock-free. */
int64_t events_last(lf_events *ev);

/* The canonical key of a channel a client may subscribe to: "/data/ChangeEvents",
 * "/data/<Object>ChangeEvent" (custom Foo__c: "/data/Foo__ChangeEvent") for an
 * existing object, "/topic/<Name>" for an existing PushTopic. Names are
 * matched case-insensitively; the key has the canonical spelling. 0, or -1
 * with e->msg saying why (e->code "NOT_FOUND"). */
int events_channel_key(lf_events *ev, const char *channel, char *key, size_t keysz, err_t *e);

/* Where a subscription with replay value `replay` starts: -1 = the newest
 * event (only new ones), -2 = before the oldest retained one, N = after N.
 * Fills *after; -1 with e->msg "The replayId {N} you provided was invalid..."
 * (code "INVALID_REPLAY_ID") when N is not a retained position. */
int events_replay_start(lf_events *ev, int64_t replay, int64_t *after, err_t *e);

/* Append, as Bayeux messages {"channel":channel,"data":...} separated by
 * commas (a comma first when *count > 0), the events of key with
 * after < replayId <= events_last(), oldest first, at most max of them;
 * *count grows by the number written. *next is where the subscription
 * continues: the last replayId written, or the newest replayId looked at
 * when fewer than max were found. */
int events_fetch(lf_events *ev, const char *key, const char *channel, int64_t after, int max,
                 sb *out, int *count, int64_t *next, err_t *e);

/* Drop events older than the retention period now (also done as events are
 * written, at most once a minute). */
void events_purge(lf_events *ev);

/* The CDC channel of an object: "/data/AccountChangeEvent", "/data/Foo__ChangeEvent". */
void events_cdc_channel(const char *object, sb *out);

#endif
