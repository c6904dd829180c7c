/*
 * apply: the text of the pull path, built from a mapping and nothing else:
 * the SOQL that reads a mapping's fields, and the SQL that turns a page of
 * Salesforce records into rows (jsonb_to_recordset, typed values, the upsert
 * that only moves a row forward, deletions, the bookkeeping tail), the COPY
 * and staging statements of Bulk loads, reloads and drift repair.
 *
 * No connection, no I/O: sync.c runs what these build, and tests/unit
 * test_apply checks the text. Identifiers are always quoted (sb_sql_ident);
 * the few values written inline (table names, policies) go through
 * sb_sql_literal.
 */
#ifndef APPLY_H
#define APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "sb.h"

/* The staging table reloads, backfills and drift checks fill. */
#define APPLY_STAGE "pg_temp._sfb_stage"

/* What an apply statement also records, in the same statement as the rows. */
typedef enum apply_tail {
    APPLY_TAIL_NONE, /* rows only (drift repair, streaming) */
    APPLY_TAIL_POLL, /* the watermark from the page ($2 = object) */
    APPLY_TAIL_LOAD, /* the load position $3 and count ($2 = object) */
} apply_tail;

/* Every field of m, in order (caller frees the array, not the fields). */
const map_field **apply_all_fields(const mapping *m);
/* Whether m maps IsDeleted (deleted records come with queryAll). */
bool apply_has_isdeleted(const mapping *m);

/* SELECT f1, f2 FROM Object [WHERE where] */
void apply_soql_select(sb *out, const mapping *m, const map_field *const *f, size_t n,
                       const char *where);
/* The same with every field of m. */
void apply_soql_select_all(sb *out, const mapping *m, const char *where);
/* Id IN ('a','b'), each id escaped as a SOQL string. */
void apply_soql_ids(sb *out, const char *const *ids, size_t n);
/* watermark ("YYYY-MM-DDTHH:MM:SS.mmm", UTC) minus overlap_ms as a SOQL
 * datetime literal; 0, or -1 for a watermark that does not parse. */
int apply_since_literal(const char *watermark, long overlap_ms, char out[40]);

/* "a", "b" (each prefixed with prefix, e.g. "t.", when set) */
void apply_column_list(sb *out, const map_field *const *f, size_t n, const char *prefix);
/* jsonb_to_recordset($1::jsonb) AS x("Id" varchar(18), ...); a relationship
 * field arrives as a nested object, declared once as jsonb. */
void apply_recordset(sb *out, const map_field *const *f, size_t n);
/* The value of one field of recordset row x as its column type. */
void apply_value_expr(sb *out, const map_field *f);
/* INSERT ... ON CONFLICT (sfid) DO UPDATE from the rows select_src yields,
 * changing a row only when Salesforce's copy is at least as new and differs.
 * with_conf: CTEs `conf` (see apply_sql) decide pending rows' conflicts and
 * `stale` names the records whose versions may be older than sfbridge's own
 * later write: left alone. Nothing is lost by it: either the version
 * already held that write (Salesforce committed it before answering the
 * query), or the write is newer than every version the query saw, so the
 * next poll, starting from this one's watermark, reads it. */
void apply_upsert_from(sb *out, const char *schema, const mapping *m, const char *select_src,
                       bool with_conf);
/* One statement applying a page of JSON records ($1): deletions, upserts and
 * the tail's bookkeeping. Returns (deleted, upserted, page max SystemModstamp
 * [, bookkeeping rows]) and, with conflict CTEs, a column `stale`; caller
 * frees. conflict_ctes: for a read-write mapping, the CTEs (", stale AS
 * (sfid), conf AS (...), ...") that find the versions fetched before
 * sfbridge's own later write and the rows changed on both sides; NULL or ""
 * for none. */
char *apply_sql(const char *schema, const mapping *m, apply_tail tail, const char *conflict_ctes);

/* COPY target (cols) FROM STDIN (CSV, empty fields NULL). */
void apply_copy_sql(sb *out, const char *target, const map_field *const *f, size_t n);
/* (Re)create APPLY_STAGE with the columns of f. */
void apply_stage_create_sql(sb *out, const map_field *const *f, size_t n);
/* INSERT INTO APPLY_STAGE from a page of JSON records ($1). */
void apply_stage_insert_sql(sb *out, const map_field *const *f, size_t n);
/* Rows of the table with an sfid the stage lacks, not newer than $1 (a
 * timestamp or NULL): deleted, or with tombstone marked isdeleted. */
void apply_gone_sql(sb *out, const char *schema, const mapping *m, bool tombstone);
/* One batch of a backfill: move up to 5000 rows of APPLY_STAGE (columns
 * f[0] = sfid, f[1..n-1] the new ones) into the table's rows. */
void apply_backfill_sql(sb *out, const char *schema, const mapping *m, const map_field *const *f,
                        size_t n);
/* Delete (or mark deleted, with tombstones) the rows whose sfid is in $1::text[]. */
void apply_delete_ids_sql(sb *out, const char *schema, const mapping *m);

#endif
