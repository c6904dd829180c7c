/*
 * rest: the REST API under /services/data/vNN.N/. See rest.h.
 *
 * Each handler parses and checks what the client sent, calls the store, the
 * query engine or describe, and writes Salesforce's JSON. Bodies are untrusted:
 * malformed JSON, invalid UTF-8, wrong shapes and oversized collections get
 * Salesforce's errors.
 */
#include "rest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "ctx.h"
#include "describe.h"
#include "query.h"
#include "sfid.h"
#include "soql.h"
#include "store.h"
#include "util.h"

#define COLLECTION_MAX 200

/* ----- helpers ----------------------------------------------------------- */

/* "v59.0" -> "59.0" */
static const char *
ver_of(http_req *req)
{
    return req->seg[0] + 1;
}

static double
ver_num(http_req *req)
{
    return strtod(ver_of(req), NULL);
}

/* The actor for the store: the session's user and the change origin. */
static lf_actor
actor_of(http_req *req, char *origin, size_t origin_sz)
{
    const lf_session *s = req->auth;
    const char *opts = http_header(req, "Sforce-Call-Options");
    const char *client = opts ? strstr(opts, "client=") : NULL;
    if (client) {
        client += 7;
        size_t n = strcspn(client, ",; ");
        snprintf(origin, origin_sz, "com/salesforce/api/rest/%s;client=%.*s", ver_of(req),
                 (int)(n > 64 ? 64 : n), client);
    } else {
        snprintf(origin, origin_sz, "com/salesforce/api/rest/%s", ver_of(req));
    }
    lf_actor a = {.user_id = s ? s->user_id : NULL, .origin = origin};
    return a;
}

static void
answer_json(http_resp *resp, int status, sb *body)
{
    resp->status = status;
    resp->content_type = CT_JSON;
    sb_free(&resp->body);
    resp->body = *body;
    *body = (sb)SB_INIT;
}

/* rc 0: answer 200 with the JSON in *body; otherwise the error e (body is freed). */
static void
answer_json_or_error(http_resp *resp, int rc, sb *body, const err_t *e)
{
    if (rc != 0) {
        sb_free(body);
        http_error(resp, e);
        return;
    }
    answer_json(resp, 200, body);
}

/* Does the object exist? Answers 404 NOT_FOUND if not. */
static bool
object_known(http_req *req, http_resp *resp, const char *name)
{
    store *st = ctx_of(req)->st;
    store_lock(st);
    bool ok = schema_object(store_schema(st), name) != NULL;
    store_unlock(st);
    if (!ok)
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    return ok;
}

/* [{"statusCode"|"errorCode":...,"message":...,"fields":[...]}] */
static void
write_errors(sb *out, const err_t *e, bool collection)
{
    sb_puts(out, collection ? "[{\"statusCode\":" : "[{\"errorCode\":");
    sb_json_str(out, e->code);
    sb_puts(out, ",\"message\":");
    sb_json_str(out, e->msg);
    sb_puts(out, ",\"fields\":[");
    const char *p = e->fields;
    bool first = true;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (!first)
            sb_putc(out, ',');
        sb_json_strn(out, p, n);
        first = false;
        p += n + (p[n] ? 1 : 0);
    }
    sb_puts(out, "]}]");
}

/* {"id":"...","success":true,"errors":[]} */
static void
write_save_result(sb *out, const char *id, const err_t *e, int created, bool collection)
{
    sb_putc(out, '{');
    if (id && id[0]) {
        sb_puts(out, "\"id\":");
        sb_json_str(out, id);
        sb_putc(out, ',');
    }
    if (e == NULL) {
        sb_puts(out, "\"success\":true,\"errors\":[]");
    } else {
        sb_puts(out, "\"success\":false,\"errors\":");
        write_errors(out, e, collection);
    }
    if (created >= 0)
        sb_printf(out, ",\"created\":%s", created ? "true" : "false");
    sb_putc(out, '}');
}

/* ----- versions, resources, limits ---------------------------------------- */

void
rest_versions(http_req *req, http_resp *resp)
{
    static const char *const season[] = {"Winter", "Spring", "Summer"};
    (void)req;
    sb out = SB_INIT;
    sb_putc(&out, '[');
    for (int v = 31; v <= 66; v++) {
        int k = v - 62; /* 62.0 is Winter '25 */
        int kq = k >= 0 ? k / 3 : -((-k + 2) / 3);
        int idx = k - kq * 3;
        if (v > 31)
            sb_putc(&out, ',');
        sb_printf(&out,
                  "{\"label\":\"%s '%02d\",\"url\":\"/services/data/v%d.0\",\"version\":\"%d.0\"}",
                  season[idx], 25 + kq, v, v);
    }
    sb_putc(&out, ']');
    answer_json(resp, 200, &out);
}

void
rest_resources(http_req *req, http_resp *resp)
{
    static const char *const names[] = {"tooling",
                                        "metadata",
                                        "eclair",
                                        "folders",
                                        "prechatForms",
                                        "contact-tracing",
                                        "jsonxform",
                                        "chatter",
                                        "tabs",
                                        "appMenu",
                                        "quickActions",
                                        "queryAll",
                                        "commerce",
                                        "wave",
                                        "iot",
                                        "analytics",
                                        "search",
                                        "identity",
                                        "composite",
                                        "parameterizedSearch",
                                        "fingerprint",
                                        "theme",
                                        "nouns",
                                        "event",
                                        "serviceTemplates",
                                        "recent",
                                        "connect",
                                        "licensing",
                                        "limits",
                                        "process",
                                        "async-queries",
                                        "query",
                                        "match",
                                        "emailConnect",
                                        "compactLayouts",
                                        "knowledgeManagement",
                                        "sobjects",
                                        "actions",
                                        "support",
                                        "jobs"};
    lf_server *srv = ctx_of(req);
    const lf_session *s = req->auth;
    sb out = SB_INIT;
    sb_putc(&out, '{');
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (i)
            sb_putc(&out, ',');
        if (strcmp(names[i], "identity") == 0) {
            store_lock(srv->st);
            sb_printf(&out, "\"identity\":\"%s/id/%s/%s\"", srv->base_url, store_org_id(srv->st),
                      s->user_id);
            store_unlock(srv->st);
        } else {
            sb_printf(&out, "\"%s\":\"/services/data/%s/%s\"", names[i], req->seg[0], names[i]);
        }
    }
    sb_putc(&out, '}');
    answer_json(resp, 200, &out);
}

void
rest_limits(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    long long used = atomic_load(&srv->api_used);
    long long max = atomic_load(&srv->api_limit);
    static const struct {
        const char *name;
        long long max;
    } fixed[] = {
        {"DailyBulkApiBatches", 15000},
        {"DailyBulkV2QueryJobs", 10000},
        {"DailyBulkV2QueryFileStorageMB", 976562},
        {"DailyDurableStreamingApiEvents", 1000000},
        {"DailyStreamingApiEvents", 1000000},
        {"DurableStreamingApiConcurrentClients", 2000},
        {"StreamingApiConcurrentClients", 2000},
        {"DataStorageMB", 1024},
        {"FileStorageMB", 1024},
        {"HourlyTimeBasedWorkflow", 1000},
    };
    sb out = SB_INIT;
    sb_printf(&out, "{\"DailyApiRequests\":{\"Max\":%lld,\"Remaining\":%lld}", max,
              max - used < 0 ? 0 : max - used);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        sb_printf(&out, ",\"%s\":{\"Max\":%lld,\"Remaining\":%lld}", fixed[i].name, fixed[i].max,
                  fixed[i].max);
    sb_putc(&out, '}');
    answer_json(resp, 200, &out);
}

/* ----- describe ---------------------------------------------------------- */

void
rest_describe_global(http_req *req, http_resp *resp)
{
    store *st = ctx_of(req)->st;
    sb out = SB_INIT;
    store_lock(st);
    describe_global(&out, store_schema(st), req->seg[0]);
    store_unlock(st);
    answer_json(resp, 200, &out);
}

/* One object's basic information (sobjects/X) or full describe (sobjects/X/describe). */
static void
describe_one(http_req *req, http_resp *resp, bool full)
{
    store *st = ctx_of(req)->st;
    sb out = SB_INIT;
    store_lock(st);
    const lf_object *o = schema_object(store_schema(st), req->seg[1]);
    if (o && full)
        describe_object(&out, store_schema(st), o, req->seg[0]);
    else if (o)
        describe_object_basic(&out, o, req->seg[0]);
    store_unlock(st);
    if (o == NULL) {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    answer_json(resp, 200, &out);
}

void
rest_sobject_info(http_req *req, http_resp *resp)
{
    describe_one(req, resp, false);
}

void
rest_describe(http_req *req, http_resp *resp)
{
    describe_one(req, resp, true);
}

/* ----- records ----------------------------------------------------------- */

static void
do_create(http_req *req, http_resp *resp, const char *obj)
{
    if (!object_known(req, resp, obj))
        return;
    json_t *rec = http_json_body(req, resp);
    if (rec == NULL)
        return;
    if (!json_is_object(rec)) {
        json_decref(rec);
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "Cannot deserialize instance of %s from a non-object value", obj);
        return;
    }
    char origin[160], id[19];
    lf_actor a = actor_of(req, origin, sizeof origin);
    err_t e;
    int rc = store_create(ctx_of(req)->st, &a, obj, rec, id, &e);
    json_decref(rec);
    if (rc != 0) {
        http_error(resp, &e);
        return;
    }
    sb out = SB_INIT;
    write_save_result(&out, id, NULL, -1, false);
    char loc[256];
    snprintf(loc, sizeof loc, "/services/data/%s/sobjects/%s/%s", req->seg[0], obj, id);
    http_set_header(resp, "Location", loc);
    answer_json(resp, 201, &out);
}

void
rest_create(http_req *req, http_resp *resp)
{
    do_create(req, resp, req->seg[1]);
}

void
rest_record(http_req *req, http_resp *resp)
{
    const char *obj = req->seg[1], *id = req->seg[2];
    lf_server *srv = ctx_of(req);
    if (strcmp(req->method, "POST") == 0) {
        if (strcmp(id, "Id") == 0) { /* POST /sobjects/X/Id: create */
            do_create(req, resp, obj);
            return;
        }
        http_errorf(resp, 405, "METHOD_NOT_ALLOWED",
                    "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE");
        return;
    }
    if (!object_known(req, resp, obj))
        return;
    err_t e;
    if (strcmp(req->method, "GET") == 0) {
        sb out = SB_INIT;
        int rc = store_get(srv->st, obj, id, http_query(req, "fields"), ver_of(req), &out, &e);
        answer_json_or_error(resp, rc, &out, &e);
        return;
    }
    char origin[160];
    lf_actor a = actor_of(req, origin, sizeof origin);
    int rc;
    if (strcmp(req->method, "PATCH") == 0) {
        json_t *rec = http_json_body(req, resp);
        if (rec == NULL)
            return;
        if (!json_is_object(rec)) {
            json_decref(rec);
            http_errorf(resp, 400, "JSON_PARSER_ERROR", "The request body must be a JSON object.");
            return;
        }
        rc = store_update(srv->st, &a, obj, id, rec, &e);
        json_decref(rec);
    } else {
        rc = store_delete(srv->st, &a, obj, id, &e);
    }
    if (rc != 0) {
        http_error(resp, &e);
        return;
    }
    resp->status = 204;
}

/* Escape a value for a SOQL string literal. */
static void
soql_quote(sb *out, const char *v)
{
    sb_putc(out, '\'');
    for (const char *p = v; *p; p++) {
        if (*p == '\'' || *p == '\\')
            sb_putc(out, '\\');
        sb_putc(out, *p);
    }
    sb_putc(out, '\'');
}

/* The Id of the one live record whose ext field equals value; 300 if several. */
static int
find_by_external_id(http_req *req, const char *obj, const char *field, const char *value,
                    char id[19], err_t *e)
{
    store *st = ctx_of(req)->st;
    sb q = SB_INIT;
    sb_printf(&q, "SELECT Id FROM %s WHERE %s = ", obj, field);
    soql_quote(&q, value);
    store_lock(st);
    soql_plan *plan = NULL;
    int rc = soql_compile(store_schema(st), sb_str(&q), false, util_now_ms(), &plan, e);
    sb_free(&q);
    if (rc != 0) {
        store_unlock(st);
        return err_set(e, 404, "NOT_FOUND", "The requested resource does not exist");
    }
    sqlite3_stmt *stmt = NULL;
    int found = 0;
    sb matches = SB_INIT;
    sb_putc(&matches, '[');
    if (sqlite3_prepare_v2(store_db(st), plan->sql, -1, &stmt, NULL) == SQLITE_OK) {
        (void)soql_bind(stmt, plan);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            const char *rid = (const char *)sqlite3_column_text(stmt, 0);
            if (found++ == 0)
                snprintf(id, 19, "%s", rid);
            if (found > 1)
                sb_putc(&matches, ',');
            sb_printf(&matches, "\"/services/data/%s/sobjects/%s/%s\"", req->seg[0],
                      plan->object->name, rid);
        }
        sqlite3_finalize(stmt);
    }
    soql_plan_free(plan);
    store_unlock(st);
    sb_putc(&matches, ']');
    if (found == 0) {
        sb_free(&matches);
        return err_set(e, 404, "NOT_FOUND", "The requested resource does not exist");
    }
    if (found > 1) {
        snprintf(e->msg, sizeof e->msg, "%s", sb_str(&matches));
        e->http = 300;
        snprintf(e->code, sizeof e->code, "MULTIPLE_CHOICES");
        e->fields[0] = '\0';
        sb_free(&matches);
        return -1;
    }
    sb_free(&matches);
    return 0;
}

/* A failed find_by_external_id(): 300 with the matching records' list, or the error. */
static void
answer_lookup_error(http_resp *resp, const err_t *e)
{
    if (e->http == 300) {
        resp->status = 300;
        sb_clear(&resp->body);
        sb_puts(&resp->body, e->msg);
    } else {
        http_error(resp, e);
    }
}

void
rest_by_external_id(http_req *req, http_resp *resp)
{
    const char *obj = req->seg[1], *field = req->seg[2];
    char *value = xstrdup(req->seg[3]);
    lf_server *srv = ctx_of(req);
    err_t e;
    if (!object_known(req, resp, obj))
        goto out;
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "DELETE") == 0) {
        char id[19];
        if (find_by_external_id(req, obj, field, value, id, &e) != 0) {
            answer_lookup_error(resp, &e);
            goto out;
        }
        if (strcmp(req->method, "GET") == 0) {
            sb body = SB_INIT;
            int rc = store_get(srv->st, obj, id, http_query(req, "fields"), ver_of(req), &body, &e);
            answer_json_or_error(resp, rc, &body, &e);
        } else {
            char origin[160];
            lf_actor a = actor_of(req, origin, sizeof origin);
            if (store_delete(srv->st, &a, obj, id, &e) != 0)
                http_error(resp, &e);
            else
                resp->status = 204;
        }
        goto out;
    }
    /* PATCH (or POST) = upsert; with ?updateOnly=true (API 61.0) never an insert */
    const char *update_only = http_query(req, "updateOnly");
    if (update_only && strcasecmp(update_only, "true") == 0 && strcasecmp(field, "Id") != 0) {
        char id[19];
        if (find_by_external_id(req, obj, field, value, id, &e) != 0) {
            answer_lookup_error(resp, &e);
            goto out;
        }
    }
    json_t *rec = http_json_body(req, resp);
    if (rec == NULL)
        goto out;
    if (!json_is_object(rec)) {
        json_decref(rec);
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "The request body must be a JSON object.");
        goto out;
    }
    char origin[160], id[19];
    lf_actor a = actor_of(req, origin, sizeof origin);
    bool created = false;
    sb matches = SB_INIT;
    int rc = store_upsert(srv->st, &a, obj, field, value, rec, ver_of(req), id, &created, &matches,
                          &e);
    json_decref(rec);
    if (rc != 0) {
        if (e.http == 300) {
            answer_json(resp, 300, &matches);
        } else {
            http_error(resp, &e);
        }
        sb_free(&matches);
        goto out;
    }
    sb_free(&matches);
    if (!created && ver_num(req) < 46.0) {
        resp->status = 204;
        goto out;
    }
    sb body = SB_INIT;
    write_save_result(&body, id, NULL, created, false);
    answer_json(resp, created ? 201 : 200, &body);
out:
    free(value);
}

/* ----- replication -------------------------------------------------------- */

static int
parse_window(http_req *req, http_resp *resp, int64_t *start, int64_t *end)
{
    const char *s = http_query(req, "start"), *t = http_query(req, "end");
    if (s == NULL || t == NULL) {
        http_errorf(resp, 400, "MISSING_ARGUMENT", "Both start and end must be specified");
        return -1;
    }
    /* "+00:00" arrives as " 00:00" when a client did not encode the '+'. */
    char sbuf[64], tbuf[64];
    snprintf(sbuf, sizeof sbuf, "%s", s);
    snprintf(tbuf, sizeof tbuf, "%s", t);
    for (char *p = sbuf; *p; p++)
        if (*p == ' ')
            *p = '+';
    for (char *p = tbuf; *p; p++)
        if (*p == ' ')
            *p = '+';
    if (util_parse_datetime(sbuf, start) != 0 || util_parse_datetime(tbuf, end) != 0) {
        http_errorf(resp, 400, "INVALID_REPLICATION_DATE",
                    "start and end must be datetimes such as 2024-01-02T03:04:05+00:00");
        return -1;
    }
    /* Salesforce truncates both to the minute. */
    *start -= ((*start % 60000) + 60000) % 60000;
    *end -= ((*end % 60000) + 60000) % 60000;
    if (*start >= *end) {
        http_errorf(resp, 400, "INVALID_REPLICATION_DATE", "start must be before end");
        return -1;
    }
    return 0;
}

static void
replication(http_req *req, http_resp *resp, bool deleted)
{
    int64_t start, end;
    if (!object_known(req, resp, req->seg[1]) || parse_window(req, resp, &start, &end) != 0)
        return;
    int64_t now = util_now_ms();
    int64_t max_back = (deleted ? 15LL : 30LL) * 86400 * 1000;
    if (start < now - max_back) {
        http_errorf(resp, 400, "INVALID_REPLICATION_DATE",
                    "startDate cannot be more than %d days ago", deleted ? 15 : 30);
        return;
    }
    if (end > now)
        end = now - now % 60000;
    if (start >= end)
        start = end - 60000;
    sb out = SB_INIT;
    err_t e;
    int rc = deleted ? store_deleted(ctx_of(req)->st, req->seg[1], start, end, &out, &e)
                     : store_updated(ctx_of(req)->st, req->seg[1], start, end, &out, &e);
    answer_json_or_error(resp, rc, &out, &e);
}

void
rest_updated(http_req *req, http_resp *resp)
{
    replication(req, resp, false);
}

void
rest_deleted(http_req *req, http_resp *resp)
{
    replication(req, resp, true);
}

/* ----- query ------------------------------------------------------------- */

static int
batch_size(http_req *req)
{
    const char *opt = http_header(req, "Sforce-Query-Options");
    const char *b = opt ? strstr(opt, "batchSize=") : NULL;
    if (b == NULL)
        return 2000;
    long n = strtol(b + 10, NULL, 10);
    return n < 200 ? 200 : n > 2000 ? 2000 : (int)n;
}

static void
run_query(http_req *req, http_resp *resp, bool all_rows)
{
    const char *q = http_query(req, "q");
    if (q == NULL || *q == '\0') {
        http_errorf(resp, 400, "MALFORMED_QUERY", "A query string has to be specified");
        return;
    }
    sb out = SB_INIT;
    err_t e;
    int rc;
    const char *columns = http_query(req, "columns");
    if (columns && strcasecmp(columns, "true") == 0) /* the Salesforce CLI's `sf data query` */
        rc = query_columns(ctx_of(req)->st, q, all_rows, &out, &e);
    else
        rc = query_run(ctx_of(req)->cursors, q, all_rows, batch_size(req), ver_of(req), &out, &e);
    answer_json_or_error(resp, rc, &out, &e);
}

void
rest_query(http_req *req, http_resp *resp)
{
    if (http_query(req, "explain")) {
        http_errorf(resp, 400, "NOT_SUPPORTED", "explain is not supported by localforce");
        return;
    }
    run_query(req, resp, false);
}

void
rest_query_all(http_req *req, http_resp *resp)
{
    run_query(req, resp, true);
}

void
rest_query_more(http_req *req, http_resp *resp)
{
    sb out = SB_INIT;
    err_t e;
    int rc = query_more(ctx_of(req)->cursors, req->seg[1], ver_of(req), &out, &e);
    answer_json_or_error(resp, rc, &out, &e);
}

/* ----- collections ------------------------------------------------------- */

typedef enum { COLL_CREATE, COLL_UPDATE, COLL_UPSERT, COLL_DELETE } coll_op;

/* One record of a collection, or one id to delete. */
static int
coll_one(http_req *req, coll_op op, json_t *rec, const char *del_id, const char *ext_obj,
         const char *ext_field, char id[19], int *created, err_t *e)
{
    lf_server *srv = ctx_of(req);
    char origin[160];
    lf_actor a = actor_of(req, origin, sizeof origin);
    id[0] = '\0';
    *created = -1;
    if (op == COLL_DELETE) {
        char norm[19];
        if (sfid_normalize(del_id, norm) != 0) {
            err_set(e, 400, "MALFORMED_ID", "invalid record id: %s", del_id);
            return err_fields(e, "Id");
        }
        snprintf(id, 19, "%s", norm);
        const lf_object *o = store_object_for_id(srv->st, norm);
        if (o == NULL)
            return err_set(e, 404, "ENTITY_IS_DELETED", "entity is deleted");
        return store_delete(srv->st, &a, o->name, norm, e);
    }
    if (!json_is_object(rec))
        return err_set(e, 400, "JSON_PARSER_ERROR", "each record must be a JSON object");
    json_t *attrs = json_object_get(rec, "attributes");
    const char *type = json_string_value(json_object_get(attrs, "type"));
    if (op == COLL_UPSERT) {
        if (type && strcasecmp(type, ext_obj) != 0)
            return err_set(e, 400, "INVALID_FIELD", "Upsert requires all records to be of type %s",
                           ext_obj);
        type = ext_obj;
    }
    if (type == NULL)
        return err_set(e, 400, "INVALID_TYPE", "No SObject Type defined in JSON");
    store_lock(srv->st);
    const lf_object *o = schema_object(store_schema(srv->st), type);
    store_unlock(srv->st);
    if (o == NULL)
        return err_set(e, 400, "INVALID_TYPE", "sObject type '%s' is not supported.", type);
    json_t *copy = json_deep_copy(rec);
    json_object_del(copy, "attributes");
    json_t *jid = json_object_get(copy, "id");
    if (jid == NULL)
        jid = json_object_get(copy, "Id");
    int rc;
    if (op == COLL_CREATE) {
        if (jid && !json_is_null(jid)) {
            rc = err_set(e, 400, "INVALID_FIELD", "cannot specify Id in an insert call");
            err_fields(e, "Id");
        } else {
            json_object_del(copy, "id");
            json_object_del(copy, "Id");
            rc = store_create(srv->st, &a, o->name, copy, id, e);
        }
    } else if (op == COLL_UPDATE) {
        const char *s = json_string_value(jid);
        char norm[19];
        if (s == NULL) {
            rc = err_set(e, 400, "MISSING_ARGUMENT", "Id not specified in an update call");
            err_fields(e, "Id");
        } else if (sfid_normalize(s, norm) != 0) {
            rc = err_set(e, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %s", o->name,
                         s);
            err_fields(e, "Id");
        } else {
            snprintf(id, 19, "%s", norm);
            json_object_del(copy, "id");
            json_object_del(copy, "Id");
            rc = store_update(srv->st, &a, o->name, norm, copy, e);
        }
    } else {
        json_t *jv = NULL;
        const char *k;
        json_t *v;
        json_object_foreach(copy, k, v) {
            if (strcasecmp(k, ext_field) == 0) {
                jv = v;
                break;
            }
        }
        char numbuf[64];
        const char *value = json_string_value(jv);
        if (value == NULL && json_is_integer(jv)) {
            snprintf(numbuf, sizeof numbuf, "%lld", (long long)json_integer_value(jv));
            value = numbuf;
        }
        if (value == NULL) {
            rc = err_set(e, 400, "MISSING_ARGUMENT", "%s not specified", ext_field);
            err_fields(e, ext_field);
        } else {
            char *val = xstrdup(value);
            json_object_del(copy, k);
            bool was_created = false;
            sb matches = SB_INIT;
            rc = store_upsert(srv->st, &a, o->name, ext_field, val, copy, ver_of(req), id,
                              &was_created, &matches, e);
            if (rc != 0 && e->http == 300)
                snprintf(e->msg, sizeof e->msg, "Multiple records found: %s", sb_str(&matches));
            sb_free(&matches);
            free(val);
            if (rc == 0)
                *created = was_created;
        }
    }
    json_decref(copy);
    return rc;
}

static void
run_collection(http_req *req, http_resp *resp, coll_op op, const char *ext_obj,
               const char *ext_field)
{
    lf_server *srv = ctx_of(req);
    json_t *body = NULL, *records = NULL;
    bool all_or_none = false;
    char *ids_copy = NULL;
    const char *ids[COLLECTION_MAX + 1];
    size_t n = 0;

    if (op == COLL_DELETE) {
        const char *idlist = http_query(req, "ids");
        const char *aon = http_query(req, "allOrNone");
        all_or_none = aon && strcasecmp(aon, "true") == 0;
        if (idlist == NULL || *idlist == '\0') {
            http_errorf(resp, 400, "MISSING_ARGUMENT", "ids must be specified");
            return;
        }
        ids_copy = xstrdup(idlist);
        for (char *save, *t = strtok_r(ids_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == COLLECTION_MAX) {
                free(ids_copy);
                http_errorf(resp, 400, "EXCEEDED_ID_LIMIT",
                            "record limit reached. cannot submit more than %d records into this "
                            "call",
                            COLLECTION_MAX);
                return;
            }
            ids[n++] = t;
        }
    } else {
        if ((body = http_json_body(req, resp)) == NULL)
            return;
        records = json_object_get(body, "records");
        if (!json_is_object(body) || !json_is_array(records)) {
            json_decref(body);
            http_errorf(resp, 400, "JSON_PARSER_ERROR",
                        "The request body must be an object with a \"records\" array.");
            return;
        }
        json_t *aon = json_object_get(body, "allOrNone");
        all_or_none = json_is_true(aon);
        n = json_array_size(records);
        if (n > COLLECTION_MAX) {
            json_decref(body);
            http_errorf(resp, 400, "EXCEEDED_ID_LIMIT",
                        "record limit reached. cannot submit more than %d records into this call",
                        COLLECTION_MAX);
            return;
        }
    }

    char(*out_ids)[19] = xcalloc(n ? n : 1, sizeof *out_ids);
    err_t *errs = xcalloc(n ? n : 1, sizeof *errs);
    int *ok = xcalloc(n ? n : 1, sizeof *ok);
    int *created = xcalloc(n ? n : 1, sizeof *created);
    bool any_failed = false;
    err_t te;

    store_lock(srv->st);
    bool in_tx = store_begin(srv->st, &te) == 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] = coll_one(req, op, records ? json_array_get(records, i) : NULL,
                         op == COLL_DELETE ? ids[i] : NULL, ext_obj, ext_field, out_ids[i],
                         &created[i], &errs[i]) == 0;
        if (!ok[i]) {
            any_failed = true;
            if (all_or_none)
                break;
        }
    }
    if (in_tx) {
        if (all_or_none && any_failed)
            store_rollback(srv->st);
        else if (store_commit(srv->st, &te) != 0)
            store_rollback(srv->st);
    }
    store_unlock(srv->st);

    sb out = SB_INIT;
    sb_putc(&out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(&out, ',');
        if (all_or_none && any_failed) {
            bool failed_here = !ok[i] && errs[i].code[0];
            err_t rb;
            if (!failed_here) {
                err_set(&rb, 400, "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records were valid and the request "
                        "was using AllOrNone header");
            }
            write_save_result(&out, NULL, failed_here ? &errs[i] : &rb, op == COLL_UPSERT ? -1 : -1,
                              true);
        } else {
            write_save_result(&out, out_ids[i], ok[i] ? NULL : &errs[i],
                              op == COLL_UPSERT && ok[i] ? created[i] : -1, true);
        }
    }
    sb_putc(&out, ']');
    answer_json(resp, 200, &out);
    free(out_ids);
    free(errs);
    free(ok);
    free(created);
    free(ids_copy);
    json_decref(body);
}

void
rest_collection(http_req *req, http_resp *resp)
{
    coll_op op = strcmp(req->method, "POST") == 0    ? COLL_CREATE
                 : strcmp(req->method, "PATCH") == 0 ? COLL_UPDATE
                                                     : COLL_DELETE;
    run_collection(req, resp, op, NULL, NULL);
}

void
rest_collection_upsert(http_req *req, http_resp *resp)
{
    if (!object_known(req, resp, req->seg[1]))
        return;
    run_collection(req, resp, COLL_UPSERT, req->seg[1], req->seg[2]);
}

void
rest_collection_retrieve(http_req *req, http_resp *resp)
{
    const char *obj = req->seg[1];
    if (!object_known(req, resp, obj))
        return;
    json_t *body = NULL;
    sb ids = SB_INIT, fields = SB_INIT;
    if (strcmp(req->method, "POST") == 0) {
        if ((body = http_json_body(req, resp)) == NULL)
            return;
        json_t *jids = json_object_get(body, "ids"), *jf = json_object_get(body, "fields");
        if (!json_is_array(jids) || !json_is_array(jf)) {
            json_decref(body);
            http_errorf(resp, 400, "JSON_PARSER_ERROR",
                        "The request body must have \"ids\" and \"fields\" arrays.");
            return;
        }
        size_t i;
        json_t *v;
        json_array_foreach(jids, i, v) {
            if (json_is_string(v))
                sb_printf(&ids, "%s%s", i ? "," : "", json_string_value(v));
        }
        json_array_foreach(jf, i, v) {
            if (json_is_string(v))
                sb_printf(&fields, "%s%s", i ? "," : "", json_string_value(v));
        }
        json_decref(body);
    } else {
        const char *qi = http_query(req, "ids"), *qf = http_query(req, "fields");
        if (qi == NULL || qf == NULL) {
            http_errorf(resp, 400, "MISSING_ARGUMENT", "ids and fields must be specified");
            return;
        }
        sb_puts(&ids, qi);
        sb_puts(&fields, qf);
    }
    sb out = SB_INIT;
    sb_putc(&out, '[');
    size_t count = 0;
    char *list = xstrdup(sb_str(&ids));
    for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (++count > 2000) {
            break;
        }
        if (count > 1)
            sb_putc(&out, ',');
        sb rec = SB_INIT;
        err_t e;
        if (store_get(ctx_of(req)->st, obj, t, sb_str(&fields), ver_of(req), &rec, &e) == 0)
            sb_append(&out, rec.buf, rec.len);
        else if (strcmp(e.code, "INVALID_FIELD") == 0) {
            sb_free(&rec);
            sb_free(&out);
            free(list);
            sb_free(&ids);
            sb_free(&fields);
            http_error(resp, &e);
            return;
        } else
            sb_puts(&out, "null");
        sb_free(&rec);
    }
    free(list);
    sb_putc(&out, ']');
    sb_free(&ids);
    sb_free(&fields);
    answer_json(resp, 200, &out);
}

/* ----- composite tree ---------------------------------------------------- */

/* POST composite/tree/{Obj}: records with their children nested under child
 * relationship names ({"records":[...]} values), up to 200 in all and 5
 * levels, inserted all or none, level by level (every top-level record, then
 * their children, ...), which is the order of Salesforce's results. */
#define TREE_MAX   200
#define TREE_DEPTH 5

typedef struct tree_node {
    json_t *rec;              /* the record as sent (borrowed from the body) */
    const lf_object *o;       /* its object */
    const char *ref;          /* attributes.referenceId */
    const char *parent_field; /* the lookup to the parent, or NULL at the top */
    int parent;               /* index of the parent node, or -1 */
    int depth;                /* 1 at the top */
    char id[19];              /* once inserted */
} tree_node;

typedef struct tree {
    tree_node nodes[TREE_MAX];
    size_t n;
    int bad; /* the node an error concerns, or -1 */
    err_t e;
} tree;

/* The reference field of child object c pointing at o whose child relationship
 * name (as describe names it) is rel, or NULL. */
static const lf_field *
tree_child_field(const lf_schema *s, const lf_object *o, const char *rel, const lf_object **c)
{
    for (size_t i = 0; i < s->nobjects; i++) {
        const lf_object *child = s->objects[i];
        size_t len = strlen(child->name);
        bool custom = len > 3 && strcmp(child->name + len - 3, "__c") == 0;
        char name[160];
        snprintf(name, sizeof name, "%.*s%s", (int)(custom ? len - 3 : len), child->name,
                 custom ? "s__r" : "s");
        if (strcasecmp(name, rel) != 0)
            continue;
        for (size_t j = 0; j < child->nfields; j++) {
            const lf_field *f = child->fields[j];
            if (f->type == FT_REFERENCE && f->reference_to && !f->system &&
                strcasecmp(f->reference_to, o->name) == 0) {
                *c = child;
                return f;
            }
        }
    }
    return NULL;
}

/* Append the records of array recs (of object o, children of node parent
 * through parent_field) to t, checking their shape. */
static int
tree_add(tree *t, json_t *recs, const lf_object *o, int parent, const char *parent_field)
{
    int depth = parent < 0 ? 1 : t->nodes[parent].depth + 1;
    if (!json_is_array(recs))
        return err_set(&t->e, 400, "JSON_PARSER_ERROR", "records must be a JSON array");
    if (depth > TREE_DEPTH)
        return err_set(&t->e, 400, "INVALID_INPUT", "Exceeded max depth of %d", TREE_DEPTH);
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        if (t->n == TREE_MAX)
            return err_set(&t->e, 400, "INVALID_INPUT",
                           "Exceeded max limit of %d sObjects in a request", TREE_MAX);
        json_t *attrs = json_object_get(rec, "attributes");
        const char *type = json_string_value(json_object_get(attrs, "type"));
        const char *ref = json_string_value(json_object_get(attrs, "referenceId"));
        if (!json_is_object(rec) || type == NULL)
            return err_set(&t->e, 400, "INVALID_INPUT", "No type specified for the sObject");
        if (ref == NULL || ref[0] == '\0')
            return err_set(&t->e, 400, "INVALID_INPUT", "No referenceId specified for the sObject");
        for (size_t k = 0; k < t->n; k++) {
            if (strcmp(t->nodes[k].ref, ref) == 0)
                return err_set(&t->e, 400, "INVALID_INPUT",
                               "Duplicate ReferenceId provided in the request: %s", ref);
        }
        tree_node *nd = &t->nodes[t->n++];
        *nd = (tree_node){.rec = rec,
                          .o = o,
                          .ref = ref,
                          .parent = parent,
                          .depth = depth,
                          .parent_field = parent_field};
        if (strcasecmp(type, o->name) != 0) {
            t->bad = (int)(t->n - 1);
            return err_set(&t->e, 400, "INVALID_TYPE", "sObject type '%s' is not '%s'", type,
                           o->name);
        }
    }
    return 0;
}

/* Breadth first: the top level, then each node's children in turn. */
static int
tree_collect(tree *t, const lf_schema *s, json_t *records, const lf_object *top)
{
    if (tree_add(t, records, top, -1, NULL) != 0)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(t->nodes[i].rec, k, v) {
            json_t *kids = json_object_get(v, "records");
            if (!json_is_object(v) || kids == NULL)
                continue;
            const lf_object *child = NULL;
            const lf_field *f = tree_child_field(s, t->nodes[i].o, k, &child);
            if (f == NULL) {
                t->bad = (int)i;
                return err_set(&t->e, 400, "INVALID_FIELD",
                               "No such column '%s' on entity '%s'. If you are attempting to use "
                               "a custom field, be sure to append the '__c' after the custom "
                               "field name. Please reference your WSDL or the describe call for "
                               "the appropriate names.",
                               k, t->nodes[i].o->name);
            }
            if (tree_add(t, kids, child, (int)i, f->name) != 0)
                return -1;
        }
    }
    return 0;
}

/* Insert the nodes in order; stops at the first failure (t->bad, t->e). */
static int
tree_insert(http_req *req, tree *t)
{
    char origin[160];
    lf_actor a = actor_of(req, origin, sizeof origin);
    for (size_t i = 0; i < t->n; i++) {
        tree_node *nd = &t->nodes[i];
        json_t *copy = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(nd->rec, k, v) {
            if (strcmp(k, "attributes") != 0 &&
                !(json_is_object(v) && json_object_get(v, "records")))
                json_object_set(copy, k, v);
        }
        if (nd->parent_field)
            json_object_set_new(copy, nd->parent_field, json_string(t->nodes[nd->parent].id));
        int rc = store_create(ctx_of(req)->st, &a, nd->o->name, copy, nd->id, &t->e);
        json_decref(copy);
        if (rc != 0) {
            t->bad = (int)i;
            return -1;
        }
    }
    return 0;
}

static void
tree_answer(http_resp *resp, const tree *t, int rc)
{
    sb out = SB_INIT;
    sb_printf(&out, "{\"hasErrors\":%s,\"results\":[", rc ? "true" : "false");
    if (rc != 0) {
        sb_puts(&out, "{\"referenceId\":");
        if (t->bad >= 0)
            sb_json_str(&out, t->nodes[t->bad].ref);
        else
            sb_puts(&out, "null");
        sb_puts(&out, ",\"errors\":");
        write_errors(&out, &t->e, true);
        sb_putc(&out, '}');
    }
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        sb_puts(&out, i ? ",{\"referenceId\":" : "{\"referenceId\":");
        sb_json_str(&out, t->nodes[i].ref);
        sb_puts(&out, ",\"id\":");
        sb_json_str(&out, t->nodes[i].id);
        sb_putc(&out, '}');
    }
    sb_puts(&out, "]}");
    answer_json(resp, rc ? 400 : 201, &out);
}

void
rest_composite_tree(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    const char *obj = req->seg[1];
    if (!object_known(req, resp, obj))
        return;
    json_t *body = http_json_body(req, resp);
    if (body == NULL)
        return;
    json_t *records = json_object_get(body, "records");
    if (!json_is_object(body) || !json_is_array(records)) {
        json_decref(body);
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "The request body must be an object with a \"records\" array.");
        return;
    }
    tree *t = xcalloc(1, sizeof *t);
    t->bad = -1;
    err_t te;
    store_lock(srv->st);
    const lf_object *top = schema_object(store_schema(srv->st), obj);
    int rc = tree_collect(t, store_schema(srv->st), records, top);
    if (rc == 0 && store_begin(srv->st, &te) == 0) {
        rc = tree_insert(req, t);
        if (rc == 0 && store_commit(srv->st, &t->e) != 0)
            rc = -1;
        if (rc != 0)
            store_rollback(srv->st);
    } else if (rc == 0) {
        t->e = te;
        rc = -1;
    }
    store_unlock(srv->st);
    tree_answer(resp, t, rc);
    free(t);
    json_decref(body);
}
