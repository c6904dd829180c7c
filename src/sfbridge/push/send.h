/*
 * send: operations to Salesforce. sObject Collections of up to 200 records of
 * one mapping and one kind (POST inserts, PATCH updates, PATCH upserts by the
 * unique identifier, DELETE by ids), Bulk API 2.0 ingest jobs for large
 * upserts, and the SOQL lookup for an insert whose outcome was lost. Each
 * record's answer becomes its op's outcome (OK, FAILED, RETRY); no Postgres.
 */
#ifndef SEND_H
#define SEND_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "catalog.h"
#include "err.h"
#include "fold.h"
#include "sfapi.h"
#include "writer.h"

/* The clock difference allowed between this host and Salesforce when an
 * insert's record is looked for by its CreatedDate, before sfapi has
 * measured it (and always for the lookup by the values sent). */
#define SEND_LOOKUP_SKEW_MS (120 * 1000)
/* Added on each side of the measured difference: CreatedDate's whole
 * seconds, and drift since the measurement. */
#define SEND_CLOCK_MARGIN_MS 2000
/* How long (in settle times after its attempt) a lost insert waits for other
 * lost inserts' looks before it is judged by its values alone. */
#define SEND_WAIT_SETTLES 4

/* Salesforce error codes worth retrying as they are. */
bool send_transient_code(const char *code);

/* One collection request for ops[0..n) (one mapping m, one kind, n <= 200).
 * Every op gets an outcome: a failed request retries them all (unknown for
 * inserts and upserts: they may have happened), or fails them all when
 * Salesforce refused the request itself. Counts go to st. */
void send_collection(sfapi *sf, const char *api_version, const mapping *m, op **ops, size_t n,
                     writer_stats *st);

/* One Bulk API 2.0 upsert job for ops[0..n) (all OP_UPSERT of m). Operations
 * the job did not answer for are left OUT_NONE, for the collections to send;
 * ops is reordered. */
void send_bulk_upsert(sfapi *sf, const mapping *m, op **ops, size_t n, writer_stats *st);

/* An insert whose outcome was lost (o->sent, else o->rec, sent at o->sent_at):
 * the ids of the records Salesforce has that match it (by the unique
 * identifier when set, else created by this user since shortly before the
 * attempt with the same filterable field values). *ids is a JSON array of
 * strings (caller json_decref's it). 0, or -1 with e filled. */
ERR_MUST_CHECK int send_lookup_insert(sfapi *sf, const mapping *m, const op *o, json_t **ids,
                                      err_t *e);

/* The records this user created between from_ms and to_ms, with Id, CreatedDate and `fields` (a
 * JSON array of the mapping's field names; others are left out): for inserts whose lost record may
 * have been edited since (see match.h). *recs is a JSON array (caller json_decref's it). 0, or -1
 * with e filled. */
ERR_MUST_CHECK int send_lookup_window(sfapi *sf, const mapping *m, json_t *fields, int64_t from_ms,
                                      int64_t to_ms, json_t **recs, err_t *e);

#endif
