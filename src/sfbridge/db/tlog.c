/*
 * tlog: the trigger log (see tlog.h).
 */
#include "tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "util.h"

static const char *const state_names[TLOG_STATE_COUNT] = {
    [TLOG_NEW] = "NEW",           [TLOG_PENDING] = "PENDING",   [TLOG_SUCCESS] = "SUCCESS",
    [TLOG_FAILED] = "FAILED",     [TLOG_MERGED] = "MERGED",     [TLOG_IGNORE] = "IGNORE",
    [TLOG_IGNORED] = "IGNORED",   [TLOG_READONLY] = "READONLY", [TLOG_REQUEUE] = "REQUEUE",
    [TLOG_REQUEUED] = "REQUEUED",
};

static const char *const action_names[TLOG_ACTION_COUNT] = {
    [TLOG_INSERT] = "INSERT",
    [TLOG_UPDATE] = "UPDATE",
    [TLOG_DELETE] = "DELETE",
};

/* The index of name in names[0..n), or -1. */
static int
name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *
tlog_state_name(tlog_state s)
{
    return (unsigned)s < TLOG_STATE_COUNT ? state_names[s] : NULL;
}

int
tlog_state_parse(const char *name, tlog_state *out)
{
    int i = name_index(state_names, TLOG_STATE_COUNT, name);
    if (i < 0)
        return -1;
    *out = (tlog_state)i;
    return 0;
}

const char *
tlog_action_name(tlog_action a)
{
    return (unsigned)a < TLOG_ACTION_COUNT ? action_names[a] : NULL;
}

/* "schema"._trigger_log and "schema"._trigger_log_archive */
typedef struct names {
    sb log, arch;
} names;

static names
names_of(const char *schema)
{
    names n = {SB_INIT, SB_INIT};
    pg_qname(&n.log, schema, "_trigger_log");
    pg_qname(&n.arch, schema, "_trigger_log_archive");
    return n;
}

static void
names_free(names *n)
{
    sb_free(&n->log);
    sb_free(&n->arch);
}

/* Run a statement built by build(out, schema) without parameters. */
static int
run_built(PGconn *c, const char *schema, void (*build)(sb *, const char *), err_t *e)
{
    sb s = SB_INIT;
    build(&s, schema);
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    return rc;
}

/* ---- DDL ---------------------------------------------------------------- */

#define LOG_COLUMNS_DDL                                                                            \
    " processed_at timestamptz, processed_tx bigint, state varchar(8), action varchar(7),"         \
    " table_name varchar(128), record_id integer, sfid varchar(18), old text, values text,"        \
    " sf_result integer, sf_message text,"                                                         \
    " sfb_attempts integer NOT NULL DEFAULT 0, sfb_retry_at timestamptz, sfb_unknown boolean NOT " \
    "NULL DEFAULT false,"                                                                          \
    " sfb_sent_at timestamptz, sfb_payload jsonb)"

#define SFB_COLUMNS_ADD                                                                        \
    " ADD COLUMN IF NOT EXISTS sfb_attempts integer NOT NULL DEFAULT 0,"                       \
    " ADD COLUMN IF NOT EXISTS sfb_retry_at timestamptz,"                                      \
    " ADD COLUMN IF NOT EXISTS sfb_unknown boolean NOT NULL DEFAULT false,"                    \
    " ADD COLUMN IF NOT EXISTS sfb_sent_at timestamptz, ADD COLUMN IF NOT EXISTS sfb_payload " \
    "jsonb"

void
tlog_sql_ddl(sb *out, const char *schema, const char *channel_lit)
{
    sb q = SB_INIT;
    sb_sql_ident(&q, schema);
    const char *Q = sb_str(&q);
    sb_printf(out,
              "CREATE TABLE IF NOT EXISTS %1$s._trigger_log ("
              " id serial PRIMARY KEY, txid bigint,"
              " created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT "
              "now()," LOG_COLUMNS_DDL ";\n"
              "CREATE TABLE IF NOT EXISTS %1$s._trigger_log_archive (id integer PRIMARY KEY,"
              " txid bigint, created_at timestamptz, updated_at timestamptz," LOG_COLUMNS_DDL ";\n"
              /* A trigger log Heroku Connect made gains sfbridge's bookkeeping columns. */
              "ALTER TABLE %1$s._trigger_log" SFB_COLUMNS_ADD ";\n"
              "ALTER TABLE %1$s._trigger_log_archive" SFB_COLUMNS_ADD ";\n",
              Q);
    sb_printf(out,
              "CREATE INDEX IF NOT EXISTS _trigger_log_idx_created_at ON %1$s._trigger_log "
              "(created_at);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_idx_state_id ON %1$s._trigger_log (state, "
              "id);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_idx_state_table_name ON %1$s._trigger_log "
              "(state, table_name)"
              " WHERE state IN ('NEW', 'PENDING');\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_idx_sfb_record ON %1$s._trigger_log "
              "(table_name, record_id, id)"
              " WHERE state IN ('NEW', 'PENDING');\n"
              /* Entries waiting out a retry (few): what the writer's claim checks first. */
              "CREATE INDEX IF NOT EXISTS _trigger_log_idx_sfb_retry ON %1$s._trigger_log "
              "(sfb_retry_at)"
              " WHERE state = 'NEW' AND sfb_retry_at IS NOT NULL;\n"
              "CREATE UNIQUE INDEX IF NOT EXISTS _trigger_log_archive_sfb_id ON "
              "%1$s._trigger_log_archive (id);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_archive_idx_created_at ON "
              "%1$s._trigger_log_archive"
              " (created_at);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_archive_idx_record_id ON "
              "%1$s._trigger_log_archive"
              " (record_id);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_archive_idx_sfid ON "
              "%1$s._trigger_log_archive"
              " (sfid);\n"
              "CREATE INDEX IF NOT EXISTS _trigger_log_archive_idx_state_table_name ON "
              "%1$s._trigger_log_archive"
              " (state, table_name) WHERE state = 'FAILED';\n",
              Q);
    sb_printf(out,
              "CREATE OR REPLACE FUNCTION %1$s.tlog_notify_trigger() RETURNS trigger LANGUAGE "
              "plpgsql AS $f$\n"
              "BEGIN\n  PERFORM pg_notify(%2$s, 'ping');\n  RETURN NEW;\nEND $f$;\n"
              "DROP TRIGGER IF EXISTS tlog_insert_trigger ON %1$s._trigger_log;\n"
              "CREATE TRIGGER tlog_insert_trigger AFTER INSERT ON %1$s._trigger_log"
              " FOR EACH ROW EXECUTE FUNCTION %1$s.tlog_notify_trigger();\n"
              /* A requeue by hand (state set back to NEW) also wakes the writer. */
              "DROP TRIGGER IF EXISTS tlog_requeue_trigger ON %1$s._trigger_log;\n"
              "CREATE TRIGGER tlog_requeue_trigger AFTER UPDATE OF state ON %1$s._trigger_log"
              " FOR EACH ROW WHEN (NEW.state = 'NEW' AND OLD.state IS DISTINCT FROM 'NEW')"
              " EXECUTE FUNCTION %1$s.tlog_notify_trigger();\n",
              Q, channel_lit);
    /* Rows come only from the capture functions (SECURITY DEFINER: they insert
     * with the rights of the log's owner, from inside a trigger) or from
     * sfbridge's own sessions (xmlbinary = hex): a row an app role inserts by
     * hand, or from a trigger of its own, is refused, so nobody can make
     * sfbridge send a change it did not capture. */
    /* sfbridge's role (the role running this DDL, owner of the capture
     * functions; the log's owner may be another, Heroku Connect's) is written
     * into the function as a literal when it is made: no catalog lookup per row. */
    sb lit = SB_INIT;
    sb_sql_literal(&lit, Q);
    sb_printf(out,
              "DO $do$ BEGIN EXECUTE format($g$"
              "CREATE OR REPLACE FUNCTION %%s.tlog_guard() RETURNS trigger LANGUAGE plpgsql AS "
              "$f$\n"
              "BEGIN\n"
              "  IF current_user <> %%L\n"
              "     OR (pg_trigger_depth() < 2 AND current_setting('xmlbinary') <> 'hex') THEN\n"
              "    RAISE EXCEPTION 'rows of %%%% come only from sfbridge''s capture triggers', "
              "TG_TABLE_NAME\n"
              "      USING ERRCODE = 'insufficient_privilege';\n"
              "  END IF;\n"
              "  RETURN NEW;\n"
              "END $f$$g$, %2$s, current_user); END $do$;\n"
              "DROP TRIGGER IF EXISTS tlog_guard_trigger ON %1$s._trigger_log;\n"
              "CREATE TRIGGER tlog_guard_trigger BEFORE INSERT ON %1$s._trigger_log"
              " FOR EACH ROW EXECUTE FUNCTION %1$s.tlog_guard();\n",
              Q, sb_str(&lit));
    sb_free(&lit);
    sb_free(&q);
}

int
tlog_ensure(PGconn *c, const char *schema, const char *channel_lit, err_t *e)
{
    sb s = SB_INIT;
    tlog_sql_ddl(&s, schema, channel_lit);
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    return rc;
}

/* ---- claiming -------------------------------------------------------------- */

void
tlog_entries_free(tlog_entry *es, size_t n)
{
    for (size_t i = 0; es && i < n; i++) {
        free(es[i].table);
        free(es[i].sfid);
        free(es[i].payload);
    }
    free(es);
}

void
tlog_sql_claim(sb *out, const char *schema, int limit)
{
    names q = names_of(schema);
    /* The records that must wait (an entry in flight or waiting out a retry:
     * usually none, both found by small indexes), then the oldest due entries
     * in id order straight from the (state, id) index, stopping at the limit:
     * the cost does not grow with the backlog, whatever the statistics say. */
    sb_printf(out,
              "WITH blocked AS MATERIALIZED (SELECT table_name, record_id FROM %1$s WHERE state = "
              "'PENDING'"
              "   UNION SELECT table_name, record_id FROM %1$s"
              "   WHERE state = 'NEW' AND sfb_retry_at IS NOT NULL AND sfb_retry_at > now()),"
              " c AS (SELECT l.id FROM %1$s l WHERE l.state = 'NEW'"
              " AND (l.sfb_retry_at IS NULL OR l.sfb_retry_at <= now())"
              " AND (NOT EXISTS (SELECT 1 FROM blocked) OR NOT EXISTS (SELECT 1 FROM blocked b"
              "   WHERE b.table_name = l.table_name AND b.record_id = l.record_id))"
              " ORDER BY l.id LIMIT %2$d FOR UPDATE OF l SKIP LOCKED)"
              " UPDATE %1$s t SET state = 'PENDING', updated_at = now() WHERE t.id = "
              "ANY(ARRAY(SELECT id FROM c))"
              " RETURNING t.id, t.table_name, t.record_id, t.action, t.sfid, t.sfb_unknown, "
              "t.sfb_attempts,"
              " t.sfb_payload::text,"
              " to_char(coalesce(t.sfb_sent_at, now()) AT TIME ZONE 'UTC', "
              "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
              sb_str(&q.log), limit);
    names_free(&q);
}

static char *
dup_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

int
tlog_claim(PGconn *c, const char *schema, int limit, tlog_entry **out, size_t *n, err_t *e)
{
    sb s = SB_INIT;
    tlog_sql_claim(&s, schema, limit);
    PGresult *r = pg_query(c, e, sb_str(&s), 0, NULL);
    sb_free(&s);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    tlog_entry *es = xcalloc(rows ? (size_t)rows : 1, sizeof *es);
    for (int i = 0; i < rows; i++) {
        tlog_entry *en = &es[i];
        en->id = atoll(PQgetvalue(r, i, 0));
        en->table = xstrdup(PQgetvalue(r, i, 1));
        en->record_id = atoi(PQgetvalue(r, i, 2));
        /* TG_OP, read by its first letter (I, U, D) */
        char a = PQgetvalue(r, i, 3)[0];
        en->action = a == 'I' ? TLOG_INSERT : a == 'U' ? TLOG_UPDATE : TLOG_DELETE;
        en->sfid = dup_or_null(r, i, 4);
        en->unknown = PQgetvalue(r, i, 5)[0] == 't';
        en->attempts = atoi(PQgetvalue(r, i, 6));
        en->payload = dup_or_null(r, i, 7);
        snprintf(en->sent_at, sizeof en->sent_at, "%s", PQgetvalue(r, i, 8));
    }
    PQclear(r);
    *out = es;
    *n = (size_t)rows;
    return 0;
}

/* UPDATE the entries ids with `set` ($2 bound to arg). */
static int
update_entries(PGconn *c, const char *schema, const int64_t *ids, size_t n, const char *set,
               const char *arg, err_t *e)
{
    if (n == 0)
        return 0;
    names q = names_of(schema);
    sb a = SB_INIT, s = SB_INIT;
    pg_i64_array(&a, ids, n);
    sb_printf(&s, "UPDATE %s SET %s WHERE id = ANY($1::bigint[])", sb_str(&q.log), set);
    const char *p[] = {sb_str(&a), arg};
    int rc = pg_run(c, e, sb_str(&s), 2, p);
    sb_free(&a);
    sb_free(&s);
    names_free(&q);
    return rc;
}

int
tlog_ignore(PGconn *c, const char *schema, const int64_t *ids, size_t n, const char *why, err_t *e)
{
    return update_entries(c, schema, ids, n,
                          "state = 'IGNORED', sf_message = $2, processed_at = now()", why, e);
}

int
tlog_adopt(PGconn *c, const char *schema, const int64_t *ids, size_t n, const char *sfid, err_t *e)
{
    return update_entries(c, schema, ids, n, "sfid = $2, sfb_unknown = false, sfb_payload = NULL",
                          sfid, e);
}

int
tlog_unclaim(PGconn *c, const char *schema, int delay_s, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    sb_printf(&s,
              "UPDATE %s SET state = 'NEW', sfb_retry_at = now() + interval '%d seconds'"
              " WHERE state = 'PENDING'",
              sb_str(&q.log), delay_s);
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    names_free(&q);
    return rc;
}

int
tlog_analyze(PGconn *c, const char *schema, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    sb_printf(&s, "ANALYZE %s", sb_str(&q.log));
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    names_free(&q);
    return rc;
}

void
tlog_sql_recover(sb *out, const char *schema)
{
    names q = names_of(schema);
    /* Only an insert that was sent (its payload is remembered before sending) can have happened. */
    sb_printf(out,
              "UPDATE %s SET state = 'NEW',"
              " sfb_unknown = sfb_unknown OR (action = 'INSERT' AND sfb_payload IS NOT NULL),"
              " sfb_retry_at = NULL WHERE state = 'PENDING'",
              sb_str(&q.log));
    names_free(&q);
}

int
tlog_recover(PGconn *c, const char *schema, err_t *e)
{
    return run_built(c, schema, tlog_sql_recover, e);
}

/* ---- housekeeping ------------------------------------------------------------ */

#define LOG_COLS                                                                                \
    "id, txid, created_at, updated_at, processed_at, processed_tx, state, action, table_name, " \
    "record_id, sfid, old, values, sf_result, sf_message, sfb_attempts, sfb_retry_at, "         \
    "sfb_unknown, sfb_sent_at, sfb_payload"

/* INSERT INTO log ... SELECT ... FROM a: archived entries back as NEW ones. */
#define REQUEUE_COPY                                                                               \
    " INSERT INTO %2$s (txid, created_at, updated_at, state, action, table_name, record_id, sfid," \
    " old, values) SELECT txid, created_at, now(), 'NEW', action, table_name, record_id, sfid,"    \
    " old, values FROM a ORDER BY id"

void
tlog_sql_housekeeping(sb *out, const char *schema)
{
    names q = names_of(schema);
    /* Heroku Connect's requeue states. */
    sb_printf(out,
              "UPDATE %s SET state = 'NEW', sfb_retry_at = NULL, sfb_attempts = 0 WHERE state = "
              "'REQUEUE';",
              sb_str(&q.log));
    sb_printf(out,
              "WITH a AS (UPDATE %1$s SET state = 'REQUEUED' WHERE state = 'REQUEUE' RETURNING "
              "*)" REQUEUE_COPY ";",
              sb_str(&q.arch), sb_str(&q.log));
    /* Finished entries move to the archive. */
    sb_printf(out,
              "WITH moved AS (DELETE FROM %s WHERE state IN ('SUCCESS', 'MERGED', 'IGNORE', "
              "'IGNORED', 'READONLY')"
              " OR (state = 'FAILED' AND processed_at < now() - interval '1 day') RETURNING *)"
              " INSERT INTO %s (" LOG_COLS ") SELECT id, txid, created_at, updated_at,"
              " coalesce(processed_at, now()), processed_tx,"
              " CASE state WHEN 'IGNORE' THEN 'IGNORED' ELSE state END, action, table_name, "
              "record_id, sfid,"
              " old, values, sf_result, sf_message, sfb_attempts, sfb_retry_at, sfb_unknown, "
              "sfb_sent_at,"
              " sfb_payload FROM moved ON CONFLICT (id) DO NOTHING",
              sb_str(&q.log), sb_str(&q.arch));
    names_free(&q);
}

int
tlog_housekeeping(PGconn *c, const char *schema, err_t *e)
{
    return run_built(c, schema, tlog_sql_housekeeping, e);
}

int
tlog_prune_archive(PGconn *c, const char *schema, long days, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    sb_printf(&s, "DELETE FROM %s WHERE created_at < now() - make_interval(days => %ld)",
              sb_str(&q.arch), days);
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    names_free(&q);
    return rc;
}

/* Run s with the one parameter p; add the rows it touched to *total. */
static int
run_counted(PGconn *c, const char *s, const char *p, int64_t *total, err_t *e)
{
    const char *params[] = {p};
    PGresult *r = pg_query(c, e, s, 1, params);
    if (!r)
        return -1;
    *total += atoll(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

/* The ids of the array literal ids that name no FAILED entry, into out. */
static int
requeue_missing(PGconn *c, const names *q, const char *ids, sb *out, err_t *e)
{
    sb s = SB_INIT;
    sb_printf(&s,
              "SELECT x FROM unnest($1::bigint[]) WITH ORDINALITY AS u(x, i)"
              " WHERE NOT EXISTS (SELECT 1 FROM %s WHERE id = x AND state = 'FAILED')"
              " AND NOT EXISTS (SELECT 1 FROM %s WHERE id = x AND state = 'FAILED') ORDER BY i",
              sb_str(&q->log), sb_str(&q->arch));
    const char *p[] = {ids};
    PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        sb_printf(out, "%s%s", out->len ? ", " : "", PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

/* The FAILED entries of mapped table `table` about to be requeued (all, or
 * ids $1) take the row's values as it is now, so a row fixed since the
 * failure is sent as fixed: an INSERT the whole row, an UPDATE its own
 * columns. Entries whose row is gone keep what they captured. */
static int
refresh_failed(PGconn *c, const names *q, const char *schema, const char *table, const char *ids,
               err_t *e)
{
    sb qt = SB_INIT, s = SB_INIT;
    pg_qname(&qt, schema, table);
    const char *tabs[] = {sb_str(&q->log), sb_str(&q->arch)};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        sb_clear(&s);
        sb_printf(&s,
                  "UPDATE %s l SET values = (CASE l.action WHEN 'INSERT'"
                  " THEN hstore(t.*) - ARRAY['_hc_lastop', '_hc_err']"
                  " ELSE slice(hstore(t.*), akeys(l.values::hstore)) END)::text"
                  " FROM %s t WHERE t.id = l.record_id AND l.table_name = $2"
                  " AND l.state = 'FAILED' AND l.action IN ('INSERT', 'UPDATE')"
                  " AND ($1::bigint[] IS NULL OR l.id = ANY($1::bigint[]))",
                  tabs[i], sb_str(&qt));
        const char *p[] = {ids, table};
        rc = pg_run(c, e, sb_str(&s), 2, p);
    }
    sb_free(&qt);
    sb_free(&s);
    return rc;
}

int
tlog_requeue(PGconn *c, const char *schema, const char *const *ids, size_t nids, bool all,
             const char *const *tables, size_t ntables, int64_t *n, sb *missing, err_t *e)
{
    sb a = SB_INIT, s = SB_INIT;
    sb_putc(&a, '{');
    for (size_t i = 0; i < nids; i++) {
        int64_t v;
        if (util_parse_i64(ids[i], &v) != 0 || v <= 0) {
            sb_free(&a);
            return err_set(e, 400, "BAD_USAGE", "'%s' is not a trigger log id", ids[i]);
        }
        sb_printf(&a, "%s%lld", i ? "," : "", (long long)v);
    }
    sb_putc(&a, '}');
    names q = names_of(schema);
    const char *p = all ? NULL : sb_str(&a);
    int64_t total = 0;
    int rc = pg_exec(c, e, "BEGIN");
    if (rc == 0 && p && missing)
        rc = requeue_missing(c, &q, p, missing, e);
    for (size_t i = 0; rc == 0 && i < ntables; i++)
        rc = refresh_failed(c, &q, schema, tables[i], p, e);
    if (rc == 0) {
        sb_clear(&s);
        sb_printf(&s,
                  "UPDATE %s SET state = 'NEW', sfb_retry_at = NULL, sfb_attempts = 0, sf_message "
                  "= NULL,"
                  " processed_at = NULL"
                  " WHERE state = 'FAILED' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))",
                  sb_str(&q.log));
        rc = run_counted(c, sb_str(&s), p, &total, e);
    }
    if (rc == 0) {
        sb_clear(&s);
        sb_printf(&s,
                  "WITH a AS (UPDATE %1$s SET state = 'REQUEUED' WHERE state = 'FAILED'"
                  " AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) RETURNING *)" REQUEUE_COPY,
                  sb_str(&q.arch), sb_str(&q.log));
        rc = run_counted(c, sb_str(&s), p, &total, e);
    }
    rc = rc == 0 ? pg_exec(c, e, "COMMIT") : (pg_rollback_quietly(c), -1);
    *n = total;
    sb_free(&a);
    sb_free(&s);
    names_free(&q);
    return rc;
}

/* ---- what the writer reads and records ------------------------------------------ */

PGresult *
tlog_values(PGconn *c, const char *schema, const int64_t *ids, size_t n, err_t *e)
{
    names q = names_of(schema);
    sb a = SB_INIT, s = SB_INIT;
    pg_i64_array(&a, ids, n);
    /* The columns as text (hstore_to_json: a fraction of the cost of
     * populate_record and to_jsonb per entry); the writer types them by column. */
    sb_printf(&s,
              "SELECT l.id, hstore_to_json(l.values::hstore)::text FROM %s l WHERE l.id = "
              "ANY($1::bigint[])",
              sb_str(&q.log));
    const char *p[] = {sb_str(&a)};
    PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
    sb_free(&a);
    sb_free(&s);
    names_free(&q);
    return r;
}

static void
int_array(sb *out, const int *v, size_t n)
{
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++)
        sb_printf(out, "%s%d", i ? "," : "", v[i]);
    sb_putc(out, '}');
}

PGresult *
tlog_written_sfids(PGconn *c, const char *schema, const char *table, const int *rids, size_t n,
                   err_t *e)
{
    names q = names_of(schema);
    sb a = SB_INIT, s = SB_INIT;
    int_array(&a, rids, n);
    /* Any entry of the record counts: an insert folded with later updates is
     * MERGED, the update that carried it SUCCESS. */
    sb_printf(&s,
              "SELECT DISTINCT ON (record_id) record_id, sfid FROM (SELECT id, record_id, sfid "
              "FROM %s"
              " WHERE table_name = $2 AND record_id = ANY($1::int[])"
              " AND state IN ('SUCCESS', 'MERGED') AND sfid IS NOT NULL UNION ALL SELECT id, "
              "record_id, sfid"
              " FROM %s WHERE record_id = ANY($1::int[]) AND table_name = $2"
              " AND state IN ('SUCCESS', 'MERGED') AND sfid IS NOT NULL) x ORDER BY record_id, id "
              "DESC",
              sb_str(&q.log), sb_str(&q.arch));
    const char *p[] = {sb_str(&a), table};
    PGresult *r = pg_query(c, e, sb_str(&s), 2, p);
    sb_free(&a);
    sb_free(&s);
    names_free(&q);
    return r;
}

int
tlog_remember_payloads(PGconn *c, const char *schema, const int64_t *ids,
                       const char *const *payloads, size_t n, err_t *e)
{
    names q = names_of(schema);
    sb a = SB_INIT, b = SB_INIT, s = SB_INIT;
    pg_i64_array(&a, ids, n);
    pg_text_array(&b, payloads, n);
    /* sfbridge's clock, not Postgres's: the windows in which the writer
     * looks for a lost insert's record are this time plus what sfapi
     * measured of Salesforce's clock against sfbridge's. */
    char at[32];
    util_fmt_datetime_z(util_now_ms(), at);
    sb_printf(&s,
              "UPDATE %s l SET sfb_payload = u.p::jsonb, sfb_sent_at = $3::timestamptz"
              " FROM unnest($1::bigint[], $2::text[]) AS u(id, p) WHERE l.id = u.id",
              sb_str(&q.log));
    const char *p[] = {sb_str(&a), sb_str(&b), at};
    int rc = pg_run(c, e, sb_str(&s), 3, p);
    sb_free(&a);
    sb_free(&b);
    sb_free(&s);
    names_free(&q);
    return rc;
}

void
tlog_sql_outcomes(sb *out, const char *schema)
{
    names q = names_of(schema);
    sb_printf(out,
              "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], "
              "$5::text[],"
              "   $6::text[]) AS u(id, state, sfid, msg, delay, unk)),"
              " moved AS (DELETE FROM %1$s l USING u WHERE l.id = u.id"
              "   AND u.state IN ('SUCCESS', 'MERGED', 'IGNORED')"
              "   RETURNING l.*, u.state AS n_state, u.sfid AS n_sfid, u.msg AS n_msg, u.unk AS "
              "n_unk),"
              " archived AS (INSERT INTO %2$s (" LOG_COLS
              ") SELECT id, txid, created_at, now(), now(),"
              "   txid_current(), n_state, action, table_name, record_id, coalesce(n_sfid, sfid), "
              "old, values, 0,"
              "   n_msg, sfb_attempts, NULL, n_unk::boolean, sfb_sent_at, sfb_payload FROM moved"
              "   ON CONFLICT (id) DO NOTHING)"
              " UPDATE %1$s l SET state = u.state, sfid = coalesce(u.sfid, l.sfid), updated_at = "
              "now(),"
              " processed_at = CASE WHEN u.state = 'NEW' THEN NULL ELSE now() END,"
              " processed_tx = CASE WHEN u.state = 'NEW' THEN NULL ELSE txid_current() END,"
              " sf_result = CASE u.state WHEN 'FAILED' THEN 1 WHEN 'NEW' THEN NULL ELSE 0 END,"
              " sf_message = u.msg,"
              " sfb_attempts = l.sfb_attempts + CASE WHEN u.state = 'NEW' THEN 1 ELSE 0 END,"
              " sfb_retry_at = CASE WHEN u.state = 'NEW'"
              "   THEN now() + make_interval(secs => u.delay::double precision / 1000) END,"
              " sfb_unknown = u.unk::boolean"
              " FROM u WHERE l.id = u.id AND u.state NOT IN ('SUCCESS', 'MERGED', 'IGNORED')",
              sb_str(&q.log), sb_str(&q.arch));
    names_free(&q);
}

int
tlog_record_outcomes(PGconn *c, const char *schema, const tlog_outcome *o, size_t n, err_t *e)
{
    if (n == 0)
        return 0;
    int64_t *ids = xcalloc(n, sizeof *ids);
    const char **state = xcalloc(n, sizeof *state), **sfid = xcalloc(n, sizeof *sfid),
               **msg = xcalloc(n, sizeof *msg), **delay = xcalloc(n, sizeof *delay),
               **unk = xcalloc(n, sizeof *unk);
    char(*delays)[24] = xcalloc(n, sizeof *delays);
    for (size_t i = 0; i < n; i++) {
        ids[i] = o[i].id;
        state[i] = tlog_state_name(o[i].state);
        sfid[i] = o[i].sfid;
        msg[i] = o[i].message;
        snprintf(delays[i], sizeof delays[i], "%ld", o[i].delay_ms);
        delay[i] = delays[i];
        unk[i] = o[i].unknown ? "t" : "f";
    }
    sb a[6] = {SB_INIT, SB_INIT, SB_INIT, SB_INIT, SB_INIT, SB_INIT}, s = SB_INIT;
    pg_i64_array(&a[0], ids, n);
    pg_text_array(&a[1], state, n);
    pg_text_array(&a[2], sfid, n);
    pg_text_array(&a[3], msg, n);
    pg_text_array(&a[4], delay, n);
    pg_text_array(&a[5], unk, n);
    tlog_sql_outcomes(&s, schema);
    const char *p[6];
    for (int i = 0; i < 6; i++)
        p[i] = sb_str(&a[i]);
    int rc = pg_run(c, e, sb_str(&s), 6, p);
    for (int i = 0; i < 6; i++)
        sb_free(&a[i]);
    sb_free(&s);
    free(ids);
    free(state);
    free(sfid);
    free(msg);
    free(delay);
    free(unk);
    free(delays);
    return rc;
}

int
tlog_supersede_failures(PGconn *c, const char *schema, const char *table, const int *rids, size_t n,
                        err_t *e)
{
    if (n == 0)
        return 0;
    names q = names_of(schema);
    sb a = SB_INIT, s = SB_INIT;
    int_array(&a, rids, n);
    sb_printf(&s,
              "UPDATE %s SET state = 'MERGED', processed_at = now(),"
              " sf_message = sf_message || ' (superseded by a later successful write)'"
              " WHERE state = 'FAILED' AND table_name = $1 AND record_id = ANY($2::int[])",
              sb_str(&q.log));
    const char *p[] = {table, sb_str(&a)};
    int rc = pg_run(c, e, sb_str(&s), 2, p);
    sb_free(&a);
    sb_free(&s);
    names_free(&q);
    return rc;
}

/* One bigint (NULL -> *isnull) from a statement about the log. */
static int
scalar(PGconn *c, const char *schema, const char *fmt_select, const char *where, int64_t *v,
       bool *isnull, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    sb_printf(&s, "SELECT %s FROM %s WHERE %s", fmt_select, sb_str(&q.log), where);
    PGresult *r = pg_query(c, e, sb_str(&s), 0, NULL);
    sb_free(&s);
    names_free(&q);
    if (!r)
        return -1;
    *isnull = PQntuples(r) == 0 || PQgetisnull(r, 0, 0);
    *v = *isnull ? 0 : atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int
tlog_waiting(PGconn *c, const char *schema, int64_t *n, err_t *e)
{
    bool isnull;
    return scalar(c, schema, "count(*)",
                  "state = 'PENDING' OR (state = 'NEW' AND sfb_retry_at IS NULL)", n, &isnull, e);
}

int
tlog_retrying(PGconn *c, const char *schema, int64_t *n, err_t *e)
{
    bool isnull;
    return scalar(c, schema, "count(*)", "state = 'NEW' AND sfb_retry_at > now()", n, &isnull, e);
}

int
tlog_next_retry_ms(PGconn *c, const char *schema, int64_t *ms, err_t *e)
{
    bool isnull;
    if (scalar(c, schema, "(extract(epoch FROM min(sfb_retry_at) - now()) * 1000)::bigint",
               "state = 'NEW' AND sfb_retry_at > now()", ms, &isnull, e) != 0)
        return -1;
    if (isnull)
        *ms = -1;
    else if (*ms < 0)
        *ms = 0;
    return 0;
}

/* ---- what other modules ask ---------------------------------------------------- */

void
tlog_sql_waiting_records(sb *out, const char *schema, const char *table_param,
                         const char *rids_param, const char *own_param)
{
    names q = names_of(schema);
    sb_printf(out,
              "SELECT DISTINCT l.record_id FROM %s l WHERE l.table_name = %s"
              "   AND l.record_id = ANY(%s) AND l.state IN ('NEW', 'PENDING')"
              "   AND l.id <> ALL(%s)",
              sb_str(&q.log), table_param, rids_param, own_param);
    names_free(&q);
}

void
tlog_sql_pending_change(sb *out, const char *schema, const char *table_lit, const char *row_id,
                        const char *alias)
{
    names q = names_of(schema);
    sb_printf(out,
              "(SELECT max(l.created_at) AS changed_at FROM %s l"
              " WHERE l.table_name = %s AND l.record_id = %s AND l.state = 'NEW') %s",
              sb_str(&q.log), table_lit, row_id, alias);
    names_free(&q);
}

/* "EXISTS (...)": a successful write of the row in log table `tab`,
 * processed `cmp` (">=", ">") `stamp`. */
static void
written(sb *out, const char *tab, const char *table_lit, const char *row_id, const char *cmp,
        const char *stamp)
{
    sb_printf(out,
              "EXISTS (SELECT 1 FROM %s o WHERE o.table_name = %s AND o.record_id = %s"
              " AND o.state IN ('SUCCESS', 'MERGED') AND o.processed_at %s %s)",
              tab, table_lit, row_id, cmp, stamp);
}

void
tlog_sql_not_own_write(sb *out, const char *schema, const char *table_lit, const char *row_id,
                       const char *stamp)
{
    names q = names_of(schema);
    const char *tabs[] = {sb_str(&q.log), sb_str(&q.arch)};
    for (int i = 0; i < 2; i++) {
        sb_puts(out, " AND NOT ");
        written(out, tabs[i], table_lit, row_id, ">=", stamp);
    }
    /* A write in flight (PENDING), or one tried whose answer may have been
     * lost (NEW again, attempts counted), may be what made that version:
     * until its outcome is known the version is not taken for another
     * writer's (else its later changes lose a conflict against it). */
    sb_printf(out,
              " AND NOT EXISTS (SELECT 1 FROM %s o WHERE o.table_name = %s AND o.record_id = %s"
              "   AND (o.state = 'PENDING' OR (o.state = 'NEW' AND o.sfb_attempts > 0)))",
              sb_str(&q.log), table_lit, row_id);
    names_free(&q);
}

/* "(EXISTS ... OR EXISTS ...)": written() in the log or its archive. */
static void
written_either(sb *out, const char *schema, const char *table_lit, const char *row_id,
               const char *cmp, const char *stamp)
{
    names q = names_of(schema);
    sb_putc(out, '(');
    written(out, sb_str(&q.log), table_lit, row_id, cmp, stamp);
    sb_puts(out, " OR ");
    written(out, sb_str(&q.arch), table_lit, row_id, cmp, stamp);
    sb_putc(out, ')');
    names_free(&q);
}

void
tlog_sql_written_since(sb *out, const char *schema, const char *table_lit, const char *row_id,
                       const char *since)
{
    written_either(out, schema, table_lit, row_id, ">", since);
}

void
tlog_sql_own_version(sb *out, const char *schema, const char *table_lit, const char *row_id,
                     const char *stamp)
{
    written_either(out, schema, table_lit, row_id, ">=", stamp);
}

void
tlog_sql_names_no_sfid(sb *out, const char *schema, const char *table_lit, const char *sfid_expr)
{
    names q = names_of(schema);
    /* The archive too: a record whose entries are all processed (an insert
     * that succeeded, a delete that lost a conflict) is known, not a lost
     * insert's, even while no row names it. */
    sb_printf(out,
              " AND NOT EXISTS (SELECT 1 FROM %1$s l WHERE l.table_name = %3$s AND l.sfid = %4$s)"
              " AND NOT EXISTS (SELECT 1 FROM %2$s a WHERE a.table_name = %3$s AND a.sfid = %4$s)",
              sb_str(&q.log), sb_str(&q.arch), table_lit, sfid_expr);
    names_free(&q);
}

void
tlog_sql_ignore_conflicts(sb *out, const char *schema, const char *table_lit,
                          const char *policy_lit)
{
    names q = names_of(schema);
    sb_printf(out,
              "UPDATE %s l SET state = 'IGNORED', processed_at = now(),"
              " sf_message = 'conflict: the change in Salesforce won (' || %s || ')'"
              " FROM conf WHERE conf.winner = 'salesforce' AND l.table_name = %s AND l.record_id = "
              "conf.rid"
              " AND l.state = 'NEW' RETURNING 1",
              sb_str(&q.log), policy_lit, table_lit);
    names_free(&q);
}

int
tlog_unknown_inserts(PGconn *c, const char *schema, const char *table, int64_t from_ms,
                     int64_t to_ms, const int *skip_rids, size_t nskip, json_t **out, err_t *e)
{
    *out = NULL;
    names q = names_of(schema);
    sb s = SB_INIT, skip = SB_INIT;
    sb_puts(&skip, "{");
    for (size_t i = 0; i < nskip; i++)
        sb_printf(&skip, "%s%d", i ? "," : "", skip_rids[i]);
    sb_puts(&skip, "}");
    char from[32], to[32];
    util_fmt_datetime_z(from_ms, from);
    util_fmt_datetime_z(to_ms, to);
    sb_printf(&s,
              "SELECT DISTINCT ON (record_id) sfb_payload::text,"
              " to_char(sfb_sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
              " state <> 'FAILED' FROM %s WHERE table_name = $1 AND action = 'INSERT' AND "
              "sfb_unknown"
              " AND sfb_payload IS NOT NULL AND state IN ('NEW', 'PENDING', 'FAILED')"
              " AND sfb_sent_at BETWEEN $2::timestamptz AND $3::timestamptz"
              " AND NOT (record_id = ANY ($4::int[])) ORDER BY record_id, id DESC",
              sb_str(&q.log));
    const char *p[] = {table, from, to, sb_str(&skip)};
    PGresult *r = pg_query(c, e, sb_str(&s), 4, p);
    sb_free(&s);
    sb_free(&skip);
    names_free(&q);
    if (!r)
        return -1;
    *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *pay = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        if (json_is_object(pay))
            json_array_append_new(*out, json_pack("{s:o, s:s, s:b}", "payload", pay, "sent_at",
                                                  PQgetvalue(r, i, 1), "open",
                                                  PQgetvalue(r, i, 2)[0] == 't'));
        else
            json_decref(pay);
    }
    PQclear(r);
    return 0;
}

int
tlog_unsettled_inserts(PGconn *c, const char *schema, const char *table, bool locked, bool *yes,
                       err_t *e)
{
    *yes = false;
    names q = names_of(schema);
    sb s = SB_INIT;
    /* Under the table lock, an insert still PENDING that was sent (payload
     * remembered) has no live writer behind it: the writer holds the lock
     * from sending to recording, so its connection died in between (a
     * Postgres restart). Its record may exist in Salesforce unlinked. */
    sb_printf(&s,
              "SELECT EXISTS (SELECT 1 FROM %s WHERE table_name = $1 AND action = 'INSERT'"
              " AND state IN ('NEW', 'PENDING') AND (sfb_unknown%s))",
              sb_str(&q.log), locked ? " OR (state = 'PENDING' AND sfb_sent_at IS NOT NULL)" : "");
    const char *p[] = {table};
    PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
    sb_free(&s);
    names_free(&q);
    if (!r)
        return -1;
    *yes = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return 0;
}

void
tlog_sql_status(sb *out, const char *qschema)
{
    sb_printf(out,
              "(SELECT json_build_object('pending', count(*) FILTER (WHERE state IN ('NEW', "
              "'PENDING')),"
              "   'retrying', count(*) FILTER (WHERE state = 'NEW' AND sfb_retry_at > now()),"
              "   'failed', count(*) FILTER (WHERE state = 'FAILED'),"
              "   'last_error', (SELECT sf_message FROM %1$s._trigger_log WHERE sf_message IS NOT "
              "NULL"
              "     ORDER BY updated_at DESC LIMIT 1)) FROM %1$s._trigger_log)",
              qschema);
}

void
tlog_sql_table_status(sb *out, const char *qschema, const char *table_expr)
{
    sb_printf(out,
              "(SELECT json_build_object('pending', count(*) FILTER (WHERE state IN ('NEW', "
              "'PENDING')), 'failed', count(*) FILTER (WHERE state = 'FAILED'))"
              " FROM %s._trigger_log WHERE table_name = %s)",
              qschema, table_expr);
}

json_t *
tlog_history_json(PGconn *c, const char *schema, const char *table, int64_t record_id, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    char rid[24];
    snprintf(rid, sizeof rid, "%lld", (long long)record_id);
    sb_printf(&s,
              "SELECT coalesce(json_agg(json_build_object('id', id, 'action', action, 'state', "
              "state, 'values', hstore_to_json(values::hstore), 'sf_message', sf_message,"
              " 'created_at', created_at, 'processed_at', processed_at, 'archived', archived)"
              " ORDER BY id DESC), '[]'::json)::text FROM (SELECT * FROM ("
              "SELECT *, false AS archived FROM %s WHERE table_name = $1 AND record_id = $2::int"
              " UNION ALL SELECT *, true FROM %s WHERE table_name = $1 AND record_id = $2::int)"
              " u ORDER BY id DESC LIMIT 100) l",
              sb_str(&q.log), sb_str(&q.arch));
    const char *p[] = {table, rid};
    json_t *j = pg_query_json(c, e, sb_str(&s), 2, p, "the record's history");
    sb_free(&s);
    names_free(&q);
    return j;
}

json_t *
tlog_errors_json(PGconn *c, const char *schema, const char *table, int hours, err_t *e)
{
    names q = names_of(schema);
    sb s = SB_INIT;
    char h[16];
    snprintf(h, sizeof h, "%d", hours);
    /* FAILED entries stay in the log a day, then in the archive. */
    sb_printf(&s,
              "SELECT coalesce(json_agg(json_build_object('id', id, 'table_name', table_name,"
              " 'record_id', record_id, 'sfid', sfid, 'action', action, 'state', state,"
              " 'message', sf_message, 'created_at', created_at, 'processed_at', processed_at,"
              " 'values', hstore_to_json(values::hstore)) ORDER BY id DESC), '[]'::json)::text"
              " FROM (SELECT * FROM %s UNION ALL SELECT * FROM %s) l WHERE l.state = 'FAILED'"
              " AND l.processed_at > now() - make_interval(hours => $1::int)"
              " AND ($2::text IS NULL OR l.table_name = $2)",
              sb_str(&q.log), sb_str(&q.arch));
    const char *p[] = {h, table};
    json_t *j = pg_query_json(c, e, sb_str(&s), 2, p, "the write errors");
    sb_free(&s);
    names_free(&q);
    return j;
}
