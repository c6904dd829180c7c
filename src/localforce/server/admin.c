/*
 * admin: changing the org while it runs. See admin.h.
 *
 * A schema change closes open query cursors first (SQLite cannot alter a
 * table under an open statement); their clients get INVALID_QUERY_LOCATOR and
 * start the query again, as they would after a Salesforce cursor expired.
 */
#include "admin.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ctx.h"
#include "query.h"
#include "util.h"

static json_t *
admin_body(http_req *req, http_resp *resp)
{
    json_error_t je;
    json_t *j = req->body_len ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    if (j == NULL)
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "%s at [line:%d, column:%d]",
                    req->body_len ? je.text : "empty body", req->body_len ? je.line : 0,
                    req->body_len ? je.column : 0);
    return j;
}

void
admin_health(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    sb *out = &resp->body;
    store_lock(srv->st);
    const lf_schema *s = store_schema(srv->st);
    sb_printf(out, "{\"status\":\"ok\",\"org\":");
    sb_json_str(out, store_org_name(srv->st));
    sb_printf(out, ",\"open_cursors\":%d,\"api_usage\":%lld,\"objects\":{",
              cursors_open_count(srv->cursors), (long long)atomic_load(&srv->api_used));
    for (size_t i = 0; i < s->nobjects; i++) {
        if (i)
            sb_putc(out, ',');
        sb_json_str(out, s->objects[i]->name);
        sb_printf(out, ":%lld", (long long)store_count(srv->st, s->objects[i]->name, false));
    }
    sb_puts(out, "}}");
    store_unlock(srv->st);
}

/* A definition body with its "name" taken out into *name (to free). NULL:
 * resp holds the refusal. what: "object" or "field", for the message. */
static json_t *
named_definition(http_req *req, http_resp *resp, const char *what, char **name)
{
    json_t *def = admin_body(req, resp);
    if (def == NULL)
        return NULL;
    const char *nm = json_string_value(json_object_get(def, "name"));
    if (nm == NULL) {
        json_decref(def);
        http_errorf(resp, 400, "MISSING_ARGUMENT", "the %s definition needs a \"name\"", what);
        return NULL;
    }
    *name = xstrdup(nm);
    json_object_del(def, "name");
    return def;
}

void
admin_add_object(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    char *nm;
    json_t *def = named_definition(req, resp, "object", &nm);
    if (def == NULL)
        return;
    err_t e;
    cursors_close_all(srv->cursors);
    if (store_add_object(srv->st, nm, def, &e) != 0)
        http_error(resp, &e);
    else
        resp->status = 201, sb_printf(&resp->body, "{\"name\":\"%s\"}", nm);
    free(nm);
    json_decref(def);
}

void
admin_add_field(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    char *nm;
    json_t *def = named_definition(req, resp, "field", &nm);
    if (def == NULL)
        return;
    err_t e;
    cursors_close_all(srv->cursors);
    if (store_add_field(srv->st, req->seg[0], nm, def, &e) != 0)
        http_error(resp, &e);
    else {
        resp->status = 201;
        sb_puts(&resp->body, "{\"object\":");
        sb_json_str(&resp->body, req->seg[0]);
        sb_puts(&resp->body, ",\"field\":");
        sb_json_str(&resp->body, nm);
        sb_putc(&resp->body, '}');
    }
    free(nm);
    json_decref(def);
}

void
admin_load_records(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    json_t *recs = admin_body(req, resp);
    if (recs == NULL)
        return;
    if (!json_is_array(recs)) {
        json_decref(recs);
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "the body must be a JSON array of records");
        return;
    }
    /* ?committed_ms_ago=N: stamped N ms ago, visible now, as a Salesforce
     * transaction that took N ms to commit (a poll's overlap is for those). */
    const char *ago = http_query(req, "committed_ms_ago");
    long long ago_ms = 0;
    char *end = NULL;
    if (ago &&
        ((ago_ms = strtoll(ago, &end, 10)) < 0 || ago_ms > 86400000LL || end == ago || *end)) {
        json_decref(recs);
        http_errorf(resp, 400, "INVALID_FIELD", "committed_ms_ago must be 0 to 86400000: %.40s",
                    ago);
        return;
    }
    lf_actor a = {.user_id = NULL, .origin = "localforce/admin"};
    int64_t loaded = 0;
    err_t e;
    if (store_load_records(srv->st, &a, req->seg[0], recs, ago_ms, &loaded, &e) != 0)
        http_error(resp, &e);
    else
        sb_printf(&resp->body, "{\"loaded\":%lld}", (long long)loaded);
    json_decref(recs);
    /* A bulk load parses a large body; give that memory back to the system so
     * the server's footprint reflects what it keeps, not what it once parsed. */
    malloc_trim(0);
}

void
admin_undelete(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    json_t *body = admin_body(req, resp);
    if (body == NULL)
        return;
    json_t *ids = json_object_get(body, "ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 200) {
        json_decref(body);
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "the body must be {\"ids\": [1 to 200 record ids]}");
        return;
    }
    lf_actor a = {.user_id = NULL, .origin = "localforce/admin"};
    sb *out = &resp->body;
    sb_putc(out, '[');
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        err_t e;
        err_clear(&e);
        int rc = store_undelete(srv->st, &a, req->seg[0], id, &e);
        sb_puts(out, i ? ",{\"id\":" : "{\"id\":");
        if (id)
            sb_json_str(out, id);
        else
            sb_puts(out, "null");
        if (rc == 0) {
            sb_puts(out, ",\"success\":true,\"errors\":[]}");
        } else {
            sb_puts(out, ",\"success\":false,\"errors\":[{\"statusCode\":");
            sb_json_str(out, e.code);
            sb_puts(out, ",\"message\":");
            sb_json_str(out, e.msg);
            sb_puts(out, "}]}");
        }
    }
    sb_putc(out, ']');
    json_decref(body);
}

void
admin_expire_sessions(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    auth_expire_all(srv->auth);
    resp->status = 204;
}
