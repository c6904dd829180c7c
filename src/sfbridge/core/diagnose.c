/*
 * diagnose: checks with a color, a reason and a fix (see diagnose.h).
 */
#include "diagnose.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "fsm.h"
#include "mapping.h"
#include "pg.h"
#include "sb.h"
#include "util.h"

/* What the checks share: the findings so far, the mapping and its describe. */
typedef struct diag {
    app *a;
    json_t *found; /* [{check, object, status, reason, fix}] */
    diag_color worst;
    const mapping *m;
    json_t *desc; /* the object's describe, or NULL when Salesforce could not say */
} diag;

static void finding(diag *d, diag_color c, const char *check, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
finding(diag *d, diag_color c, const char *check, const char *fix, const char *fmt, ...)
{
    static const char *const names[] = {"GREEN", "YELLOW", "RED"};
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "check", check, "status", names[c], "reason",
                          reason, "object", d->m ? d->m->object : "connection");
    if (fix && c != DIAG_GREEN)
        json_object_set_new(f, "fix", json_string(fix));
    json_array_append_new(d->found, f);
    if (c > d->worst)
        d->worst = c;
}

/* The describe's field named name, or NULL. */
static json_t *
described(const diag *d, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d->desc, "fields"), i, f) {
        if (util_streq_ci(json_string_value(json_object_get(f, "name")), name))
            return f;
    }
    return NULL;
}

static bool
mapped(const mapping *m, const char *name)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (util_streq_ci(m->fields[i].name, name))
            return true;
    return false;
}

/* Fields Salesforce sets itself: mapped to be read, never written. */
static bool
system_field(const char *name)
{
    static const char *const names[] = {"Id",
                                        "SystemModstamp",
                                        "IsDeleted",
                                        "CreatedDate",
                                        "CreatedById",
                                        "LastModifiedDate",
                                        "LastModifiedById",
                                        "LastReferencedDate",
                                        "LastViewedDate",
                                        "LastActivityDate"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (util_streq_ci(names[i], name))
            return true;
    return false;
}

static bool
flag(json_t *f, const char *key)
{
    return json_is_true(json_object_get(f, key));
}

/* ---- per-mapping checks ----------------------------------------------------------- */

static void
check_state(diag *d)
{
    const mapping *m = d->m;
    const char *st = fsm_state_name(m->state);
    if (m->state == MS_BAD_CONFIG || m->state == MS_NEED_AUTHENTICATION)
        finding(d, DIAG_RED, "state", "fix the cause named, then: sfbridge resume OBJECT", "%s: %s",
                st, m->last_error ? m->last_error : "no reason recorded");
    else if (m->state == MS_RETRYING)
        finding(d, DIAG_YELLOW, "state", "see sfbridge status; it retries by itself", "%s: %s", st,
                m->last_error ? m->last_error : "no reason recorded");
    else
        finding(d, DIAG_GREEN, "state", NULL, "%s%s", st, m->paused ? " (paused)" : "");
}

static void
check_unique_identifier(diag *d)
{
    const mapping *m = d->m;
    if (!m->read_write) {
        finding(d, DIAG_GREEN, "unique identifier", NULL, "read-only mapping: none needed");
        return;
    }
    if (m->upsert_field) {
        finding(d, DIAG_GREEN, "unique identifier", NULL, "inserts are upserts by %s",
                m->upsert_field);
        return;
    }
    sb ext = SB_INIT, fix = SB_INIT;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d->desc, "fields"), i, f) {
        if (flag(f, "externalId"))
            sb_printf(&ext, "%s%s", ext.len ? ", " : "",
                      json_string_value(json_object_get(f, "name")));
    }
    sb_printf(&fix, "sfbridge mapping edit %s --upsert-field FIELD (External ID fields: %s)",
              m->object, ext.len ? sb_str(&ext) : "none: create one in Salesforce first");
    finding(d, DIAG_YELLOW, "unique identifier", sb_str(&fix),
            MAP_WARN_NO_UNIQUE_ID
            " (without one a "
            "retried insert is found by its values, which cannot always tell records apart)");
    sb_free(&ext);
    sb_free(&fix);
}

static void
check_fields(diag *d)
{
    const mapping *m = d->m;
    sb gone = SB_INIT, ro = SB_INIT, formula = SB_INIT, big = SB_INIT;
    for (size_t i = 0; i < m->nfields; i++) {
        const map_field *mf = &m->fields[i];
        if (mf->via)
            continue; /* a parent's External ID: described on the parent */
        json_t *f = described(d, mf->name);
        if (!f) {
            sb_printf(&gone, "%s%s", gone.len ? ", " : "", mf->name);
            continue;
        }
        if (m->read_write && !flag(f, "updateable") && !flag(f, "createable") &&
            !flag(f, "calculated") && !flag(f, "autoNumber") && !system_field(mf->name))
            sb_printf(&ro, "%s%s", ro.len ? ", " : "", mf->name);
        if (flag(f, "calculated"))
            sb_printf(&formula, "%s%s", formula.len ? ", " : "", mf->name);
        const char *t = json_string_value(json_object_get(f, "type"));
        if (t && strcmp(t, "textarea") == 0 &&
            json_integer_value(json_object_get(f, "length")) > 32768)
            sb_printf(&big, "%s%s", big.len ? ", " : "", mf->name);
    }
    if (gone.len)
        finding(d, DIAG_RED, "fields readable",
                "sfbridge mapping edit OBJECT --remove-fields ..., or give the integration user "
                "field-level access",
                "mapped fields Salesforce no longer shows the integration user: %s", sb_str(&gone));
    else
        finding(d, DIAG_GREEN, "fields readable", NULL, "every mapped field is readable");
    if (ro.len)
        finding(d, DIAG_YELLOW, "fields updateable",
                "give the integration user edit access, or stop writing these columns",
                "the integration user cannot set these fields (changes to them are not sent): %s",
                sb_str(&ro));
    else if (m->read_write)
        finding(d, DIAG_GREEN, "fields updateable", NULL, "every mapped field can be written");
    if (formula.len)
        finding(d, DIAG_YELLOW, "formula fields",
                "sfbridge drift OBJECT (or reload) refreshes them; or map them read-only elsewhere",
                "formula fields do not change SystemModstamp, so their values go stale until the "
                "record changes: %s",
                sb_str(&formula));
    if (big.len)
        finding(d, DIAG_YELLOW, "large text areas", "map only the fields the apps need",
                "long text areas make every poll and load heavier: %s", sb_str(&big));
    sb_free(&gone);
    sb_free(&ro);
    sb_free(&formula);
    sb_free(&big);
}

static void
check_required(diag *d)
{
    const mapping *m = d->m;
    if (!m->read_write)
        return;
    sb missing = SB_INIT;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d->desc, "fields"), i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (name && flag(f, "createable") && !flag(f, "nillable") &&
            !flag(f, "defaultedOnCreate") && !mapped(m, name))
            sb_printf(&missing, "%s%s", missing.len ? "," : "", name);
    }
    if (missing.len) {
        sb fix = SB_INIT;
        sb_printf(&fix, "sfbridge mapping edit %s --add-fields %s", m->object, sb_str(&missing));
        finding(d, DIAG_RED, "required fields", sb_str(&fix),
                "Salesforce requires fields this read-write mapping does not map, so every insert "
                "from Postgres fails: %s",
                sb_str(&missing));
        sb_free(&fix);
    } else if (m->read_write) {
        finding(d, DIAG_GREEN, "required fields", NULL, "every required field is mapped");
    }
    sb_free(&missing);
}

static void
check_budget(diag *d)
{
    const mapping *m = d->m;
    long used = (long)m->api_calls, max = m->max_daily;
    diag_color c = used >= max ? DIAG_RED : used * 4 >= max * 3 ? DIAG_YELLOW : DIAG_GREEN;
    finding(d, c, "daily API budget",
            "raise it (sfbridge mapping edit OBJECT --max-daily-api-calls N) or poll less often",
            "%ld of %ld API calls used today", used, max);
}

/* ---- connection-wide checks -------------------------------------------------------- */

static void
check_postgres(diag *d)
{
    err_t e;
    const char *p[] = {d->a->cfg.schema};
    PGresult *r = pg_query(d->a->pg, &e,
                           "SELECT has_schema_privilege(current_user, $1, 'CREATE'),"
                           " has_schema_privilege(current_user, $1, 'USAGE')",
                           1, p);
    if (!r) {
        finding(d, DIAG_RED, "postgres privileges", NULL, "cannot ask: %s", e.msg);
        return;
    }
    bool create = PQgetvalue(r, 0, 0)[0] == 't', usage = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (create && usage)
        finding(d, DIAG_GREEN, "postgres privileges", NULL, "the role may create in schema %s",
                d->a->cfg.schema);
    else
        finding(d, DIAG_RED, "postgres privileges",
                "GRANT CREATE, USAGE ON SCHEMA ... TO the role in DATABASE_URL",
                "the role cannot %s in schema %s (mappings cannot be added or changed)",
                usage ? "create tables" : "use the schema", d->a->cfg.schema);
}

static void
check_trigger_log(diag *d)
{
    err_t e;
    sb s = SB_INIT, q1 = SB_INIT, q2 = SB_INIT, l1 = SB_INIT, l2 = SB_INIT;
    pg_qname(&q1, d->a->cfg.schema, "_trigger_log");
    pg_qname(&q2, d->a->cfg.schema, "_trigger_log_archive");
    sb_sql_literal(&l1, sb_str(&q1));
    sb_sql_literal(&l2, sb_str(&q2));
    sb_printf(&s,
              "SELECT (SELECT count(*) FROM %s), pg_total_relation_size(%s::regclass),"
              " pg_total_relation_size(%s::regclass)",
              sb_str(&q1), sb_str(&l1), sb_str(&l2));
    PGresult *r = pg_query(d->a->pg, &e, sb_str(&s), 0, NULL);
    sb *all[] = {&s, &q1, &q2, &l1, &l2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sb_free(all[i]);
    if (!r) {
        finding(d, DIAG_YELLOW, "trigger log", NULL, "cannot measure it: %s", e.msg);
        return;
    }
    long long rows = atoll(PQgetvalue(r, 0, 0));
    double mb = (double)(atoll(PQgetvalue(r, 0, 1)) + atoll(PQgetvalue(r, 0, 2))) / 1048576.0;
    PQclear(r);
    diag_color c = rows > 100000 || mb > 1024 ? DIAG_YELLOW : DIAG_GREEN;
    finding(d, c, "trigger log",
            "see sfbridge status (writes waiting); lower SFBRIDGE_ARCHIVE_DAYS; VACUUM the log "
            "tables",
            "%lld entries in _trigger_log; the log and its archive take %.1f MB", rows, mb);
}

/* ---- running them ------------------------------------------------------------------- */

typedef void (*mapping_check)(diag *d);

static const mapping_check mapping_checks[] = {
    check_state, check_unique_identifier, check_fields, check_required, check_budget,
};

static void
diagnose_mapping(diag *d, const mapping *m)
{
    d->m = m;
    err_t e;
    err_clear(&e);
    d->desc = NULL;
    if (!d->a->sf || sfapi_describe(d->a->sf, m->object, &d->desc, &e) != 0) {
        finding(d, DIAG_RED, "describe",
                "check the connection (sfbridge status) and the user's "
                "access to the object",
                "Salesforce could not describe %s: %s", m->object,
                e.msg[0] ? e.msg : "not connected");
        check_state(d);
        check_budget(d);
        return;
    }
    for (size_t i = 0; i < sizeof mapping_checks / sizeof mapping_checks[0]; i++)
        mapping_checks[i](d);
    json_decref(d->desc);
    d->desc = NULL;
}

static void
print_text(json_t *found, FILE *out)
{
    size_t i;
    json_t *f;
    json_array_foreach(found, i, f) {
        fprintf(out, "%-7s %-24s %-20s %s\n", json_string_value(json_object_get(f, "status")),
                json_string_value(json_object_get(f, "object")),
                json_string_value(json_object_get(f, "check")),
                json_string_value(json_object_get(f, "reason")));
        const char *fix = json_string_value(json_object_get(f, "fix"));
        if (fix)
            fprintf(out, "%-7s %-24s %-20s fix: %s\n", "", "", "", fix);
    }
}

int
diagnose_run(app *a, const char *object, bool json, FILE *out, diag_color *worst, err_t *e)
{
    if (!app_pg(a, e))
        return -1;
    mapping *ms = NULL;
    size_t n = 0;
    if (cat_load_any(a->pg, a->cfg.schema, object, &ms, &n, e) != 0)
        return -1;
    if (object && !n)
        return err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                       object);
    diag d = {.a = a, .found = json_array()};
    err_t se;
    err_clear(&se);
    if (!app_sf(a, &se))
        finding(&d, DIAG_RED, "salesforce", "check SF_* settings and sfbridge status",
                "cannot log in: %s", se.msg);
    else
        finding(&d, DIAG_GREEN, "salesforce", NULL, "org %s at %s, API v%s", sfapi_org_id(a->sf),
                sfapi_instance_url(a->sf), a->cfg.api_version);
    check_postgres(&d);
    check_trigger_log(&d);
    for (size_t i = 0; i < n; i++)
        diagnose_mapping(&d, &ms[i]);
    d.m = NULL;
    mapping_free_all(ms, n);
    if (json) {
        char *txt = json_dumps(d.found, JSON_COMPACT);
        fprintf(out, "%s\n", txt);
        free(txt);
    } else {
        print_text(d.found, out);
    }
    json_decref(d.found);
    *worst = d.worst;
    return 0;
}
