/*
 * activity: the `_sfbridge_activity` table, what the dashboard's charts
 * draw: per mapped table and minute, rows applied from Salesforce (loads,
 * polls, streamed changes, drift repairs), records written to Salesforce,
 * writes Salesforce refused, and the longest lag seen (a streamed change's
 * delay). The pull adds to it after each commit, the writer's recorder
 * once a pass (what it recorded); minutes older than two days are pruned
 * with the trigger log's archive.
 */
#ifndef ACTIVITY_H
#define ACTIVITY_H

#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

/* CREATE TABLE IF NOT EXISTS (idempotent); qschema is the quoted schema. Pure. */
void act_sql_ddl(sb *out, const char *qschema);

/* Add to this minute's row of table (lag_ms < 0: none measured). */
ERR_MUST_CHECK int act_record(PGconn *c, const char *schema, const char *table, int64_t rows_in,
                              int64_t rows_out, int64_t errors, int64_t lag_ms, err_t *e);

/* Delete minutes older than two days. */
ERR_MUST_CHECK int act_prune(PGconn *c, const char *schema, err_t *e);

/* The last `hours` (1: minutes, 24: quarter hours) of table (NULL: all):
 * {bucket_seconds, buckets:[{at, rows_in, rows_out, errors, lag_seconds}]},
 * every bucket present, oldest first. NULL with e filled. */
json_t *act_series_json(PGconn *c, const char *schema, const char *table, int hours, err_t *e);

#endif
