/*
 * catalog: the state tables in the sync schema, and struct mapping <-> rows
 * (configuration). The connection row is in catalog_conn.c, state changes and
 * progress in catalog_state.c.
 */
#include "catalog.h"
#include "notices.h"

#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "catalog_int.h"
#include "locks.h"
#include "pg.h"
#include "sb.h"
#include "util.h"

/* The state tables. %1$s is the quoted schema. Every statement is idempotent,
 * so cat_ensure also upgrades an older catalog by adding what is missing. */
static const char *const catalog_ddl[] = {
    "CREATE SCHEMA IF NOT EXISTS %1$s",
    "CREATE TABLE IF NOT EXISTS %1$s._sfbridge_connection ("
    " id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
    " org_id varchar(18), instance_url text, api_version varchar(10),"
    " state varchar(32) NOT NULL DEFAULT 'IDLE', paused boolean NOT NULL DEFAULT false,"
    " last_error text, daemon_pid integer, daemon_host text, heartbeat_at timestamptz,"
    " catalog_version integer NOT NULL DEFAULT 1,"
    " created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT "
    "now())",
    "INSERT INTO %1$s._sfbridge_connection (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS %1$s._sfbridge_mapping ("
    " object_name varchar(255) PRIMARY KEY, table_name varchar(63) NOT NULL UNIQUE,"
    " access varchar(10) NOT NULL DEFAULT 'read_only' CHECK (access IN ('read_only', "
    "'read_write')),"
    " sf_notify_enabled boolean NOT NULL DEFAULT false,"
    " sf_polling_seconds integer NOT NULL DEFAULT 600 CHECK (sf_polling_seconds >= 1),"
    " sf_max_daily_api_calls integer NOT NULL DEFAULT 30000,"
    " fields jsonb NOT NULL, indexes jsonb NOT NULL DEFAULT '{}', upsert_field varchar(255),"
    " tombstones boolean NOT NULL DEFAULT false,"
    " state varchar(32) NOT NULL DEFAULT 'INITIAL', paused boolean NOT NULL DEFAULT false,"
    " watermark timestamp, loaded boolean NOT NULL DEFAULT false,"
    " load_job varchar(18), load_locator text, load_wm timestamp,"
    " load_done bigint NOT NULL DEFAULT 0, load_total bigint, load_started_at timestamptz,"
    " resync_fields jsonb, last_poll_at timestamptz, next_poll_at timestamptz, last_drift_at "
    "timestamptz,"
    " rows_synced bigint NOT NULL DEFAULT 0, repairs bigint NOT NULL DEFAULT 0,"
    " errors integer NOT NULL DEFAULT 0, last_error text,"
    " api_day date, api_calls integer NOT NULL DEFAULT 0,"
    " created_at timestamptz NOT NULL DEFAULT now(), applied_at timestamptz NOT NULL DEFAULT "
    "now())",
    "CREATE TABLE IF NOT EXISTS %1$s._hcmeta (id serial PRIMARY KEY, hcver integer, org_id "
    "varchar(50), details text)",
    /* accelerated sync (streaming) */
    "ALTER TABLE %1$s._sfbridge_mapping ADD COLUMN IF NOT EXISTS replay_id bigint,"
    " ADD COLUMN IF NOT EXISTS stream_state varchar(16), ADD COLUMN IF NOT EXISTS stream_channel "
    "text,"
    " ADD COLUMN IF NOT EXISTS stream_events bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS stream_fallbacks integer NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS last_event_at timestamptz, ADD COLUMN IF NOT EXISTS stream_lag_ms "
    "integer,"
    " ADD COLUMN IF NOT EXISTS stream_error text,"
    /* polls finished (the metrics' sfbridge_mapping_polls_total) */
    " ADD COLUMN IF NOT EXISTS polls bigint NOT NULL DEFAULT 0,"
    /* Salesforce's count of the object's records, as a load, reload or drift check found it */
    " ADD COLUMN IF NOT EXISTS sf_rows bigint, ADD COLUMN IF NOT EXISTS sf_rows_at timestamptz,"
    /* the watermark whose overlap window a poll has read after it settled (see
     * cat_cols_poll_finished): polls then ask only for newer changes */
    " ADD COLUMN IF NOT EXISTS overlap_settled timestamp,"
    /* a running reload's progress (status, the dashboard): the rows staged of its count */
    " ADD COLUMN IF NOT EXISTS reload_done bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS reload_total bigint, ADD COLUMN IF NOT EXISTS reload_via varchar(4),"
    " ADD COLUMN IF NOT EXISTS reload_started_at timestamptz",
};

static void
fmt_ddl(sb *out, const char *tmpl, const char *qschema)
{
    /* Only %1$s occurs in the templates. */
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && strncmp(p, "%1$s", 4) == 0) {
            sb_puts(out, qschema);
            p += 3;
        } else {
            sb_putc(out, *p);
        }
    }
}

int
cat_check_exists(PGconn *c, const char *schema, err_t *e)
{
    sb a = SB_INIT, b = SB_INIT;
    pg_qname(&a, schema, "_sfbridge_connection");
    pg_qname(&b, schema, "_sfbridge_mapping");
    const char *p[] = {sb_str(&a), sb_str(&b)};
    PGresult *r = pg_query(c, e,
                           "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", 2,
                           p);
    sb_free(&a);
    sb_free(&b);
    if (!r)
        return -1;
    bool there = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!there)
        return err_set(e, 404, "NOT_SET_UP",
                       "schema %s is not set up for sfbridge (it has no _sfbridge_connection "
                       "table): run sfbridge init",
                       schema);
    return 0;
}

int
cat_ensure(PGconn *c, const char *schema, err_t *e)
{
    sb q = SB_INIT, sql = SB_INIT;
    sb_sql_ident(&q, schema);
    int rc = pg_exec(c, e, "BEGIN");
    /* Serialise concurrent first runs. */
    if (rc == 0)
        rc = pg_exec(c, e, "SELECT pg_advisory_xact_lock(" LOCK_DDL ")");
    for (size_t i = 0; rc == 0 && i < sizeof catalog_ddl / sizeof catalog_ddl[0]; i++) {
        sb_clear(&sql);
        fmt_ddl(&sql, catalog_ddl[i], sb_str(&q));
        rc = pg_exec(c, e, sb_str(&sql));
    }
    if (rc == 0) { /* the notifications, and the triggers on this module's tables that fill it */
        sb_clear(&sql);
        notices_sql_ddl(&sql, sb_str(&q));
        act_sql_ddl(&sql, sb_str(&q)); /* the dashboard's activity counts */
        rc = pg_exec(c, e, sb_str(&sql));
    }
    if (rc == 0) {
        sb_clear(&sql);
        sb_printf(&sql,
                  "INSERT INTO %s._hcmeta (hcver, details) SELECT %d, 'sfbridge' "
                  "WHERE NOT EXISTS (SELECT 1 FROM %s._hcmeta)",
                  sb_str(&q), 10, sb_str(&q));
        rc = pg_exec(c, e, sb_str(&sql));
    }
    rc = rc == 0 ? pg_exec(c, e, "COMMIT") : (pg_rollback_quietly(c), -1);
    sb_free(&q);
    sb_free(&sql);
    return rc;
}

char *
cat_qsql(const char *schema, const char *tmpl)
{
    sb q = SB_INIT, sql = SB_INIT;
    sb_sql_ident(&q, schema);
    fmt_ddl(&sql, tmpl, sb_str(&q));
    sb_free(&q);
    return sb_steal(&sql);
}

int
cat_run(PGconn *c, const char *schema, const char *tmpl, int n, const char *const *params, err_t *e)
{
    char *sql = cat_qsql(schema, tmpl);
    int rc = pg_run(c, e, sql, n, params);
    free(sql);
    return rc;
}

PGresult *
cat_query(PGconn *c, const char *schema, const char *tmpl, int n, const char *const *params,
          err_t *e)
{
    char *sql = cat_qsql(schema, tmpl);
    PGresult *r = pg_query(c, e, sql, n, params);
    free(sql);
    return r;
}

json_t *
cat_fields_json(const mapping *m)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->nfields; i++) {
        const map_field *f = &m->fields[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "name", f->name, "column", f->column,
                              "type", f->sftype, "pg", f->pgtype, "c", f->createable, "u",
                              f->updateable);
        if (f->ref_to)
            json_object_set_new(o, "to", json_string(f->ref_to));
        if (f->via)
            json_object_set_new(o, "via", json_string(f->via));
        json_array_append_new(a, o);
    }
    return a;
}

int
cat_fields_parse(json_t *arr, mapping *m, err_t *e)
{
    if (!json_is_array(arr))
        return err_set(e, 500, "BAD_CATALOG", "mapping %s: fields is not an array", m->object);
    m->nfields = json_array_size(arr);
    m->fields = xcalloc(m->nfields ? m->nfields : 1, sizeof *m->fields);
    for (size_t i = 0; i < m->nfields; i++) {
        json_t *f = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *col = json_string_value(json_object_get(f, "column"));
        const char *t = json_string_value(json_object_get(f, "type"));
        const char *pg = json_string_value(json_object_get(f, "pg"));
        if (!name || !col || !t || !pg)
            return err_set(e, 500, "BAD_CATALOG", "mapping %s: field %zu is incomplete", m->object,
                           i);
        /* Catalogs written before the write flags existed: system fields are read-only. */
        static const char *const sys[] = {"Id",
                                          "IsDeleted",
                                          "CreatedDate",
                                          "CreatedById",
                                          "LastModifiedDate",
                                          "LastModifiedById",
                                          "SystemModstamp",
                                          "LastActivityDate",
                                          "LastViewedDate",
                                          "LastReferencedDate"};
        bool is_sys = false;
        for (size_t k = 0; k < sizeof sys / sizeof sys[0]; k++)
            is_sys = is_sys || util_streq_ci(name, sys[k]);
        json_t *cf = json_object_get(f, "c"), *uf = json_object_get(f, "u");
        const char *to = json_string_value(json_object_get(f, "to"));
        const char *via = json_string_value(json_object_get(f, "via"));
        m->fields[i] = (map_field){xstrdup(name),
                                   xstrdup(col),
                                   xstrdup(t),
                                   xstrdup(pg),
                                   cf ? json_is_true(cf) : !is_sys,
                                   uf ? json_is_true(uf) : !is_sys,
                                   to ? xstrdup(to) : NULL,
                                   via ? xstrdup(via) : NULL};
    }
    return 0;
}

const map_field *
cat_field(const mapping *m, const char *sf_name)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (util_streq_ci(m->fields[i].name, sf_name))
            return &m->fields[i];
    return NULL;
}

static char *
dupcol(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

/* Why a mapping read from its row cannot be synced, or NULL. */
static char *
row_problem(const mapping *m, const char *state, const err_t *fe, int frc)
{
    sb why = SB_INIT;
    if (frc != 0)
        sb_printf(&why, "bad catalog row: %s", fe->msg);
    else if (!cat_field(m, "Id"))
        sb_printf(&why, "bad catalog row: mapping %s has no Id field", m->object);
    else if (!m->table || !*m->table)
        sb_printf(&why, "bad catalog row: mapping %s has no table", m->object);
    else if (fsm_state_parse(state) < 0)
        sb_printf(&why, "bad catalog row: mapping %s has an unknown state '%s'", m->object, state);
    return sb_str(&why)[0] ? sb_steal(&why) : (sb_free(&why), NULL);
}

static void
row_to_mapping(PGresult *r, int i, mapping *m)
{
    m->object = dupcol(r, i, 0);
    m->table = dupcol(r, i, 1);
    m->read_write = PQgetvalue(r, i, 2)[0] == 't';
    m->notify = PQgetvalue(r, i, 3)[0] == 't';
    m->tombstones = PQgetvalue(r, i, 4)[0] == 't';
    m->paused = PQgetvalue(r, i, 5)[0] == 't';
    m->loaded = PQgetvalue(r, i, 6)[0] == 't';
    m->poll_seconds = atoi(PQgetvalue(r, i, 7));
    m->max_daily = atol(PQgetvalue(r, i, 8));
    json_t *fields = json_loads(PQgetvalue(r, i, 9), 0, NULL);
    err_t fe;
    err_clear(&fe);
    int frc = cat_fields_parse(fields, m, &fe);
    json_decref(fields);
    m->indexes = json_loads(PQgetvalue(r, i, 10), 0, NULL);
    if (!m->indexes)
        m->indexes = json_object();
    m->resync = PQgetisnull(r, i, 11) ? NULL : json_loads(PQgetvalue(r, i, 11), 0, NULL);
    m->upsert_field = dupcol(r, i, 12);
    int st = fsm_state_parse(PQgetvalue(r, i, 13));
    m->state = st < 0 ? MS_BAD_CONFIG : (map_state)st;
    m->watermark = dupcol(r, i, 14);
    m->load_job = dupcol(r, i, 15);
    m->load_locator = dupcol(r, i, 16);
    m->load_wm = dupcol(r, i, 17);
    m->load_done = atoll(PQgetvalue(r, i, 18));
    m->load_total = atoll(PQgetvalue(r, i, 19));
    m->errors = atoi(PQgetvalue(r, i, 20));
    m->last_error = dupcol(r, i, 21);
    m->applied_at = dupcol(r, i, 22);
    m->api_calls = atoll(PQgetvalue(r, i, 23));
    m->next_poll_ms = atoll(PQgetvalue(r, i, 24));
    m->last_drift_ms = atoll(PQgetvalue(r, i, 25));
    m->replay_id = atoll(PQgetvalue(r, i, 26));
    m->stream_channel = dupcol(r, i, 27);
    m->overlap_settled = PQgetvalue(r, i, 28)[0] == 't';
    m->bad = row_problem(m, PQgetvalue(r, i, 13), &fe, frc);
    if (m->bad) {
        /* Only its name, state and flags are to be trusted. */
        for (size_t k = 0; k < m->nfields; k++)
            map_field_clear(&m->fields[k]);
        m->nfields = 0;
    }
}

int
cat_load_any(PGconn *c, const char *schema, const char *object, mapping **out, size_t *n, err_t *e)
{
    *out = NULL;
    *n = 0;
    const char *p[] = {object};
    PGresult *r =
        cat_query(c, schema,
                  "SELECT object_name, table_name, access = 'read_write', sf_notify_enabled, "
                  "tombstones,"
                  " paused, loaded, sf_polling_seconds, sf_max_daily_api_calls, fields::text, "
                  "indexes::text,"
                  " resync_fields::text, upsert_field, state,"
                  " to_char(watermark, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), load_job, load_locator,"
                  " to_char(load_wm, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), load_done, "
                  "coalesce(load_total, -1),"
                  " errors, last_error, to_char(applied_at AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                  " CASE WHEN api_day = (now() AT TIME ZONE 'UTC')::date THEN api_calls ELSE 0 END,"
                  " coalesce((extract(epoch FROM next_poll_at) * 1000)::bigint, 0),"
                  " coalesce((extract(epoch FROM last_drift_at) * 1000)::bigint, 0),"
                  " coalesce(replay_id, -1), stream_channel,"
                  " watermark IS NOT NULL AND overlap_settled IS NOT DISTINCT FROM watermark"
                  " FROM %1$s._sfbridge_mapping WHERE $1::text IS NULL OR lower(object_name) = "
                  "lower($1)"
                  " ORDER BY object_name",
                  1, p, e);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    mapping *ms = xcalloc(rows ? (size_t)rows : 1, sizeof *ms);
    for (int i = 0; i < rows; i++)
        row_to_mapping(r, i, &ms[i]);
    PQclear(r);
    *out = ms;
    *n = (size_t)rows;
    return 0;
}

int
cat_load(PGconn *c, const char *schema, const char *object, mapping **out, size_t *n, err_t *e)
{
    if (cat_load_any(c, schema, object, out, n, e) != 0)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if ((*out)[i].bad)
            mapping_clear(&(*out)[i]);
        else
            (*out)[k++] = (*out)[i];
    }
    *n = k;
    return 0;
}

static const char *
bstr(bool b)
{
    return b ? "true" : "false";
}

int
cat_insert(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    json_t *f = cat_fields_json(m);
    char *fields = json_dumps(f, JSON_COMPACT);
    char *idx = json_dumps(m->indexes ? m->indexes : json_object(), JSON_COMPACT);
    char poll[16], maxd[24];
    snprintf(poll, sizeof poll, "%d", m->poll_seconds);
    snprintf(maxd, sizeof maxd, "%ld", m->max_daily);
    const char *p[] = {m->object,
                       m->table,
                       m->read_write ? "read_write" : "read_only",
                       bstr(m->notify),
                       poll,
                       maxd,
                       fields,
                       idx,
                       m->upsert_field,
                       bstr(m->tombstones)};
    int rc = cat_run(c, schema,
                     "INSERT INTO %1$s._sfbridge_mapping (object_name, table_name, access, "
                     "sf_notify_enabled,"
                     " sf_polling_seconds, sf_max_daily_api_calls, fields, indexes, upsert_field, "
                     "tombstones)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                     10, p, e);
    json_decref(f);
    free(fields);
    free(idx);
    return rc;
}

int
cat_update_config(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    json_t *f = cat_fields_json(m);
    char *fields = json_dumps(f, JSON_COMPACT);
    char *idx = json_dumps(m->indexes ? m->indexes : json_object(), JSON_COMPACT);
    char *resync = m->resync ? json_dumps(m->resync, JSON_COMPACT) : NULL;
    char poll[16], maxd[24];
    snprintf(poll, sizeof poll, "%d", m->poll_seconds);
    snprintf(maxd, sizeof maxd, "%ld", m->max_daily);
    const char *p[] = {m->object,
                       m->read_write ? "read_write" : "read_only",
                       bstr(m->notify),
                       poll,
                       maxd,
                       fields,
                       idx,
                       m->upsert_field,
                       bstr(m->tombstones),
                       resync};
    int rc =
        cat_run(c, schema,
                "UPDATE %1$s._sfbridge_mapping SET access = $2, sf_notify_enabled = $3,"
                " sf_polling_seconds = $4, sf_max_daily_api_calls = $5, fields = $6, indexes = $7,"
                " upsert_field = $8, tombstones = $9, resync_fields = $10,"
                " applied_at = now() WHERE object_name = $1",
                10, p, e);
    json_decref(f);
    free(fields);
    free(idx);
    free(resync);
    return rc;
}

int
cat_delete(PGconn *c, const char *schema, const char *object, err_t *e)
{
    const char *p[] = {object};
    return cat_run(c, schema, "DELETE FROM %1$s._sfbridge_mapping WHERE object_name = $1", 1, p, e);
}

int
cat_set_paused(PGconn *c, const char *schema, const char *object, bool paused, err_t *e)
{
    const char *p[] = {object, bstr(paused)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_mapping SET paused = $2::boolean WHERE object_name = $1",
                   2, p, e);
}

void
map_field_clear(map_field *f)
{
    free(f->name);
    free(f->column);
    free(f->sftype);
    free(f->pgtype);
    free(f->ref_to);
    free(f->via);
    memset(f, 0, sizeof *f);
}

void
mapping_clear(mapping *m)
{
    free(m->object);
    free(m->table);
    for (size_t i = 0; i < m->nfields; i++)
        map_field_clear(&m->fields[i]);
    free(m->fields);
    json_decref(m->indexes);
    json_decref(m->resync);
    free(m->upsert_field);
    free(m->watermark);
    free(m->load_job);
    free(m->load_locator);
    free(m->load_wm);
    free(m->last_error);
    free(m->applied_at);
    free(m->bad);
    free(m->stream_channel);
    memset(m, 0, sizeof *m);
}

void
mapping_free_all(mapping *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mapping_clear(&ms[i]);
    free(ms);
}
