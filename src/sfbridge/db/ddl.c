/*
 * ddl: Salesforce describe -> Heroku Connect table layout.
 */
#include "ddl.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "util.h"

/* Salesforce type -> Postgres type, as Heroku Connect maps them. A NULL
 * pgtype means "varchar(length)" (text when the length is unknown or long);
 * types absent from the table are not supported. */
typedef struct type_rule {
    const char *sftype;
    const char *pgtype;
} type_rule;

static const type_rule type_map[] = {
    {"id", "varchar(18)"},
    {"reference", "varchar(18)"},
    {"string", NULL},
    {"encryptedstring", NULL},
    {"textarea", NULL},
    {"picklist", "varchar(255)"},
    {"combobox", "varchar(255)"},
    {"url", "varchar(255)"},
    {"multipicklist", "varchar(4099)"},
    {"email", "varchar(80)"},
    {"phone", "varchar(40)"},
    {"boolean", "boolean"},
    {"double", "double precision"},
    {"currency", "double precision"},
    {"percent", "double precision"},
    {"int", "integer"},
    {"long", "bigint"},
    {"date", "date"},
    {"datetime", "timestamp"},
    {"time", "time"},
};

/* System fields mapped on every table when the object has them. */
static const char *const always_fields[] = {"Id", "SystemModstamp", "IsDeleted", "CreatedDate",
                                            "Name"};

const char *
ddl_pg_type(json_t *field, char *buf, size_t n)
{
    const char *t = json_string_value(json_object_get(field, "type"));
    if (!t)
        return NULL;
    for (size_t i = 0; i < sizeof type_map / sizeof type_map[0]; i++) {
        if (strcmp(type_map[i].sftype, t) != 0)
            continue;
        if (type_map[i].pgtype)
            return type_map[i].pgtype;
        json_int_t len = json_integer_value(json_object_get(field, "length"));
        if (len <= 0 || len > 4096)
            return "text";
        snprintf(buf, n, "varchar(%d)", (int)len);
        return buf;
    }
    return NULL;
}

char *
ddl_column_name(const char *sf_name)
{
    if (util_streq_ci(sf_name, "Id"))
        return xstrdup("sfid");
    sb out = SB_INIT;
    for (const char *p = sf_name; *p; p++) {
        if (*p == '.')
            sb_puts(&out, "__");
        else
            sb_putc(&out, (char)tolower((unsigned char)*p));
    }
    return sb_steal(&out);
}

static json_t *
find_field(json_t *describe, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(describe, "fields"), i, f) {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && util_streq_ci(n, name))
            return f;
    }
    return NULL;
}

static bool
has_field(const mapping *m, const char *name)
{
    return cat_field(m, name) != NULL;
}

static void
push_field(mapping *m, json_t *f, const char *pgtype)
{
    const char *name = json_string_value(json_object_get(f, "name"));
    const char *to = json_string_value(json_array_get(json_object_get(f, "referenceTo"), 0));
    m->fields = xrealloc(m->fields, (m->nfields + 1) * sizeof *m->fields);
    m->fields[m->nfields++] = (map_field){xstrdup(name),
                                          ddl_column_name(name),
                                          xstrdup(json_string_value(json_object_get(f, "type"))),
                                          xstrdup(pgtype),
                                          json_is_true(json_object_get(f, "createable")),
                                          json_is_true(json_object_get(f, "updateable")),
                                          to ? xstrdup(to) : NULL,
                                          NULL};
}

static bool
is_compound(json_t *f)
{
    const char *t = json_string_value(json_object_get(f, "type"));
    return t && (strcmp(t, "address") == 0 || strcmp(t, "location") == 0);
}

/* "School__r.External_Id__c": the lookup School__c's parent, named by one of
 * its External ID fields. */
static int
add_relationship(json_t *describe, const char *object, const char *want, mapping *m, json_t *added,
                 const ddl_parents *parents, err_t *e)
{
    const char *dot = strchr(want, '.');
    char rel[256];
    snprintf(rel, sizeof rel, "%.*s", (int)(dot - want), want);
    json_t *lookup = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(describe, "fields"), i, f) {
        const char *rn = json_string_value(json_object_get(f, "relationshipName"));
        if (rn && util_streq_ci(rn, rel))
            lookup = f;
    }
    if (!lookup || strchr(dot + 1, '.'))
        return err_set(e, 400, "INVALID_FIELD", "no relationship '%s' on %s for '%s'", rel, object,
                       want);
    const char *parent = json_string_value(
        json_array_get(json_object_get(lookup, "referenceTo"), 0));
    if (!parent || !parents || !parents->describe)
        return err_set(e, 400, "INVALID_FIELD", "the parent of %s.%s cannot be checked", object,
                       rel);
    json_t *pd = parents->describe(parents->ctx, parent, e);
    if (!pd)
        return -1;
    json_t *ext = find_field(pd, dot + 1);
    int rc = 0;
    if (!ext || (!json_is_true(json_object_get(ext, "externalId")) &&
                 !json_is_true(json_object_get(ext, "idLookup")))) {
        rc = err_set(e, 400, "INVALID_FIELD", "'%s': %s has no External ID field '%s'", want,
                     parent, dot + 1);
    } else {
        char buf[32], name[600];
        const char *pg = ddl_pg_type(ext, buf, sizeof buf);
        snprintf(name, sizeof name, "%s.%s",
                 json_string_value(json_object_get(lookup, "relationshipName")),
                 json_string_value(json_object_get(ext, "name")));
        if (!pg) {
            rc = err_set(e, 400, "INVALID_FIELD", "'%s' has a type sfbridge cannot sync", want);
        } else if (!has_field(m, name)) {
            m->fields = xrealloc(m->fields, (m->nfields + 1) * sizeof *m->fields);
            m->fields[m->nfields++] =
                (map_field){xstrdup(name),
                            ddl_column_name(name),
                            xstrdup(json_string_value(json_object_get(ext, "type"))),
                            xstrdup(pg),
                            json_is_true(json_object_get(lookup, "createable")),
                            json_is_true(json_object_get(lookup, "updateable")),
                            xstrdup(parent),
                            xstrdup(json_string_value(json_object_get(lookup, "name")))};
            if (added)
                json_array_append_new(added, json_string(name));
        }
    }
    json_decref(pd);
    return rc;
}

/* Add one field (or a compound's components); fails naming it. */
static int
add_one(json_t *describe, const char *object, const char *want, mapping *m, json_t *added,
        const ddl_parents *parents, err_t *e)
{
    if (strchr(want, '.'))
        return add_relationship(describe, object, want, m, added, parents, e);
    json_t *f = find_field(describe, want);
    if (!f)
        return err_set(e, 400, "INVALID_FIELD",
                       "no field '%s' on %s (or the integration user cannot read it)", want,
                       object);
    const char *name = json_string_value(json_object_get(f, "name"));
    if (is_compound(f)) {
        size_t i;
        json_t *c;
        int found = 0;
        json_array_foreach(json_object_get(describe, "fields"), i, c) {
            const char *parent = json_string_value(json_object_get(c, "compoundFieldName"));
            const char *cn = json_string_value(json_object_get(c, "name"));
            if (parent && cn && strcmp(parent, name) == 0) {
                found++;
                if (add_one(describe, object, cn, m, added, parents, e) != 0)
                    return -1;
            }
        }
        if (!found)
            return err_set(e, 400, "INVALID_FIELD", "compound field %s.%s has no component fields",
                           object, name);
        return 0;
    }
    char buf[32];
    const char *pg = ddl_pg_type(f, buf, sizeof buf);
    if (!pg)
        return err_set(e, 400, "INVALID_FIELD",
                       "field %s.%s has type %s, which sfbridge cannot sync", object, name,
                       json_string_value(json_object_get(f, "type"))
                           ? json_string_value(json_object_get(f, "type"))
                           : "(none)");
    if (has_field(m, name))
        return 0;
    push_field(m, f, pg);
    if (added)
        json_array_append_new(added, json_string(name));
    return 0;
}

int
ddl_resolve(json_t *describe, const char *const *wanted, size_t nwanted, bool all, mapping *m,
            const ddl_parents *parents, err_t *e)
{
    const char *object = json_string_value(json_object_get(describe, "name"));
    if (!object || !json_is_array(json_object_get(describe, "fields")))
        return err_set(e, 502, "BAD_RESPONSE", "the describe of the object has no name or fields");
    free(m->object);
    free(m->table);
    m->object = xstrdup(object);
    m->table = ddl_column_name(object);
    if (strlen(m->table) > 63)
        return err_set(e, 400, "INVALID_TYPE", "object name %s is too long for a Postgres table",
                       object);
    if (!find_field(describe, "SystemModstamp"))
        return err_set(e, 400, "INVALID_TYPE",
                       "object %s has no SystemModstamp field, so it cannot be synced", object);
    for (size_t i = 0; i < sizeof always_fields / sizeof always_fields[0]; i++) {
        json_t *f = find_field(describe, always_fields[i]);
        char buf[32];
        const char *pg = f ? ddl_pg_type(f, buf, sizeof buf) : NULL;
        if (f && pg && !has_field(m, always_fields[i]))
            push_field(m, f, pg);
    }
    if (all) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(describe, "fields"), i, f) {
            char buf[32];
            const char *pg = ddl_pg_type(f, buf, sizeof buf);
            const char *name = json_string_value(json_object_get(f, "name"));
            if (pg && name && !has_field(m, name))
                push_field(m, f, pg);
        }
    }
    for (size_t i = 0; i < nwanted; i++)
        if (add_one(describe, object, wanted[i], m, NULL, parents, e) != 0)
            return -1;
    return 0;
}

int
ddl_add_fields(json_t *describe, const char *const *wanted, size_t n, mapping *m, json_t **added,
               const ddl_parents *parents, err_t *e)
{
    if (!*added)
        *added = json_array();
    for (size_t i = 0; i < n; i++)
        if (add_one(describe, m->object, wanted[i], m, *added, parents, e) != 0)
            return -1;
    return 0;
}

int
ddl_check_upsert_field(json_t *describe, const char *field, char **canonical, err_t *e)
{
    const char *object = json_string_value(json_object_get(describe, "name"));
    json_t *f = find_field(describe, field);
    if (!f)
        return err_set(e, 400, "INVALID_FIELD", "no field '%s' on %s for the unique identifier",
                       field, object ? object : "?");
    if (!json_is_true(json_object_get(f, "externalId")) &&
        !json_is_true(json_object_get(f, "idLookup")))
        return err_set(e, 400, "INVALID_FIELD",
                       "field %s.%s is not an External ID, so it cannot be the unique identifier",
                       object ? object : "?", json_string_value(json_object_get(f, "name")));
    *canonical = xstrdup(json_string_value(json_object_get(f, "name")));
    return 0;
}

void
ddl_name(char out[64], const char *prefix, const char *base, const char *suffix)
{
    ddl_name_within(out, 63, prefix, base, suffix);
}

void
ddl_name_within(char *out, size_t limit, const char *prefix, const char *base, const char *suffix)
{
    size_t fixed = strlen(prefix) + strlen(suffix), blen = strlen(base);
    if (fixed + blen <= limit) {
        snprintf(out, limit + 1, "%s%s%s", prefix, base, suffix);
        return;
    }
    uint32_t h = 2166136261u; /* FNV-1a over the whole base */
    for (const unsigned char *p = (const unsigned char *)base; *p; p++)
        h = (h ^ *p) * 16777619u;
    size_t keep = fixed + 9 < limit ? limit - fixed - 9 : 0;
    if (keep > blen)
        keep = blen;
    /* never cut a UTF-8 sequence in two */
    while (keep > 0 && ((unsigned char)base[keep] & 0xC0) == 0x80)
        keep--;
    snprintf(out, limit + 1, "%s%.*s_%08x%s", prefix, (int)keep, base, h, suffix);
}

void
ddl_index_name(char out[64], const char *table, const char *column, bool unique)
{
    sb base = SB_INIT;
    sb_printf(&base, "%s_%s", table, column);
    ddl_name(out, unique ? "hcu_idx_" : "hc_idx_", sb_str(&base), "");
    sb_free(&base);
}

void
ddl_pin_path_begin(sb *out)
{
    sb_puts(out,
            "SELECT set_config('sfbridge.saved_search_path', current_setting('search_path'), true),"
            " set_config('search_path', coalesce((SELECT format('pg_catalog, %I, pg_temp', "
            "n.nspname)"
            " FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
            " WHERE x.extname = 'hstore'), 'pg_catalog, public, pg_temp'), true);\n");
}

void
ddl_pin_path_end(sb *out)
{
    sb_puts(out, "SELECT set_config('search_path', current_setting('sfbridge.saved_search_path'), "
                 "true);\n");
}

static void
create_index(sb *out, const char *schema, const char *on, const char *named, const char *column,
             bool unique)
{
    char name[64];
    ddl_index_name(name, named, column, unique);
    sb_printf(out, "CREATE %sINDEX IF NOT EXISTS ", unique ? "UNIQUE " : "");
    sb_sql_ident(out, name);
    sb_puts(out, " ON ");
    pg_qname(out, schema, on);
    sb_puts(out, " (");
    sb_sql_ident(out, column);
    sb_puts(out, ");\n");
}

size_t
ddl_own_indexes(const mapping *m, ddl_index out[], size_t max)
{
    size_t n = 0;
#define DDL_PUSH(col, u)                                          \
    do {                                                          \
        if (n < max)                                              \
            out[n] = (ddl_index){.column = (col), .unique = (u)}; \
        n++;                                                      \
    } while (0)
    DDL_PUSH("sfid", true);
    DDL_PUSH("systemmodstamp", false);
    const char *key;
    json_t *v;
    json_object_foreach(m->indexes, key, v) {
        const map_field *f = cat_field(m, key);
        if (!f || strcmp(f->column, "sfid") == 0 || strcmp(f->column, "systemmodstamp") == 0)
            continue;
        DDL_PUSH(f->column, json_is_true(json_object_get(v, "unique")));
    }
    if (m->upsert_field) {
        const map_field *f = cat_field(m, m->upsert_field);
        if (f)
            DDL_PUSH(f->column, true);
    }
#undef DDL_PUSH
    return n;
}

/* The indexes of ddl_own_indexes from the first `skip`, on table `on` with
 * the names of table `named`. */
static void
create_own_indexes(sb *out, const char *schema, const char *on, const char *named, const mapping *m,
                   size_t skip)
{
    size_t n = ddl_own_indexes(m, NULL, 0);
    ddl_index *ix = xcalloc(n, sizeof *ix);
    ddl_own_indexes(m, ix, n);
    for (size_t i = skip; i < n; i++)
        create_index(out, schema, on, named, ix[i].column, ix[i].unique);
    free(ix);
}

void
ddl_create_indexes(sb *out, const char *schema, const mapping *m)
{
    create_own_indexes(out, schema, m->table, m->table, m, 2); /* not sfid, systemmodstamp */
}

/* A mapping's table: "id", then the fields' columns, then the status columns. */
#define HEAP_ID "id"
static const char *const heap_status[][2] = {{"_hc_lastop", "varchar(32)"}, {"_hc_err", "text"}};
#define HEAP_NSTATUS (sizeof heap_status / sizeof heap_status[0])

void
ddl_create_heap(sb *out, const char *schema, const char *name, const mapping *m)
{
    sb qt = SB_INIT;
    pg_qname(&qt, schema, name);
    sb_printf(out, "CREATE TABLE %s (\n  \"" HEAP_ID "\" serial PRIMARY KEY", sb_str(&qt));
    for (size_t i = 0; i < m->nfields; i++) {
        sb_puts(out, ",\n  ");
        sb_sql_ident(out, m->fields[i].column);
        sb_printf(out, " %s", m->fields[i].pgtype);
    }
    for (size_t i = 0; i < HEAP_NSTATUS; i++)
        sb_printf(out, ",\n  \"%s\" %s", heap_status[i][0], heap_status[i][1]);
    sb_puts(out, "\n);\n");
    sb_free(&qt);
}

void
ddl_heap_columns(sb *out, const mapping *m)
{
    const char **v = xcalloc(m->nfields + 1 + HEAP_NSTATUS, sizeof *v);
    size_t n = 0;
    v[n++] = HEAP_ID;
    for (size_t i = 0; i < m->nfields; i++)
        v[n++] = m->fields[i].column;
    for (size_t i = 0; i < HEAP_NSTATUS; i++)
        v[n++] = heap_status[i][0];
    pg_text_array(out, v, n);
    free(v);
}

void
ddl_create_own_indexes(sb *out, const char *schema, const char *on, const mapping *m)
{
    create_own_indexes(out, schema, on, on, m, 0);
}

void
ddl_create_table(sb *out, const char *schema, const mapping *m)
{
    ddl_create_heap(out, schema, m->table, m);
    ddl_create_own_indexes(out, schema, m->table, m);
}

void
ddl_status_trigger(sb *out, const char *schema, const mapping *m)
{
    sb qt = SB_INIT;
    sb_sql_ident(&qt, schema);
    sb_putc(&qt, '.');
    sb_sql_ident(&qt, m->table);
    /* Heroku Connect's status trigger: an app's write marks the row PENDING;
     * other writers in Heroku Connect's session mode (xmlbinary = hex, as
     * custom triggers set it to keep a change from Salesforce) mark it SYNCED
     * unless they set _hc_lastop themselves. sfbridge's own sessions
     * (sfbridge.session = on, set by pg_connect) always say what _hc_lastop
     * becomes, so a value they leave as it was stays (an INSERTED row that
     * gets its own write's echo). The writer's session (sfbridge.raw = on)
     * sets the status columns exactly as it means them. */
    char fname[64], tname[64];
    DDL_STATUS_FN(fname, m->table);
    DDL_STATUS_TRIGGER(tname, m->table);
    sb qf = SB_INIT;
    sb_sql_ident(&qf, schema);
    sb_putc(&qf, '.');
    sb_sql_ident(&qf, fname);
    /* No hstore and no pinned search_path here (a per-row cost on every
     * load): jsonb and current_setting live in pg_catalog, found whatever
     * the session's search_path. */
    sb_printf(out,
              "CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $hc$\n"
              "BEGIN\n"
              "  IF current_setting('sfbridge.raw', true) = 'on' THEN\n"
              "    RETURN NEW;\n"
              "  END IF;\n"
              "  IF current_setting('xmlbinary') = 'base64' THEN\n"
              "    IF TG_OP = 'UPDATE' AND to_jsonb(NEW) - ARRAY['_hc_lastop', '_hc_err']\n"
              "                          = to_jsonb(OLD) - ARRAY['_hc_lastop', '_hc_err'] THEN\n"
              "      RETURN NEW; -- nothing to send: the status stays\n"
              "    END IF;\n"
              "    NEW._hc_lastop := '" HC_PENDING "';\n"
              "    NEW._hc_err := NULL;\n"
              "  ELSIF TG_OP = 'INSERT' THEN\n"
              "    IF NEW._hc_lastop IS NULL THEN NEW._hc_lastop := '" HC_SYNCED "'; END IF;\n"
              "  ELSIF NEW._hc_lastop IS NOT DISTINCT FROM OLD._hc_lastop\n"
              "        AND current_setting('sfbridge.session', true) IS DISTINCT FROM 'on' THEN\n"
              "    NEW._hc_lastop := '" HC_SYNCED "';\n"
              "    NEW._hc_err := NULL;\n"
              "  END IF;\n"
              "  RETURN NEW;\n"
              "END $hc$;\n",
              sb_str(&qf));
    sb_puts(out, "DROP TRIGGER IF EXISTS ");
    sb_sql_ident(out, tname);
    sb_printf(out, " ON %s;\n", sb_str(&qt));
    sb_puts(out, "CREATE TRIGGER ");
    sb_sql_ident(out, tname);
    sb_printf(out, " BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION %s();\n",
              sb_str(&qt), sb_str(&qf));
    sb_free(&qf);
    sb_free(&qt);
}

void
ddl_add_columns(sb *out, const char *schema, const mapping *m, json_t *added)
{
    size_t i;
    json_t *v;
    json_array_foreach(added, i, v) {
        const map_field *f = cat_field(m, json_string_value(v));
        if (!f)
            continue;
        sb_puts(out, "ALTER TABLE ");
        sb_sql_ident(out, schema);
        sb_putc(out, '.');
        sb_sql_ident(out, m->table);
        sb_puts(out, " ADD COLUMN IF NOT EXISTS ");
        sb_sql_ident(out, f->column);
        sb_printf(out, " %s;\n", f->pgtype);
    }
}
