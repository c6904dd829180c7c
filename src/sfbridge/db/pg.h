/*
 * pg: sfbridge's thin layer over libpq.
 *
 * Connections are opened marked as sfbridge's own (xmlbinary = 'hex', Heroku
 * Connect's marker, so capture triggers ignore our writes; application_name
 * 'sfbridge'; time zone UTC). Failures become err_t with the SQLSTATE as code.
 * Identifiers only through pg_ident (always quoted), values only as parameters.
 */
#ifndef PG_H
#define PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

PGconn *pg_connect(const char *url, err_t *e);
/* Run a statement without parameters; 0 or -1. */
int pg_exec(PGconn *c, err_t *e, const char *sql);
/* Run with text parameters (NULL entries are SQL NULL). Returns the result
 * (caller PQclear's it) or NULL with e filled. */
PGresult *pg_query(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params);
/* A statement whose one row's first column is JSON text (json_agg ...::text):
 * the parsed value, or NULL with e filled ("WHAT could not be read" when the
 * text is not JSON). */
json_t *pg_query_json(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params,
                      const char *what);
/* Same, for statements whose result is not needed. */
int pg_run(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params);
/* Fill e from a failed result or the connection (returns -1). */
int pg_fail(PGconn *c, const PGresult *r, err_t *e, const char *what);
/* Rollback if a transaction is open, ignoring errors. */
void pg_rollback_quietly(PGconn *c);
bool pg_connection_lost(PGconn *c);
/* Wait up to ms for a NOTIFY on c (a signal ends the wait early) and drop
 * the notifications; true when there was one. Those libpq read along with an
 * earlier statement's results count too: they wait in its queue, where
 * select() on the socket cannot see them. */
bool pg_wait_notify(PGconn *c, int64_t ms);
/* Whether a failure filled by pg_fail is worth retrying as it is: a lost
 * connection, a deadlock or serialization failure, a lock wait given up. */
bool pg_transient(PGconn *c, const err_t *e);

/* Postgres array literals for one text parameter: {"a","b\\"c",NULL} and {1,2}.
 * The one encoder: every element quoted, '"' and '\\' escaped. */
void pg_text_array(sb *out, const char *const *v, size_t n);
void pg_i64_array(sb *out, const int64_t *v, size_t n);

/* "schema"."name" */
void pg_qname(sb *out, const char *schema, const char *name);
/* Whether the relation schema.name exists (*yes). */
int pg_table_exists(PGconn *c, const char *schema, const char *name, bool *yes, err_t *e);
#define pg_ident sb_sql_ident

/* COPY ... FROM STDIN helpers: start, put, end (with error text to abort). */
int pg_copy_begin(PGconn *c, const char *sql, err_t *e);
int pg_copy_put(PGconn *c, const char *data, size_t len, err_t *e);
int pg_copy_end(PGconn *c, const char *abort_reason, err_t *e);
/* End the COPY; *rows gets the rows Postgres copied (its command tag). */
int pg_copy_end_rows(PGconn *c, int64_t *rows, err_t *e);

#endif
