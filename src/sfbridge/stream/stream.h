/*
 * stream: accelerated sync. A thread of `sfbridge run` that keeps one CometD
 * (Bayeux long-polling) client subscribed, with the replay extension, to the
 * Change Data Capture channel of every mapping with accelerated sync on
 * (/data/<Object>ChangeEvent), or to a PushTopic it creates itself
 * (/topic/sfb_<table>) where Salesforce refuses the CDC channel. Each batch of
 * events is applied by fetching the named records and upserting them, with
 * the last replay id committed in the same transaction. A replay id Salesforce
 * no longer has, a GAP event or a lost stream falls back to an incremental
 * poll of the mapping's window, then streaming resumes.
 */
#ifndef STREAM_H
#define STREAM_H

#include <signal.h>

#include "catalog.h"
#include "config.h"
#include "sfapi.h"

typedef struct stream stream;

stream *stream_new(const cfg *c, volatile sig_atomic_t *stop);
/* Start the stream's thread (worker_start); 0 or -1. */
int stream_start(stream *s) ERR_MUST_CHECK;
void stream_join(stream *s);
/* From another thread: the mappings changed (a control NOTIFY): cut the held
 * long poll short, so the stream resubscribes at once rather than when the
 * poll returns (up to two minutes). */
void stream_wake(stream *s);
void stream_free(stream *s);

/* Delete the PushTopic sfbridge made for m (sfb_<table>) when there is one:
 * 1 deleted, 0 none, -1 failed (e filled). For a mapping that stops streaming. */
int stream_drop_pushtopic(sfapi *sf, const char *api_version, const mapping *m,
                          err_t *e) ERR_MUST_CHECK;

/* The name of the PushTopic sfbridge makes for m: sfb_<table> within 25 characters. */
void stream_pushtopic_name(char *out, size_t n, const mapping *m);

/* "/data/Teacher__ChangeEvent" for "Teacher__c", "/data/AccountChangeEvent" for "Account". */
void stream_cdc_channel(char *out, size_t n, const char *object);

#endif
