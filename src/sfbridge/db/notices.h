/*
 * notices: <schema>._sfbridge_notifications, what an operator should hear
 * about, once per event: a mapping falling into an error state and out of
 * it, the connection lost and recovered, a stream falling back to polling,
 * a mapping's daily API budget 90% spent, writes Salesforce refused. The
 * state changes are caught by triggers on the catalog tables (whoever
 * changes the state, the event is recorded in the same transaction); the
 * writer reports refused writes (notices_add). Each has an acknowledge time
 * (status and the API show the unacknowledged) and a delivery time for the
 * webhook (api/webhook.c).
 */
#ifndef NOTICES_H
#define NOTICES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

/* The table and the triggers on _sfbridge_connection and _sfbridge_mapping
 * (idempotent); qschema is the quoted schema. After the catalog's DDL. */
void notices_sql_ddl(sb *out, const char *qschema);

/* Record one event: kind ("WRITE_FAILED", ...), level (info, warn, error),
 * the mapping's object (or NULL) and what happened. */
int notices_add(PGconn *c, const char *schema, const char *kind, const char *level,
                const char *object, const char *message, err_t *e) ERR_MUST_CHECK;

/* The notifications, newest first: unacknowledged only, or all of the last
 * `hours`. A JSON array of {id, created_at, kind, level, object_name,
 * message, acknowledged_at, delivered_at}. */
json_t *notices_list(PGconn *c, const char *schema, bool all, int hours, err_t *e);

/* Acknowledge notification id (0: every unacknowledged one); *n how many. */
int notices_ack(PGconn *c, const char *schema, int64_t id, int64_t *n, err_t *e) ERR_MUST_CHECK;

/* For the webhook: the oldest undelivered notifications (up to limit) whose
 * next attempt is due, as a JSON array. */
json_t *notices_due(PGconn *c, const char *schema, int limit, err_t *e);
/* Delivered; or not (error recorded, next attempt in delay_ms). */
int notices_delivered(PGconn *c, const char *schema, int64_t id, err_t *e) ERR_MUST_CHECK;
int notices_failed(PGconn *c, const char *schema, int64_t id, const char *error, long delay_ms,
                   err_t *e) ERR_MUST_CHECK;

/* Forget notifications older than `days` (SFBRIDGE_ARCHIVE_DAYS, as the trigger
 * log's archive), delivered or not. */
int notices_prune(PGconn *c, const char *schema, long days, err_t *e) ERR_MUST_CHECK;

#endif
