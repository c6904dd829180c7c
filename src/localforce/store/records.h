/*
 * records: the public record API: create, update, delete, undelete, upsert by
 * external id, get as REST JSON, the replication windows (`updated`,
 * `deleted`), bulk loads, counts and the change hook.
 */
#ifndef RECORDS_H
#define RECORDS_H

#include "objcache.h"

/* Insert records in one transaction, stamped now or, with ago_ms > 0, ago_ms
 * in the past (a transaction that committed late). */
int rec_load_locked(store *st, objinfo *oi, const lf_actor *a, json_t *records, int64_t ago_ms,
                    int64_t *loaded, const char *what, err_t *e);

#endif
