/*
 * conflicts: <schema>._sfbridge_conflicts, one row per record changed on both
 * sides (table, sfid, both versions as JSON, their times, the winner, the
 * policy). The pull detects conflicts (see sync.c's conflict CTEs); this module
 * owns the table: its DDL and the statement part that records them.
 */
#ifndef CONFLICTS_H
#define CONFLICTS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

/* CREATE TABLE IF NOT EXISTS (idempotent); qschema is the quoted schema. */
void conflicts_sql_ddl(sb *out, const char *qschema);
/* ", rec AS (INSERT ...)": records every row of the CTE `conf` (columns sfid,
 * sfstamp, changed_at, winner, sfv, pgv) for the table and policy, given as
 * SQL literals; a conflict already recorded is not recorded twice. */
void conflicts_sql_record(sb *out, const char *schema, const char *table_lit,
                          const char *policy_lit);

/* {"table": conflicts recorded, ...} for every table with any. */
json_t *conflicts_counts(PGconn *c, const char *schema, err_t *e);

#endif
