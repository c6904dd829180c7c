/*
 * mapping: add/edit/remove mappings and Heroku Connect's export/import JSON.
 * Checks happen against Salesforce's describe before anything is changed;
 * changes to Postgres happen in one transaction.
 */
#include "mapping.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "catalog.h"
#include "ddl.h"
#include "log.h"
#include "pg.h"
#include "sb.h"
#include "shadow.h"
#include "stream.h"
#include "util.h"

#define DEFAULT_POLL_SECONDS 600
#define DEFAULT_MAX_DAILY    30000

static const char *const fixed_fields[] = {"Id", "SystemModstamp", "IsDeleted"};

bool
map_field_is_fixed(const char *name)
{
    for (size_t i = 0; i < sizeof fixed_fields / sizeof fixed_fields[0]; i++)
        if (util_streq_ci(name, fixed_fields[i]))
            return true;
    return false;
}

int
map_describe(app *a, const char *object, json_t **d, err_t *e)
{
    sfapi *sf = app_sf(a, e);
    if (!sf)
        return -1;
    if (sfapi_describe(sf, object, d, e) == 0)
        return 0;
    if (strcmp(e->code, "NOT_FOUND") == 0 || strcmp(e->code, "INVALID_TYPE") == 0)
        err_set(e, 404, "INVALID_TYPE",
                "unknown Salesforce object '%s' (or the integration user cannot read it)", object);
    return -1;
}

static json_t *
describe_parent(void *ctx, const char *object, err_t *e)
{
    json_t *d = NULL;
    return map_describe(ctx, object, &d, e) == 0 ? d : NULL;
}

static int
apply_indexes(mapping *m, const char *const *idx, size_t n, err_t *e)
{
    if (!m->indexes)
        m->indexes = json_object();
    for (size_t i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s", idx[i]);
        bool unique = false;
        char *colon = strchr(name, ':');
        if (colon) {
            if (strcmp(colon + 1, "unique") != 0)
                return err_set(e, 400, "BAD_USAGE", "index '%s': write FIELD or FIELD:unique",
                               idx[i]);
            *colon = '\0';
            unique = true;
        }
        const map_field *f = cat_field(m, name);
        if (!f)
            return err_set(e, 400, "INVALID_FIELD", "index on '%s': the field is not mapped", name);
        json_object_set_new(m->indexes, f->name, json_pack("{s:b}", "unique", unique));
    }
    return 0;
}

static int
set_upsert(mapping *m, json_t *d, const char *field, err_t *e)
{
    char *canon = NULL;
    if (ddl_check_upsert_field(d, field, &canon, e) != 0)
        return -1;
    if (!cat_field(m, canon)) {
        json_t *added = NULL;
        const char *w[] = {canon};
        int rc = ddl_add_fields(d, w, 1, m, &added, NULL, e);
        json_decref(added);
        if (rc != 0) {
            free(canon);
            return -1;
        }
    }
    free(m->upsert_field);
    m->upsert_field = canon;
    return 0;
}

/* Create the table and record the mapping; inside the caller's transaction. */
static int
create_mapping(app *a, mapping *m, err_t *e)
{
    bool exists = false;
    if (pg_table_exists(a->pg, a->cfg.schema, m->table, &exists, e) != 0)
        return -1;
    if (exists) {
        /* A table Heroku Connect made (it has Heroku Connect's columns) is taken
         * over in place: missing columns are added and the rows are reconciled
         * by a reload, which keeps every row's id. Any other table is refused. */
        sb q = SB_INIT;
        pg_qname(&q, a->cfg.schema, m->table);
        const char *p[] = {sb_str(&q)};
        PGresult *r =
            pg_query(a->pg, e,
                     "SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass AND NOT "
                     "attisdropped"
                     " AND attname IN ('id', 'sfid', 'systemmodstamp', '_hc_lastop', '_hc_err')",
                     1, p);
        sb_free(&q);
        if (!r)
            return -1;
        bool hc = atoi(PQgetvalue(r, 0, 0)) == 5;
        PQclear(r);
        if (!hc)
            return err_set(e, 409, "TABLE_EXISTS",
                           "table %s.%s already exists and is not a Heroku Connect table; sfbridge "
                           "only syncs "
                           "tables it created or Heroku Connect created (drop or rename it)",
                           a->cfg.schema, m->table);
        json_t *all = json_array();
        for (size_t i = 0; i < m->nfields; i++)
            json_array_append_new(all, json_string(m->fields[i].name));
        sb ddl = SB_INIT;
        ddl_add_columns(&ddl, a->cfg.schema, m, all);
        ddl_create_indexes(&ddl, a->cfg.schema, m);
        cap_install_sql(&ddl, a->cfg.schema, m);
        json_decref(all);
        int rc = pg_exec(a->pg, e, sb_str(&ddl));
        sb_free(&ddl);
        if (rc == 0)
            rc = cat_insert(a->pg, a->cfg.schema, m, e);
        if (rc == 0) {
            cat_cols cols = {0};
            cat_cols_takeover(&cols);
            rc = fsm_fire(a->pg, a->cfg.schema, m, EV_TAKEOVER, &cols, e);
            m->loaded = true;
            log_info("%s: taking over the Heroku Connect table %s.%s; its rows are reconciled in "
                     "place",
                     m->object, a->cfg.schema, m->table);
        }
        return rc;
    }
    sb ddl = SB_INIT;
    ddl_create_table(&ddl, a->cfg.schema, m);
    cap_install_sql(&ddl, a->cfg.schema, m);
    int rc = pg_exec(a->pg, e, sb_str(&ddl));
    sb_free(&ddl);
    if (rc == 0)
        rc = cat_insert(a->pg, a->cfg.schema, m, e);
    return rc;
}

static int
in_tx(app *a, err_t *e, int (*fn)(app *, void *, err_t *), void *ctx)
{
    if (pg_exec(a->pg, e, "BEGIN") != 0)
        return -1;
    int rc = fn(a, ctx, e);
    if (rc == 0)
        rc = cat_notify(a->pg, a->cfg.schema, e);
    if (rc == 0)
        rc = pg_exec(a->pg, e, "COMMIT");
    if (rc != 0)
        pg_rollback_quietly(a->pg);
    return rc;
}

static int
tx_create(app *a, void *ctx, err_t *e)
{
    return create_mapping(a, ctx, e);
}

/* Build a new mapping from a describe and options (no I/O but the describe). */
static int
plan_new(app *a, json_t *d, const map_opts *o, mapping *m, err_t *e)
{
    ddl_parents parents = {describe_parent, a};
    m->poll_seconds = o->poll_seconds > 0 ? o->poll_seconds : DEFAULT_POLL_SECONDS;
    m->max_daily = o->max_daily > 0 ? o->max_daily : DEFAULT_MAX_DAILY;
    m->read_write = o->access == 1;
    m->notify = o->notify == 1;
    m->tombstones = o->tombstones == 1;
    m->load_total = -1;
    m->state = MS_INITIAL;
    m->indexes = json_object();
    bool all = o->all_fields || o->nfields == 0;
    if (ddl_resolve(d, o->fields, o->nfields, all, m, &parents, e) != 0)
        return -1;
    if (o->upsert_field && set_upsert(m, d, o->upsert_field, e) != 0)
        return -1;
    return apply_indexes(m, o->indexes, o->nindexes, e);
}

int
map_add(app *a, const char *object, const map_opts *o, err_t *e)
{
    if (!app_pg(a, e))
        return -1;
    mapping *have = NULL;
    size_t nhave = 0;
    if (cat_load_any(a->pg, a->cfg.schema, object, &have, &nhave, e) != 0)
        return -1;
    mapping_free_all(have, nhave);
    if (nhave)
        return err_set(e, 409, "DUPLICATE", "%s is already mapped (use mapping edit)", object);
    json_t *d = NULL;
    if (map_describe(a, object, &d, e) != 0)
        return -1;
    mapping m = {0};
    int rc = plan_new(a, d, o, &m, e);
    json_decref(d);
    if (rc == 0)
        rc = in_tx(a, e, tx_create, &m);
    if (rc == 0)
        log_info("mapped %s to %s.%s (%zu fields, %s)", m.object, a->cfg.schema, m.table, m.nfields,
                 m.read_write ? "read_write" : "read_only");
    mapping_clear(&m);
    return rc;
}

/* ---- edit ------------------------------------------------------------------ */

typedef struct edit_plan {
    mapping *m;
    json_t *added;   /* field names to add as columns */
    json_t *dropped; /* columns to drop */
} edit_plan;

static int
tx_edit(app *a, void *ctx, err_t *e)
{
    edit_plan *p = ctx;
    mapping *m = p->m;
    sb s = SB_INIT;
    if (p->added && json_array_size(p->added)) {
        ddl_add_columns(&s, a->cfg.schema, m, p->added);
        /* Columns appear at once (nullable, no rewrite); the daemon fills them. */
        if (!m->resync)
            m->resync = json_array();
        json_array_extend(m->resync, p->added);
    }
    size_t i;
    json_t *v;
    json_array_foreach(p->dropped, i, v) {
        sb_puts(&s, "ALTER TABLE ");
        pg_qname(&s, a->cfg.schema, m->table);
        sb_puts(&s, " DROP COLUMN IF EXISTS ");
        sb_sql_ident(&s, json_string_value(v));
        sb_puts(&s, ";\n");
    }
    ddl_create_indexes(&s, a->cfg.schema, m);
    cap_install_sql(&s, a->cfg.schema, m);
    int rc = pg_exec(a->pg, e, sb_str(&s));
    sb_free(&s);
    /* Added columns are backfilled (RESYNC); a new configuration clears BAD_CONFIG. */
    if (rc == 0 && p->added && json_array_size(p->added))
        rc = fsm_fire(a->pg, a->cfg.schema, m, EV_FIELDS_ADDED, NULL, e);
    if (rc == 0)
        rc = fsm_fire(a->pg, a->cfg.schema, m, EV_CONFIG_CHANGED, NULL, e);
    if (rc == 0)
        rc = cat_update_config(a->pg, a->cfg.schema, m, e);
    return rc;
}

static int
remove_field(mapping *m, const char *name, json_t *dropped, err_t *e)
{
    for (size_t i = 0; i < sizeof fixed_fields / sizeof fixed_fields[0]; i++)
        if (util_streq_ci(name, fixed_fields[i]))
            return err_set(e, 400, "INVALID_FIELD", "%s is always mapped and cannot be removed",
                           fixed_fields[i]);
    if (m->upsert_field && util_streq_ci(name, m->upsert_field))
        return err_set(e, 400, "INVALID_FIELD", "%s is the unique identifier; change that first",
                       name);
    for (size_t i = 0; i < m->nfields; i++) {
        if (!util_streq_ci(m->fields[i].name, name))
            continue;
        json_array_append_new(dropped, json_string(m->fields[i].column));
        json_object_del(m->indexes, m->fields[i].name);
        map_field_clear(&m->fields[i]);
        memmove(&m->fields[i], &m->fields[i + 1], (m->nfields - i - 1) * sizeof *m->fields);
        m->nfields--;
        return 0;
    }
    return err_set(e, 400, "INVALID_FIELD", "%s is not a mapped field of %s", name, m->object);
}

static int
plan_edit(app *a, mapping *m, const map_opts *o, edit_plan *p, err_t *e)
{
    json_t *d = NULL;
    bool need_describe = o->nadd || o->upsert_field;
    if (need_describe && map_describe(a, m->object, &d, e) != 0)
        return -1;
    int rc = 0;
    if (o->nadd)
        rc = ddl_add_fields(d, o->add_fields, o->nadd, m, &p->added,
                            &(ddl_parents){describe_parent, a}, e);
    for (size_t i = 0; rc == 0 && i < o->nremove; i++)
        rc = remove_field(m, o->remove_fields[i], p->dropped, e);
    if (rc == 0 && o->upsert_field) {
        size_t before = m->nfields;
        rc = set_upsert(m, d, o->upsert_field, e);
        if (rc == 0 && m->nfields > before) {
            if (!p->added)
                p->added = json_array();
            json_array_append_new(p->added, json_string(m->fields[m->nfields - 1].name));
        }
    }
    json_decref(d);
    if (rc != 0)
        return -1;
    if (o->no_upsert_field) {
        free(m->upsert_field);
        m->upsert_field = NULL;
    }
    if (o->access >= 0)
        m->read_write = o->access == 1;
    if (o->poll_seconds > 0)
        m->poll_seconds = o->poll_seconds;
    if (o->max_daily > 0)
        m->max_daily = o->max_daily;
    if (o->tombstones >= 0)
        m->tombstones = o->tombstones == 1;
    if (o->notify >= 0)
        m->notify = o->notify == 1;
    return apply_indexes(m, o->indexes, o->nindexes, e);
}

static int
load_one(app *a, const char *object, mapping **m, err_t *e)
{
    size_t n = 0;
    if (!app_pg(a, e) || cat_load_any(a->pg, a->cfg.schema, object, m, &n, e) != 0)
        return -1;
    if (n == 0) {
        free(*m);
        *m = NULL;
        return err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                       object);
    }
    return 0;
}

/* A mapping that stops streaming through a PushTopic sfbridge made: delete
 * the topic. A failure (Salesforce unreachable) is a warning, not an error:
 * the mapping change stands and the warning names the topic to delete. */
static void
drop_topic(app *a, const mapping *m, bool forget)
{
    err_t e;
    err_clear(&e);
    if (!m->stream_channel || strncmp(m->stream_channel, "/topic/", 7) != 0)
        return;
    sfapi *sf = app_sf(a, &e);
    if (!sf || stream_drop_pushtopic(sf, a->cfg.api_version, m, &e) < 0) {
        char topic[32];
        stream_pushtopic_name(topic, sizeof topic, m);
        log_warn("%s: could not delete its PushTopic (%s); delete the PushTopic named %s in "
                 "Salesforce",
                 m->object, e.msg, topic);
        return;
    }
    if (forget && cat_stream_forget(a->pg, a->cfg.schema, m->object, &e) != 0)
        log_warn("%s: its stream position could not be cleared (%s)", m->object, e.msg);
}

int
map_edit(app *a, const char *object, const map_opts *o, err_t *e)
{
    mapping *m = NULL;
    if (load_one(a, object, &m, e) != 0)
        return -1;
    if (m->bad) {
        err_set(e, 409, "BAD_CATALOG", "%s: %s; remove the mapping and add it again", m->object,
                m->bad);
        mapping_free_all(m, 1);
        return -1;
    }
    edit_plan p = {.m = m, .dropped = json_array()};
    bool streamed = m->notify;
    int rc = plan_edit(a, m, o, &p, e);
    if (rc == 0)
        rc = in_tx(a, e, tx_edit, &p);
    if (rc == 0 && streamed && !m->notify)
        drop_topic(a, m, true);
    if (rc == 0)
        log_info("%s: mapping updated (%zu fields added, %zu removed)", m->object,
                 p.added ? json_array_size(p.added) : 0, json_array_size(p.dropped));
    json_decref(p.added);
    json_decref(p.dropped);
    mapping_free_all(m, 1);
    return rc;
}

/* ---- remove, list, show ----------------------------------------------------- */

typedef struct remove_ctx {
    const mapping *m;
    bool drop;
} remove_ctx;

static int
tx_remove(app *a, void *ctx, err_t *e)
{
    remove_ctx *r = ctx;
    if (cat_delete(a->pg, a->cfg.schema, r->m->object, e) != 0 ||
        shadow_drop(a->pg, a->cfg.schema, r->m, e) != 0)
        return -1;
    if (!r->drop)
        return 0;
    sb s = SB_INIT;
    char fname[64];
    DDL_STATUS_FN(fname, r->m->table);
    sb_puts(&s, "DROP TABLE IF EXISTS ");
    pg_qname(&s, a->cfg.schema, r->m->table);
    sb_puts(&s, "; DROP FUNCTION IF EXISTS ");
    pg_qname(&s, a->cfg.schema, fname);
    sb_puts(&s, "(); DROP FUNCTION IF EXISTS ");
    DDL_LOGGER_FN(fname, r->m->table);
    pg_qname(&s, a->cfg.schema, fname);
    sb_puts(&s, "()");
    int rc = pg_exec(a->pg, e, sb_str(&s));
    sb_free(&s);
    return rc;
}

int
map_remove(app *a, const char *object, bool drop_table, err_t *e)
{
    mapping *m = NULL;
    if (load_one(a, object, &m, e) != 0)
        return -1;
    remove_ctx r = {m, drop_table};
    if (m->notify)
        drop_topic(a, m, false);
    int rc = in_tx(a, e, tx_remove, &r);
    if (rc == 0)
        log_info("%s: mapping removed; table %s.%s %s", m->object, a->cfg.schema, m->table,
                 drop_table ? "dropped" : "kept");
    mapping_free_all(m, 1);
    return rc;
}

int
map_list(app *a, FILE *out, err_t *e)
{
    mapping *ms = NULL;
    size_t n = 0;
    if (!app_pg(a, e) || cat_load_any(a->pg, a->cfg.schema, NULL, &ms, &n, e) != 0)
        return -1;
    fprintf(out, "%-28s %-28s %-10s %7s %6s  %s\n", "OBJECT", "TABLE", "ACCESS", "POLL(s)",
            "FIELDS", "STATE");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%-28s %-28s %-10s %7d %6zu  %s%s\n", ms[i].object, ms[i].table,
                ms[i].read_write ? "read_write" : "read_only", ms[i].poll_seconds, ms[i].nfields,
                fsm_state_name(ms[i].state), ms[i].paused ? " (paused)" : "");
    if (n == 0)
        fprintf(out, "(no mappings: add one with sfbridge mapping add OBJECT)\n");
    mapping_free_all(ms, n);
    return 0;
}

static json_t *
mapping_json(const mapping *m)
{
    json_t *fields = json_object();
    for (size_t i = 0; i < m->nfields; i++)
        json_object_set_new(fields, m->fields[i].name, json_object());
    json_t *idx = json_pack("{s:{s:b},s:{s:b}}", "Id", "unique", 1, "SystemModstamp", "unique", 0);
    json_object_update(idx, m->indexes);
    json_t *config = json_pack("{s:s,s:b,s:i,s:I,s:o,s:o}", "access",
                               m->read_write ? "read_write" : "read_only", "sf_notify_enabled",
                               m->notify, "sf_polling_seconds", m->poll_seconds,
                               "sf_max_daily_api_calls", (json_int_t)m->max_daily, "fields", fields,
                               "indexes", idx);
    if (m->upsert_field)
        json_object_set_new(config, "upsert_field", json_string(m->upsert_field));
    if (m->applied_at)
        json_object_set_new(config, "applied_at", json_string(m->applied_at));
    return json_pack("{s:s,s:o}", "object_name", m->object, "config", config);
}

int
map_show(app *a, const char *object, bool as_json, FILE *out, err_t *e)
{
    mapping *m = NULL;
    if (load_one(a, object, &m, e) != 0)
        return -1;
    if (as_json) {
        json_t *j = mapping_json(m);
        json_t *cfgj = json_object_get(j, "config");
        json_object_set_new(j, "table_name", json_string(m->table));
        json_object_set_new(j, "state", json_string(fsm_state_name(m->state)));
        json_object_set_new(cfgj, "tombstones", json_boolean(m->tombstones));
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(out,
                "object:        %s\ntable:         %s.%s\naccess:        %s\npolling:       %d "
                "s%s\n"
                "unique id:     %s\ntombstones:    %s\nstate:         %s%s\nwatermark:     %s\n",
                m->object, a->cfg.schema, m->table, m->read_write ? "read_write" : "read_only",
                m->poll_seconds, m->notify ? " (accelerated)" : "",
                m->upsert_field ? m->upsert_field : "(none)",
                m->tombstones ? "kept (isdeleted = true)" : "removed", fsm_state_name(m->state),
                m->paused ? " (paused)" : "", m->watermark ? m->watermark : "(none yet)");
        if (m->last_error)
            fprintf(out, "last error:    %s\n", m->last_error);
        fprintf(out, "fields:\n");
        for (size_t i = 0; i < m->nfields; i++)
            fprintf(out, "  %-32s %-32s %-16s %s\n", m->fields[i].name, m->fields[i].column,
                    m->fields[i].sftype, m->fields[i].pgtype);
    }
    mapping_free_all(m, 1);
    return 0;
}

/* ---- export / import --------------------------------------------------------- */

json_t *
map_export_json(app *a, err_t *e)
{
    mapping *ms = NULL;
    size_t n = 0;
    if (!app_pg(a, e) || cat_load(a->pg, a->cfg.schema, NULL, &ms, &n, e) != 0)
        return NULL;
    char *org = NULL, *ver = NULL;
    if (cat_get_org(a->pg, a->cfg.schema, &org, &ver, e) != 0) {
        mapping_free_all(ms, n);
        return NULL;
    }
    char now[32];
    util_fmt_datetime_z(util_now_ms(), now);
    char name[160];
    snprintf(name, sizeof name, "sfbridge:DATABASE_URL:%s", a->cfg.schema);
    json_t *conn = json_pack("{s:s,s:s?,s:s,s:s,s:s,s:b,s:{s:b,s:b,s:b,s:b,s:b}}", "app_name",
                             "sfbridge", "organization_id", org, "exported_at", now, "name", name,
                             "api_version", ver ? ver : a->cfg.api_version, "logplex_log_enabled",
                             0, "features", "disable_bulk_writes", 0, "poll_db_no_merge", 1,
                             "poll_external_ids", 0, "rest_count_only", 0,
                             "ucs_basic_collation_index", 0);
    json_t *maps = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(maps, mapping_json(&ms[i]));
    free(org);
    free(ver);
    mapping_free_all(ms, n);
    return json_pack("{s:i,s:o,s:o}", "version", 1, "connection", conn, "mappings", maps);
}

int
map_import_check(json_t *doc, err_t *e)
{
    if (!json_is_object(doc))
        return err_set(e, 400, "BAD_IMPORT", "the import file is not a JSON object");
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        return err_set(e, 400, "BAD_IMPORT", "\"version\" must be 1 (a Heroku Connect export)");
    json_t *maps = json_object_get(doc, "mappings");
    if (!json_is_array(maps))
        return err_set(e, 400, "BAD_IMPORT", "\"mappings\" must be an array");
    size_t i;
    json_t *mp;
    json_array_foreach(maps, i, mp) {
        const char *obj = json_string_value(json_object_get(mp, "object_name"));
        json_t *c = json_object_get(mp, "config");
        if (!obj || !*obj || strlen(obj) > 255)
            return err_set(e, 400, "BAD_IMPORT",
                           "mappings[%zu].object_name must be a Salesforce object name", i);
        if (!json_is_object(c))
            return err_set(e, 400, "BAD_IMPORT", "mappings[%zu] (%s): config must be an object", i,
                           obj);
        const char *acc = json_string_value(json_object_get(c, "access"));
        if (acc && strcmp(acc, "read_only") != 0 && strcmp(acc, "read_write") != 0)
            return err_set(e, 400, "BAD_IMPORT",
                           "%s: access must be read_only or read_write, not '%s'", obj, acc);
        json_t *ps = json_object_get(c, "sf_polling_seconds");
        if (ps &&
            (!json_is_integer(ps) || json_integer_value(ps) < 1 || json_integer_value(ps) > 86400))
            return err_set(e, 400, "BAD_IMPORT",
                           "%s: sf_polling_seconds must be a whole number from 1 to 86400", obj);
        json_t *md = json_object_get(c, "sf_max_daily_api_calls");
        if (md && (!json_is_integer(md) || json_integer_value(md) < 1 ||
                   json_integer_value(md) > 100000000))
            return err_set(e, 400, "BAD_IMPORT",
                           "%s: sf_max_daily_api_calls must be a positive whole number", obj);
        json_t *f = json_object_get(c, "fields");
        if (!json_is_object(f) || json_object_size(f) == 0 || json_object_size(f) > 1000)
            return err_set(e, 400, "BAD_IMPORT",
                           "%s: fields must be an object naming the mapped fields", obj);
        json_t *ix = json_object_get(c, "indexes");
        if (ix && !json_is_object(ix))
            return err_set(e, 400, "BAD_IMPORT", "%s: indexes must be an object", obj);
        json_t *up = json_object_get(c, "upsert_field");
        if (up && !json_is_null(up) && !json_is_string(up))
            return err_set(e, 400, "BAD_IMPORT", "%s: upsert_field must be a field name", obj);
        json_t *nt = json_object_get(c, "sf_notify_enabled");
        if (nt && !json_is_boolean(nt))
            return err_set(e, 400, "BAD_IMPORT", "%s: sf_notify_enabled must be true or false",
                           obj);
    }
    return 0;
}

typedef struct import_item {
    mapping m;
    bool exists;
    edit_plan edit;
} import_item;

typedef struct import_plan {
    import_item *items;
    size_t n;
} import_plan;

static int
tx_import(app *a, void *ctx, err_t *e)
{
    import_plan *p = ctx;
    for (size_t i = 0; i < p->n; i++) {
        int rc = p->items[i].exists ? tx_edit(a, &p->items[i].edit, e)
                                    : create_mapping(a, &p->items[i].m, e);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The options a mapping entry of an export stands for. */
static void
entry_opts(json_t *c, map_opts *o, const char ***names, const char ***idx)
{
    json_t *f = json_object_get(c, "fields");
    json_t *ix = json_object_get(c, "indexes");
    *names = xcalloc(json_object_size(f) + 1, sizeof **names);
    *idx = xcalloc(json_object_size(ix) + 1, sizeof **idx);
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
        (*names)[o->nfields++] = k;
    json_object_foreach(ix, k, v) {
        if (util_streq_ci(k, "Id") || util_streq_ci(k, "SystemModstamp"))
            continue;
        /* "Field:unique" strings live as long as the document: build them in place. */
        (*idx)[o->nindexes++] = json_is_true(json_object_get(v, "unique")) ? NULL : k;
        if (!(*idx)[o->nindexes - 1]) {
            char buf[300];
            snprintf(buf, sizeof buf, "%s:unique", k);
            json_object_set_new(v, "_sfb", json_string(buf));
            (*idx)[o->nindexes - 1] = json_string_value(json_object_get(v, "_sfb"));
        }
    }
    o->fields = *names;
    const char *acc = json_string_value(json_object_get(c, "access"));
    o->access = acc && strcmp(acc, "read_write") == 0;
    json_t *ps = json_object_get(c, "sf_polling_seconds");
    o->poll_seconds = ps ? (int)json_integer_value(ps) : DEFAULT_POLL_SECONDS;
    json_t *md = json_object_get(c, "sf_max_daily_api_calls");
    o->max_daily = md ? (long)json_integer_value(md) : DEFAULT_MAX_DAILY;
    o->upsert_field = json_string_value(json_object_get(c, "upsert_field"));
    o->no_upsert_field = !o->upsert_field;
    o->notify = json_is_true(json_object_get(c, "sf_notify_enabled"));
    o->indexes = *idx;
}

int
map_import(app *a, json_t *doc, err_t *e)
{
    if (map_import_check(doc, e) != 0)
        return -1;
    if (!app_pg(a, e))
        return -1;
    json_t *maps = json_object_get(doc, "mappings");
    import_plan p = {xcalloc(json_array_size(maps) + 1, sizeof *p.items), 0};
    int rc = 0;
    size_t i;
    json_t *mp;
    json_array_foreach(maps, i, mp) {
        const char *obj = json_string_value(json_object_get(mp, "object_name"));
        map_opts o = MAP_OPTS_INIT;
        const char **names = NULL, **idx = NULL;
        entry_opts(json_object_get(mp, "config"), &o, &names, &idx);
        import_item *it = &p.items[p.n++];
        mapping *have = NULL;
        size_t nhave = 0;
        rc = cat_load(a->pg, a->cfg.schema, obj, &have, &nhave, e);
        if (rc == 0 && nhave) {
            /* Already mapped: bring it to the file's configuration (fields are only added). */
            it->exists = true;
            it->m = have[0];
            free(have);
            have = NULL;
            it->edit = (edit_plan){.m = &it->m, .dropped = json_array()};
            map_opts eo = o;
            eo.fields = NULL;
            eo.nfields = 0;
            eo.add_fields = names;
            eo.nadd = o.nfields;
            rc = plan_edit(a, &it->m, &eo, &it->edit, e);
            if (rc == 0 && o.no_upsert_field) {
                free(it->m.upsert_field);
                it->m.upsert_field = NULL;
            }
        } else if (rc == 0) {
            free(have);
            json_t *d = NULL;
            rc = map_describe(a, obj, &d, e);
            if (rc == 0)
                rc = plan_new(a, d, &o, &it->m, e);
            json_decref(d);
        }
        free(names);
        free(idx);
        if (rc != 0) {
            char msg[ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", e->msg);
            err_set(e, e->http, e->code, "import refused, nothing changed: %s: %s", obj, msg);
            break;
        }
    }
    if (rc == 0)
        rc = in_tx(a, e, tx_import, &p);
    if (rc == 0)
        log_info("imported %zu mappings", p.n);
    for (size_t k = 0; k < p.n; k++) {
        json_decref(p.items[k].edit.added);
        json_decref(p.items[k].edit.dropped);
        mapping_clear(&p.items[k].m);
    }
    free(p.items);
    return rc;
}
