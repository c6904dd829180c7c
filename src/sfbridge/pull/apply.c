/*
 * apply: the SOQL and SQL text of the pull path (see apply.h).
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"
#include "pg.h"
#include "sfapi.h"
#include "tlog.h"
#include "util.h"

static bool
is_datetime(const map_field *f)
{
    return strcmp(f->sftype, "datetime") == 0;
}

static bool
is_time(const map_field *f)
{
    return strcmp(f->sftype, "time") == 0;
}

bool
apply_has_isdeleted(const mapping *m)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].column, "isdeleted") == 0)
            return true;
    return false;
}

const map_field **
apply_all_fields(const mapping *m)
{
    const map_field **f = xcalloc(m->nfields ? m->nfields : 1, sizeof *f);
    for (size_t i = 0; i < m->nfields; i++)
        f[i] = &m->fields[i];
    return f;
}

/* ---- SOQL ------------------------------------------------------------------ */

void
apply_soql_select(sb *out, const mapping *m, const map_field *const *f, size_t n, const char *where)
{
    sb_puts(out, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        sb_puts(out, f[i]->name);
    }
    sb_printf(out, " FROM %s", m->object);
    if (where && *where)
        sb_printf(out, " WHERE %s", where);
}

void
apply_soql_select_all(sb *out, const mapping *m, const char *where)
{
    const map_field **f = apply_all_fields(m);
    apply_soql_select(out, m, f, m->nfields, where);
    free(f);
}

void
apply_soql_ids(sb *out, const char *const *ids, size_t n)
{
    sb_puts(out, "Id IN (");
    for (size_t i = 0; i < n; i++) {
        sb_puts(out, i ? ",'" : "'");
        sfapi_soql_escape(out, ids[i]);
        sb_putc(out, '\'');
    }
    sb_putc(out, ')');
}

int
apply_since_literal(const char *watermark, long overlap_ms, char out[40])
{
    sb s = SB_INIT;
    sb_printf(&s, "%sZ", watermark);
    int64_t ms;
    int rc = util_parse_datetime(sb_str(&s), &ms);
    sb_free(&s);
    if (rc != 0)
        return -1;
    ms -= overlap_ms;
    char buf[32];
    util_fmt_datetime_z(ms, buf);
    snprintf(out, 40, "%s", buf);
    return 0;
}

/* ---- SQL pieces ------------------------------------------------------------- */

void
apply_column_list(sb *out, const map_field *const *f, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        if (prefix)
            sb_puts(out, prefix);
        sb_sql_ident(out, f[i]->column);
    }
}

/* "School__r" of a relationship field "School__r.External_Id__c" (len 0 for others). */
static size_t
rel_len(const map_field *f)
{
    const char *dot = strchr(f->name, '.');
    return dot ? (size_t)(dot - f->name) : 0;
}

void
apply_recordset(sb *out, const map_field *const *f, size_t n)
{
    sb_puts(out, "jsonb_to_recordset($1::jsonb) AS x(");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        size_t rl = rel_len(f[i]);
        if (rl) {
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                seen = seen || (rel_len(f[j]) == rl && strncmp(f[j]->name, f[i]->name, rl) == 0);
            if (seen)
                continue;
            char rel[256];
            snprintf(rel, sizeof rel, "%.*s", (int)rl, f[i]->name);
            sb_puts(out, first ? "" : ", ");
            sb_sql_ident(out, rel);
            sb_puts(out, " jsonb");
            first = false;
            continue;
        }
        sb_puts(out, first ? "" : ", ");
        first = false;
        sb_sql_ident(out, f[i]->name);
        sb_printf(out, " %s",
                  is_datetime(f[i]) ? "timestamptz"
                  : is_time(f[i])   ? "text"
                                    : f[i]->pgtype);
    }
    sb_putc(out, ')');
}

void
apply_value_expr(sb *out, const map_field *f)
{
    size_t rl = rel_len(f);
    if (rl) {
        char rel[256];
        snprintf(rel, sizeof rel, "%.*s", (int)rl, f->name);
        sb_puts(out, "(x.");
        sb_sql_ident(out, rel);
        sb_puts(out, " ->> ");
        sb_sql_literal(out, f->name + rl + 1);
        sb_printf(out, ")::%s", f->pgtype);
        return;
    }
    if (is_datetime(f)) {
        sb_puts(out, "(x.");
        sb_sql_ident(out, f->name);
        sb_puts(out, " AT TIME ZONE 'UTC')");
    } else if (is_time(f)) {
        sb_puts(out, "rtrim(x.");
        sb_sql_ident(out, f->name);
        sb_puts(out, ", 'Z')::time");
    } else {
        sb_puts(out, "x.");
        sb_sql_ident(out, f->name);
    }
}

/* ---- statements ---------------------------------------------------------------- */

void
apply_upsert_from(sb *out, const char *schema, const mapping *m, const char *select_src,
                  bool with_conf)
{
    const map_field **f = apply_all_fields(m);
    sb_puts(out, "INSERT INTO ");
    pg_qname(out, schema, m->table);
    sb_puts(out, " AS t (");
    apply_column_list(out, f, m->nfields, NULL);
    sb_puts(out, ", \"_hc_lastop\", \"_hc_err\") ");
    sb_puts(out, select_src);
    sb_puts(out, " ON CONFLICT (\"sfid\") DO UPDATE SET ");
    for (size_t i = 0; i < m->nfields; i++) {
        sb_sql_ident(out, f[i]->column);
        sb_puts(out, " = excluded.");
        sb_sql_ident(out, f[i]->column);
        sb_puts(out, ", ");
    }
    /* INSERTED and UPDATED (sfbridge's write reached Salesforce) stay while
     * the version pulled is that write's own (or older): apps wait for them.
     * A version someone else made since is SYNCED. */
    sb lit = SB_INIT;
    sb_sql_literal(&lit, m->table);
    sb_puts(out, "\"_hc_lastop\" = CASE WHEN t.\"_hc_lastop\" IN ('" HC_INSERTED "', '" HC_UPDATED
                 "') AND ");
    tlog_sql_own_version(out, schema, sb_str(&lit), "t.id",
                         "(excluded.\"systemmodstamp\" AT TIME ZONE 'UTC')");
    sb_puts(out, " THEN t.\"_hc_lastop\" ELSE '" HC_SYNCED "' END, \"_hc_err\" = NULL WHERE ");
    sb_free(&lit);
    /* A row whose own change has not reached Salesforce yet is left alone:
     * the change comes back with the next poll once it is written. */
    /* A version fetched before sfbridge's own later write to the row would
     * undo the app's change (issue 12 #4): the next poll brings the newer one. */
    if (with_conf)
        sb_puts(out, "NOT EXISTS (SELECT 1 FROM stale WHERE stale.sfid = t.sfid) AND ");
    if (m->read_write)
        sb_printf(out, "(t.\"_hc_lastop\" IS DISTINCT FROM '" HC_PENDING "'%s) AND ",
                  with_conf ? " OR EXISTS (SELECT 1 FROM conf WHERE conf.sfid = t.sfid AND "
                              "conf.winner = 'salesforce')"
                            : "");
    /* A row whose change Salesforce refused keeps FAILED, _hc_err and the
     * app's values (for the app to see, fix and retry) until the record
     * really changes in Salesforce. */
    if (m->read_write)
        sb_puts(out,
                "(t.\"_hc_lastop\" IS DISTINCT FROM '" HC_FAILED "' OR t.\"systemmodstamp\" IS "
                "NULL OR excluded.\"systemmodstamp\" > t.\"systemmodstamp\") AND ");
    sb_puts(out, "(t.\"systemmodstamp\" IS NULL OR "
                 "excluded.\"systemmodstamp\" IS NULL OR t.\"systemmodstamp\" <= "
                 "excluded.\"systemmodstamp\") AND (");
    apply_column_list(out, f, m->nfields, "t.");
    sb_puts(out, ") IS DISTINCT FROM (");
    apply_column_list(out, f, m->nfields, "excluded.");
    sb_puts(out, ")");
    free(f);
}

/* The bookkeeping CTE `wm` of a poll or load page (the catalog's text). */
static void
tail_cte(sb *s, const char *schema, apply_tail tail, bool del)
{
    if (tail == APPLY_TAIL_POLL)
        cat_sql_poll_page(s, schema, "(SELECT v FROM mx)",
                          del ? "(SELECT count(*) FROM up) + (SELECT count(*) FROM del)"
                              : "(SELECT count(*) FROM up)");
    else if (tail == APPLY_TAIL_LOAD)
        cat_sql_load_page(s, schema, "(SELECT count(*) FROM src)");
}

char *
apply_sql(const char *schema, const mapping *m, apply_tail tail, const char *conflict_ctes)
{
    const map_field **f = apply_all_fields(m);
    bool del = apply_has_isdeleted(m) && !m->tombstones;
    bool with_conf = conflict_ctes && *conflict_ctes;
    sb s = SB_INIT, src = SB_INIT;
    /* One row per record, its newest version: a batch may name a record twice
     * (a stream backlog fetched in chunks), and ON CONFLICT DO UPDATE refuses
     * to touch a row twice in one statement. */
    bool has_ms = cat_field(m, "SystemModstamp") != NULL;
    sb_puts(&s, "WITH src AS (SELECT DISTINCT ON (x.\"Id\") * FROM ");
    apply_recordset(&s, f, m->nfields);
    sb_puts(&s, has_ms ? " ORDER BY x.\"Id\", x.\"SystemModstamp\" DESC NULLS LAST)"
                       : " ORDER BY x.\"Id\")");
    if (with_conf)
        sb_puts(&s, conflict_ctes);
    if (del) {
        sb_puts(&s, ", del AS (DELETE FROM ");
        pg_qname(&s, schema, m->table);
        sb_puts(&s,
                " t USING src WHERE src.\"IsDeleted\" AND t.\"sfid\" = src.\"Id\" RETURNING 1)");
    }
    sb_puts(&src, "SELECT ");
    for (size_t i = 0; i < m->nfields; i++) {
        apply_value_expr(&src, f[i]);
        sb_puts(&src, ", ");
    }
    sb_puts(&src, "'" HC_SYNCED "', NULL FROM src x");
    if (del)
        sb_puts(&src, " WHERE NOT coalesce(x.\"IsDeleted\", false)");
    sb_puts(&s, ", up AS (");
    apply_upsert_from(&s, schema, m, sb_str(&src), with_conf);
    sb_puts(&s, " RETURNING 1)");
    sb_puts(&s, ", mx AS (SELECT max(\"SystemModstamp\" AT TIME ZONE 'UTC') AS v FROM src)");
    tail_cte(&s, schema, tail, del);
    sb_printf(&s,
              " SELECT (SELECT %s), (SELECT count(*) FROM up), "
              "(SELECT to_char(v, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') FROM mx)%s%s",
              del ? "count(*) FROM del" : "0",
              tail != APPLY_TAIL_NONE ? ", (SELECT count(*) FROM wm)" : "",
              with_conf ? ", (SELECT count(*) FROM stale) AS stale" : "");
    sb_free(&src);
    free(f);
    return sb_steal(&s);
}

void
apply_copy_sql(sb *out, const char *target, const map_field *const *f, size_t n)
{
    sb_printf(out, "COPY %s (", target);
    apply_column_list(out, f, n, NULL);
    sb_puts(out, ") FROM STDIN WITH (FORMAT csv, FORCE_NULL (");
    apply_column_list(out, f, n, NULL);
    sb_puts(out, "))");
}

void
apply_stage_create_sql(sb *out, const map_field *const *f, size_t n)
{
    sb_puts(out, "DROP TABLE IF EXISTS " APPLY_STAGE "; CREATE TEMP TABLE _sfb_stage (");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        sb_sql_ident(out, f[i]->column);
        sb_printf(out, " %s", f[i]->pgtype);
    }
    sb_puts(out, ")");
}

void
apply_stage_insert_sql(sb *out, const map_field *const *f, size_t n)
{
    sb_puts(out, "INSERT INTO " APPLY_STAGE " (");
    apply_column_list(out, f, n, NULL);
    sb_puts(out, ") SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        apply_value_expr(out, f[i]);
    }
    sb_puts(out, " FROM ");
    apply_recordset(out, f, n);
}

void
apply_gone_sql(sb *out, const char *schema, const mapping *m, bool tombstone)
{
    sb_puts(out, tombstone ? "UPDATE " : "DELETE FROM ");
    pg_qname(out, schema, m->table);
    sb_puts(out, tombstone ? " t SET isdeleted = true, \"_hc_lastop\" = '" HC_SYNCED
                             "' WHERE NOT t.isdeleted AND"
                           : " t WHERE");
    sb_puts(out,
            " t.sfid IS NOT NULL AND ($1::timestamp IS NULL OR t.systemmodstamp <= $1::timestamp)"
            " AND NOT EXISTS (SELECT 1 FROM " APPLY_STAGE " s WHERE s.sfid = t.sfid)");
}

void
apply_backfill_sql(sb *out, const char *schema, const mapping *m, const map_field *const *f,
                   size_t n)
{
    /* In batches, so no transaction holds many row locks for long. */
    sb_puts(out,
            "WITH b AS (DELETE FROM " APPLY_STAGE " WHERE ctid IN (SELECT ctid FROM " APPLY_STAGE
            " LIMIT 5000) RETURNING *) UPDATE ");
    pg_qname(out, schema, m->table);
    sb_puts(out, " t SET ");
    for (size_t i = 1; i < n; i++) {
        if (i > 1)
            sb_puts(out, ", ");
        sb_sql_ident(out, f[i]->column);
        sb_puts(out, " = b.");
        sb_sql_ident(out, f[i]->column);
    }
    sb_puts(out, " FROM b WHERE t.sfid = b.sfid");
}

void
apply_delete_ids_sql(sb *out, const char *schema, const mapping *m)
{
    bool tomb = m->tombstones && apply_has_isdeleted(m);
    sb_puts(out, tomb ? "UPDATE " : "DELETE FROM ");
    pg_qname(out, schema, m->table);
    sb_puts(out, tomb ? " SET isdeleted = true, \"_hc_lastop\" = '" HC_SYNCED
                        "', \"_hc_err\" = NULL WHERE NOT isdeleted AND sfid = ANY($1::text[])"
                      : " WHERE sfid = ANY($1::text[])");
}
