/*
 * dashapi: the management API's calls the dashboard is built on (routes in
 * api.c): the org's objects and their fields, mapping create, edit and
 * remove (the same checks and messages as `sfbridge mapping`, mapping.c),
 * the Explorer's rows and a record's history (browse.c, tlog.c), retrying a
 * failed write (writer.c), the activity charts (activity.c), and "Set up
 * connection", the OAuth web flow with its callback here (oauthweb.c).
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "activity.h"
#include "browse.h"
#include "catalog.h"
#include "log.h"
#include "mapping.h"
#include "sfapi.h"
#include "tlog.h"
#include "util.h"
#include "writer.h"

#define FIELDS_MAX 800 /* Salesforce allows 800 custom fields on an object */

static bool
flag(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static reply
failed(call *c, const err_t *e)
{
    api_forget_pg(c->s);
    return api_err(e);
}

/* ---- objects ------------------------------------------------------------------ */

/* The mappings' export entries by object name (an object; NULL with e filled). */
static json_t *
mapped_configs(call *c, err_t *e)
{
    json_t *doc = map_export_json(&c->s->a, e);
    if (!doc)
        return NULL;
    json_t *by = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "mappings"), i, m) {
        const char *name = json_string_value(json_object_get(m, "object_name"));
        if (name)
            json_object_set(by, name, json_object_get(m, "config"));
    }
    json_decref(doc);
    return by;
}

static int
by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x, y);
}

/* The list sorted by each entry's name (describeGlobal's order is its own). */
static void
sort_by_name(json_t *list)
{
    size_t n = json_array_size(list);
    json_t **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(list, i));
    qsort(v, n, sizeof *v, by_name);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, v[i]);
    free(v);
}

reply
dash_objects(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    err_t e;
    err_clear(&e);
    sfapi *sf = app_sf(&c->s->a, &e);
    char path[96];
    snprintf(path, sizeof path, "/services/data/v%s/sobjects", c->s->a.cfg.api_version);
    long st = 0;
    json_t *g = NULL;
    if (!sf || sfapi_rest(sf, "GET", path, NULL, &st, &g, &e) != 0)
        return failed(c, &e);
    json_t *mapped = mapped_configs(c, &e);
    if (!mapped) {
        json_decref(g);
        return failed(c, &e);
    }
    json_t *list = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(g, "sobjects"), i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *label = json_string_value(json_object_get(o, "label"));
        if (!name || !flag(o, "queryable") || !flag(o, "retrieveable"))
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:b}", "name", name, "label",
                                              label ? label : name, "custom", flag(o, "custom"),
                                              "mapped", json_object_get(mapped, name) != NULL));
    }
    json_decref(g);
    json_decref(mapped);
    sort_by_name(list);
    return api_json(200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                   "results", list));
}

/* One field of a describe, as the editor shows it. */
static json_t *
field_json(json_t *f)
{
    const char *name = json_string_value(json_object_get(f, "name"));
    const char *label = json_string_value(json_object_get(f, "label"));
    const char *type = json_string_value(json_object_get(f, "type"));
    /* What an insert must give: not nillable, createable, no default. */
    bool required = !flag(f, "nillable") && flag(f, "createable") && !flag(f, "defaultedOnCreate");
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:I}", "name", name, "label",
                     label ? label : name, "type", type ? type : "?", "required", required,
                     "external_id", flag(f, "externalId"), "unique", flag(f, "unique"),
                     "createable", flag(f, "createable"), "updateable", flag(f, "updateable"),
                     "length", json_integer_value(json_object_get(f, "length")));
}

/* The export config of a mapping, as the editor reads it. */
static json_t *
editor_config(json_t *config)
{
    json_t *names = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(config, "fields"), k, v) {
        json_array_append_new(names, json_string(k));
    }
    json_t *up = json_object_get(config, "upsert_field");
    return json_pack("{s:O, s:o, s:O, s:O, s:O}", "access", json_object_get(config, "access"),
                     "fields", names, "sf_polling_seconds",
                     json_object_get(config, "sf_polling_seconds"), "sf_notify_enabled",
                     json_object_get(config, "sf_notify_enabled"), "upsert_field",
                     up ? up : json_null());
}

reply
dash_object(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    err_t e;
    err_clear(&e);
    json_t *d = NULL;
    if (map_describe(&c->s->a, c->arg[1], &d, &e) != 0)
        return failed(c, &e);
    json_t *mapped = mapped_configs(c, &e);
    if (!mapped) {
        json_decref(d);
        return failed(c, &e);
    }
    const char *name = json_string_value(json_object_get(d, "name"));
    json_t *fields = json_array(), *ext = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f) {
        if (!json_string_value(json_object_get(f, "name")))
            continue;
        json_array_append_new(fields, field_json(f));
        if (flag(f, "externalId"))
            json_array_append_new(ext, json_string(json_string_value(json_object_get(f, "name"))));
    }
    json_t *config = json_object_get(mapped, name ? name : c->arg[1]);
    const char *label = json_string_value(json_object_get(d, "label"));
    json_t *j = json_pack("{s:s, s:s, s:b, s:b, s:o, s:o, s:o}", "name", name ? name : c->arg[1],
                          "label", label ? label : c->arg[1], "custom", flag(d, "custom"), "mapped",
                          config != NULL, "external_id_fields", ext, "fields", fields, "mapping",
                          config ? editor_config(config) : json_null());
    json_decref(d);
    json_decref(mapped);
    return api_json(200, j);
}

/* ---- mapping create, edit, remove --------------------------------------------- */

/* The names of a JSON array of strings into *out (pointers into arr). */
static int
string_list(json_t *arr, const char ***out, size_t *n, const char *what, err_t *e)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) > FIELDS_MAX)
        return err_set(e, 400, "BAD_REQUEST", "%s must be a list of field names", what);
    *out = xcalloc(json_array_size(arr) + 1, sizeof **out);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v) || !*json_string_value(v)) {
            free(*out);
            *out = NULL;
            return err_set(e, 400, "BAD_REQUEST", "%s must be a list of field names", what);
        }
        (*out)[(*n)++] = json_string_value(v);
    }
    return 0;
}

/* The options of a config object that are set (fields aside). */
static int
config_opts(json_t *cfgj, map_opts *o, err_t *e)
{
    json_t *v;
    if ((v = json_object_get(cfgj, "access"))) {
        const char *a = json_string_value(v);
        if (!a || (strcmp(a, "read_only") != 0 && strcmp(a, "read_write") != 0))
            return err_set(e, 400, "BAD_REQUEST", "access must be read_only or read_write");
        o->access = strcmp(a, "read_write") == 0;
    }
    if ((v = json_object_get(cfgj, "sf_polling_seconds"))) {
        json_int_t s = json_integer_value(v);
        if (!json_is_integer(v) || s < 1 || s > 86400)
            return err_set(e, 400, "BAD_REQUEST",
                           "sf_polling_seconds must be a whole number of seconds, 1 to 86400");
        o->poll_seconds = (int)s;
    }
    if ((v = json_object_get(cfgj, "sf_notify_enabled"))) {
        if (!json_is_boolean(v))
            return err_set(e, 400, "BAD_REQUEST", "sf_notify_enabled must be true or false");
        o->notify = json_is_true(v);
    }
    if ((v = json_object_get(cfgj, "upsert_field"))) {
        if (!json_is_null(v) && !json_is_string(v))
            return err_set(e, 400, "BAD_REQUEST", "upsert_field must be a field name or null");
        o->upsert_field = json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
        o->no_upsert_field = !o->upsert_field;
    }
    return 0;
}

/* The mapping's status entry, with the editor's warnings. */
static reply
mapping_answer(call *c, unsigned status, const char *object)
{
    json_t *st;
    reply r;
    json_t *m = api_find_mapping(c, object, &st, &r);
    if (!m)
        return r;
    json_t *warn = json_array();
    const char *access = json_string_value(json_object_get(m, "access"));
    json_t *up = json_object_get(m, "upsert_field");
    if (access && strcmp(access, "read_write") == 0 && !json_string_value(up))
        json_array_append_new(warn, json_string(MAP_WARN_NO_UNIQUE_ID));
    json_t *j = json_incref(m);
    json_object_set_new(j, "warnings", warn);
    json_decref(st);
    return api_json(status, j);
}

reply
dash_create_mapping(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    reply r;
    json_t *body = api_body_json(c, &r);
    if (!body)
        return r;
    err_t e;
    err_clear(&e);
    map_opts o = MAP_OPTS_INIT;
    const char *object = json_string_value(json_object_get(body, "object_name"));
    json_t *cfgj = json_object_get(body, "config");
    int rc = -1;
    if (!object || !*object)
        err_set(&e, 400, "BAD_REQUEST", "object_name must name a Salesforce object");
    else if (!json_is_object(cfgj))
        err_set(&e, 400, "BAD_REQUEST", "config must be an object (access, fields, ...)");
    else if (string_list(json_object_get(cfgj, "fields"), &o.fields, &o.nfields, "config.fields",
                         &e) == 0 &&
             config_opts(cfgj, &o, &e) == 0) {
        if (o.nfields == 0)
            err_set(&e, 400, "BAD_REQUEST", "choose at least one field");
        else
            rc = map_add(&c->s->a, object, &o, &e);
    }
    char obj[256];
    snprintf(obj, sizeof obj, "%s", object ? object : "");
    free(o.fields);
    json_decref(body);
    if (rc != 0)
        return failed(c, &e);
    return mapping_answer(c, 201, obj);
}

/* The fields to add and remove to make the mapping's list `want`. */
static int
field_changes(call *c, json_t *want, map_opts *o, json_t **keep, err_t *e)
{
    json_t *mapped = mapped_configs(c, e);
    if (!mapped)
        return -1;
    json_t *have = json_object_get(json_object_get(mapped, c->arg[0]), "fields");
    int rc = 0;
    size_t nw = 0;
    const char **w = NULL;
    if (!have)
        rc = err_set(e, 404, "NOT_MAPPED", "%s is not mapped", c->arg[0]);
    else
        rc = string_list(want, &w, &nw, "config.fields", e);
    if (rc == 0 && nw == 0)
        rc = err_set(e, 400, "BAD_REQUEST", "choose at least one field");
    if (rc == 0) {
        size_t nh = json_object_size(have);
        o->add_fields = xcalloc(nw + 1, sizeof *o->add_fields);
        o->remove_fields = xcalloc(nh + 1, sizeof *o->remove_fields);
        for (size_t i = 0; i < nw; i++) {
            bool found = false;
            const char *k;
            json_t *v;
            json_object_foreach(have, k, v) {
                found = found || util_streq_ci(k, w[i]);
            }
            if (!found)
                o->add_fields[o->nadd++] = w[i];
        }
        const char *k;
        json_t *v;
        json_object_foreach(have, k, v) {
            bool kept = map_field_is_fixed(k);
            for (size_t i = 0; i < nw && !kept; i++)
                kept = util_streq_ci(k, w[i]);
            if (!kept)
                o->remove_fields[o->nremove++] = k;
        }
    }
    free(w);
    /* The names removed point into mapped: the caller frees it after the edit. */
    *keep = mapped;
    return rc;
}

reply
dash_edit_mapping(call *c)
{
    reply r;
    json_t *body = api_body_json(c, &r);
    if (!body)
        return r;
    err_t e;
    err_clear(&e);
    map_opts o = MAP_OPTS_INIT;
    json_t *cfgj = json_object_get(body, "config"), *keep = NULL;
    int rc = -1;
    if (!json_is_object(cfgj))
        err_set(&e, 400, "BAD_REQUEST", "config must be an object (access, fields, ...)");
    else if (config_opts(cfgj, &o, &e) == 0 &&
             (!json_object_get(cfgj, "fields") ||
              field_changes(c, json_object_get(cfgj, "fields"), &o, &keep, &e) == 0))
        rc = map_edit(&c->s->a, c->arg[0], &o, &e);
    free(o.add_fields);
    free(o.remove_fields);
    json_decref(keep);
    json_decref(body);
    if (rc != 0)
        return failed(c, &e);
    return mapping_answer(c, 200, c->arg[0]);
}

reply
dash_remove_mapping(call *c)
{
    const char *drop = api_arg(c, "drop_table");
    err_t e;
    err_clear(&e);
    if (map_remove(&c->s->a, c->arg[0], drop && strcmp(drop, "0") != 0, &e) != 0)
        return failed(c, &e);
    return api_json(202, json_pack("{s:s, s:s}", "action", "remove", "target", c->arg[0]));
}

/* ---- the Explorer ------------------------------------------------------------- */

/* The mapped table of object into table (a catalog name). */
static int
table_of(call *c, const char *object, char table[64], err_t *e)
{
    mapping *m = NULL;
    size_t n = 0;
    PGconn *pg = app_pg_read(&c->s->a, e);
    if (!pg || cat_load_any(pg, c->s->a.cfg.schema, object, &m, &n, e) != 0)
        return -1;
    int rc = 0;
    if (!n)
        rc = err_set(e, 404, "NOT_MAPPED", "%s is not mapped", object);
    else
        snprintf(table, 64, "%s", m->table);
    mapping_free_all(m, n);
    return rc;
}

reply
dash_records(call *c)
{
    err_t e;
    err_clear(&e);
    char table[64];
    if (table_of(c, c->arg[0], table, &e) != 0)
        return failed(c, &e);
    browse_query q = {.schema = c->s->a.cfg.schema,
                      .table = table,
                      .sort = api_arg(c, "sort"),
                      .after = api_arg(c, "after"),
                      .field = api_arg(c, "field"),
                      .value = api_arg(c, "value"),
                      .q = api_arg(c, "q"),
                      .limit = BROWSE_DEFAULT_LIMIT};
    const char *dir = api_arg(c, "dir"), *lim = api_arg(c, "limit");
    int64_t l;
    if (dir && strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0)
        return api_error(400, "BAD_REQUEST", "dir must be asc or desc");
    q.desc = dir && strcmp(dir, "desc") == 0;
    if (lim && (util_parse_i64(lim, &l) != 0 || l < 1 || l > BROWSE_MAX_LIMIT))
        return api_error(400, "BAD_REQUEST", "limit must be 1 to 500");
    if (lim)
        q.limit = (int)l;
    json_t *page = browse_page(c->s->a.pg, &q, &e);
    return page ? api_json(200, page) : failed(c, &e);
}

reply
dash_record(call *c)
{
    err_t e;
    err_clear(&e);
    char table[64];
    if (table_of(c, c->arg[0], table, &e) != 0)
        return failed(c, &e);
    int64_t rid = 0;
    json_t *rec = browse_record(c->s->a.pg, c->s->a.cfg.schema, table, c->arg[1], &rid, &e);
    if (!rec)
        return failed(c, &e);
    json_t *hist = tlog_history_json(c->s->a.pg, c->s->a.cfg.schema, table, rid, &e);
    if (!hist) {
        json_decref(rec);
        return failed(c, &e);
    }
    return api_json(200, json_pack("{s:o, s:o}", "record", rec, "history", hist));
}

/* POST /api/v3/errors/{ID|all}/actions/retry: as `sfbridge retry`. */
reply
dash_retry(call *c)
{
    if (strcmp(c->arg[1], "retry") != 0)
        return api_error(404, "NOT_FOUND", "no such action (retry)");
    bool all = strcmp(c->arg[0], "all") == 0;
    int64_t id;
    if (!all && (util_parse_i64(c->arg[0], &id) != 0 || id <= 0))
        return api_error(404, "NOT_FOUND", "a write error's id is a whole number (or all)");
    err_t e;
    err_clear(&e);
    int64_t count = 0;
    sb missing = SB_INIT;
    const char *ids[] = {c->arg[0]};
    int rc = app_pg(&c->s->a, &e) ? writer_requeue(c->s->a.pg, c->s->a.cfg.schema, ids, all ? 0 : 1,
                                                   all, &count, &missing, &e)
                                  : -1;
    bool none = missing.len > 0;
    sb_free(&missing);
    if (rc != 0)
        return failed(c, &e);
    if (none)
        return api_error(404, "NOT_FOUND", "no failed write with that id");
    return api_json(202, json_pack("{s:s, s:I}", "action", "retry", "requeued", (json_int_t)count));
}

/* ---- activity ----------------------------------------------------------------- */

reply
dash_activity(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    const char *h = api_arg(c, "hours");
    int64_t hours = 1;
    if (h && (util_parse_i64(h, &hours) != 0 || (hours != 1 && hours != 24)))
        return api_error(400, "BAD_REQUEST", "hours must be 1 or 24");
    err_t e;
    err_clear(&e);
    char table[64];
    const char *object = api_arg(c, "mapping");
    if (object && table_of(c, object, table, &e) != 0)
        return failed(c, &e);
    PGconn *pg = app_pg_read(&c->s->a, &e);
    json_t *j = pg ? act_series_json(pg, c->s->a.cfg.schema, object ? table : NULL, (int)hours, &e)
                   : NULL;
    return j ? api_json(200, j) : failed(c, &e);
}

/* ---- "Set up connection": the OAuth web flow from the browser ------------------- */

#define FLOW_TTL_MS (15 * 60 * 1000L) /* an authorization not finished by then is forgotten */

/* The page the browser lands on after Salesforce: what happened, and the way back. */
static reply
landing(unsigned status, const char *title, const char *text)
{
    sb b = SB_INIT;
    sb_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<title>");
    sb_html_str(&b, title);
    sb_puts(&b, " - sfbridge</title><link rel=\"stylesheet\" href=\"/ui/app.css\"></head>"
                "<body><main id=\"main\" class=\"landing\"><h1>");
    sb_html_str(&b, title);
    sb_puts(&b, "</h1><p id=\"landing-text\">");
    sb_html_str(&b, text);
    sb_puts(&b, "</p><p><a id=\"back\" href=\"/#/overview\">Back to the dashboard</a></p>"
                "</main></body></html>");
    return (reply){.status = status, .body = sb_steal(&b), .ctype = "text/html; charset=utf-8"};
}

static void
forget_flow(api *s)
{
    OPENSSL_cleanse(&s->flow, sizeof s->flow);
    s->flow_ms = 0;
}

/* POST /api/v3/connections/default/actions/authorize {"login_url" | "sandbox"}:
 * the authorize URL the browser goes to; Salesforce sends it back to
 * /oauth/callback on this listener (the connected app's callback URL). */
reply
dash_authorize(call *c)
{
    reply r;
    json_t *body = c->body->len ? api_body_json(c, &r) : json_object();
    if (!body)
        return r;
    const char *login = json_string_value(json_object_get(body, "login_url"));
    bool sandbox = json_is_true(json_object_get(body, "sandbox"));
    const char *host = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Host");
    err_t e;
    err_clear(&e);
    char redirect[512];
    char *url = NULL;
    int rc = -1;
    if (!host || !*host || strlen(host) > 255 || strpbrk(host, "/?#@\\ \t"))
        err_set(&e, 400, "BAD_REQUEST", "the request has no usable Host header");
    else if (login && *login && strncmp(login, "https://", 8) != 0 &&
             strncmp(login, "http://", 7) != 0)
        err_set(&e, 400, "BAD_REQUEST",
                "login_url must be a URL such as https://MyDomainName.my.salesforce.com");
    else {
        snprintf(redirect, sizeof redirect, "http://%s/oauth/callback", host);
        rc = oauthweb_begin(&c->s->a.cfg, sandbox ? "https://test.salesforce.com" : login, redirect,
                            &c->s->flow, &url, &e);
    }
    json_decref(body);
    if (rc != 0)
        return api_err(&e);
    c->s->flow_ms = util_now_ms();
    r = api_json(200, json_pack("{s:s, s:s, s:s}", "action", "authorize", "authorize_url", url,
                                "redirect_uri", redirect));
    free(url);
    return r;
}

/* GET /oauth/callback?code=&state=: the code exchanged and the refresh token
 * stored (the credentials file), then the daemon reads its settings again
 * (as on SIGHUP) and logs in with it. */
reply
dash_oauth_callback(call *c)
{
    api *s = c->s;
    const char *error = api_arg(c, "error");
    if (!s->flow_ms || util_now_ms() - s->flow_ms > FLOW_TTL_MS)
        return landing(400, "No authorization under way",
                       "This answer from Salesforce is not for an authorization this sfbridge "
                       "is waiting for. Start again: Overview, Set up connection.");
    if (error) {
        const char *desc = api_arg(c, "error_description");
        char text[700];
        snprintf(text, sizeof text, "Salesforce did not authorize sfbridge: %.100s%s%.500s", error,
                 desc ? ": " : "", desc ? desc : "");
        forget_flow(s);
        return landing(400, "Not authorized", text);
    }
    err_t e;
    err_clear(&e);
    char path[4096], user[64], text[ERR_MSG_MAX + 4096 + 300];
    int rc = oauthweb_finish(&s->a.cfg, &s->flow, s->config_path, api_arg(c, "code"),
                             api_arg(c, "state"), path, sizeof path, user, &e);
    if (rc != 0 && strcmp(e.code, "BAD_STATE") == 0) /* not ours: the one under way goes on */
        return landing(400, "Not this authorization", e.msg);
    forget_flow(s);
    if (rc != 0) {
        snprintf(text, sizeof text, "%s", e.msg);
        return landing(e.http >= 400 && e.http < 600 ? (unsigned)e.http : 502,
                       "The connection was not set up", text);
    }
    log_info("connection set up from the dashboard%s%s: the refresh token is in %s; reading "
             "the settings again",
             *user ? " as " : "", user, path);
    app_reload = 1; /* the daemon's loop reloads, as on SIGHUP; the NOTIFY wakes it */
    PGconn *pg = app_pg(&s->a, &e);
    if (!pg || cat_notify(pg, s->a.cfg.schema, &e) != 0)
        log_debug("http: the daemon was not woken (%s); it reloads within seconds", e.msg);
    snprintf(text, sizeof text,
             "sfbridge is authorized%s%s. It reads its settings again and logs in with this "
             "authorization from now on (the refresh token is kept in %s, readable by its "
             "owner only).",
             *user ? " as user " : "", user, path);
    return landing(200, "Connected", text);
}
