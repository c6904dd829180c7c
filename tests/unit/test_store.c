/*
 * Unit tests for the store: the org file, record semantics and errors,
 * replication, persistence, schema changes, and a speed measurement.
 *
 * The fixture tests/unit/fixtures/store-org.json is found under the source
 * directory: argv[1] (a directory, or the fixture file itself), else the
 * environment variable LF_SRCDIR, else "." (the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema.h"
#include "sfid.h"
#include "store.h"
#include "util.h"

static char fixture[1024];
static store *st;
static lf_actor actor;
static char demo_id[19];

/* ---- helpers ------------------------------------------------------------ */

static json_t *
J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    if (j == NULL)
        fail_msg("bad test JSON (%s): %s", je.text, text);
    return j;
}

static int
create(const char *obj, const char *rec, char id[19], err_t *e)
{
    json_t *r = J(rec);
    char tmp[19];
    err_clear(e);
    int rc = store_create(st, &actor, obj, r, id ? id : tmp, e);
    json_decref(r);
    return rc;
}

static int
update(const char *obj, const char *id, const char *rec, err_t *e)
{
    json_t *r = J(rec);
    err_clear(e);
    int rc = store_update(st, &actor, obj, id, r, e);
    json_decref(r);
    return rc;
}

/* The record as JSON (NULL on error). */
static json_t *
get(const char *obj, const char *id, const char *fields, err_t *e)
{
    sb out = SB_INIT;
    err_clear(e);
    if (store_get(st, obj, id, fields, "59.0", &out, e)) {
        sb_free(&out);
        return NULL;
    }
    json_t *j = J(sb_str(&out));
    sb_free(&out);
    return j;
}

static const char *
gs(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

/* First column of the first row of sql (one optional text parameter), or "" */
static char *
sql1(const char *sql, const char *param)
{
    sqlite3_stmt *q;
    store_lock(st);
    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL), SQLITE_OK);
    if (param)
        sqlite3_bind_text(q, 1, param, -1, SQLITE_TRANSIENT);
    char *res = xstrdup("");
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
        free(res);
        res = xstrdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    store_unlock(st);
    return res;
}

static int64_t
sql_int(const char *sql, const char *param)
{
    char *s = sql1(sql, param);
    int64_t v = strtoll(s, NULL, 10);
    free(s);
    return v;
}

static void
sql_exec(const char *sql)
{
    store_lock(st);
    assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
    store_unlock(st);
}

#define assert_err(rc, e, status, ecode, message)                  \
    do {                                                           \
        assert_int_equal((rc), -1);                                \
        assert_int_equal((e).http, (status));                      \
        assert_string_equal((e).code, (ecode));                    \
        if ((message) != NULL)                                     \
            assert_string_equal((e).msg, (const char *)(message)); \
    } while (0)

static int
open_org(void **state)
{
    err_t e;
    (void)state;
    if (store_open(":memory:", &st, &e) || store_load_org_file(st, fixture, &e)) {
        fprintf(stderr, "setup: %s: %s\n", e.code, e.msg);
        return -1;
    }
    const lf_user *u = store_user_by_name(st, "demo@localforce.test");
    if (u == NULL)
        return -1;
    memcpy(demo_id, u->id, 19);
    actor.user_id = demo_id;
    actor.origin = NULL;
    return 0;
}

static int
close_org(void **state)
{
    (void)state;
    store_close(st);
    st = NULL;
    return 0;
}

static char *
account_id(const char *ext)
{
    return sql1("SELECT \"Id\" FROM \"Account\" WHERE \"External_Id__c\" = ?1", ext);
}

/* ---- org file ------------------------------------------------------------ */

static void
test_fresh_store(void **state)
{
    store *s;
    err_t e;
    (void)state;
    assert_int_equal(store_open(":memory:", &s, &e), 0);
    assert_int_equal(strlen(store_org_id(s)), 18);
    assert_true(sfid_has_prefix(store_org_id(s), "00D"));
    const lf_object *u = schema_object(store_schema(s), "user");
    assert_non_null(u);
    assert_string_equal(u->key_prefix, "005");
    assert_non_null(object_field(u, "Username"));
    assert_non_null(object_field(u, "IsActive"));
    assert_false(object_field(u, "Name")->createable); /* First Last */
    assert_int_equal(store_session_ttl_s(s), 7200);
    assert_int_equal(store_daily_api_limit(s), 100000);
    assert_int_equal(store_count(s, "User", true), 0);
    store_close(s);
}

static void
test_org_loaded(void **state)
{
    (void)state;
    assert_string_equal(store_org_name(st), "Store Test Org");
    assert_string_equal(store_org_id(st), "00D000000000001EAA");
    assert_int_equal(store_session_ttl_s(st), 3600);
    assert_int_equal(store_daily_api_limit(st), 5000);
    const lf_app *a = store_app(st, "test-client");
    assert_non_null(a);
    assert_string_equal(a->client_secret, "test-secret");
    assert_string_equal(a->run_as, "demo@localforce.test");
    assert_null(store_app(st, "nope"));
    const lf_user *u = store_user_by_name(st, "DEMO@localforce.test");
    assert_non_null(u);
    assert_string_equal(u->password, "localforce");
    assert_string_equal(u->first_name, "Demo");
    assert_true(u->active);
    assert_true(sfid_has_prefix(u->id, "005"));
    assert_ptr_equal(store_user_by_id(st, u->id), u);
    char id15[16];
    memcpy(id15, u->id, 15);
    id15[15] = '\0';
    assert_ptr_equal(store_user_by_id(st, id15), u);
    const lf_user *o = store_user_by_name(st, "other@localforce.test");
    assert_non_null(o);
    assert_string_equal(o->email, "other@localforce.test");
    /* User records: Name computed, creator is the first user */
    err_t e;
    json_t *r = get("User", o->id, NULL, &e);
    assert_non_null(r);
    assert_string_equal(gs(r, "Name"), "Other");
    assert_string_equal(gs(r, "CreatedById"), u->id);
    json_decref(r);
    r = get("User", u->id, NULL, &e);
    assert_string_equal(gs(r, "Name"), "Demo User");
    assert_string_equal(gs(r, "CreatedById"), u->id);
    json_decref(r);
}

static void
test_prefixes_and_seed(void **state)
{
    const lf_schema *s = store_schema(st);
    (void)state;
    assert_string_equal(schema_object(s, "Account")->key_prefix, "001");
    assert_string_equal(schema_object(s, "Contact")->key_prefix, "003");
    assert_string_equal(schema_object(s, "Teacher__c")->key_prefix, "a01");
    assert_string_equal(schema_object(s, "Course__c")->key_prefix, "a02");
    assert_true(schema_object(s, "Teacher__c")->custom);
    assert_false(schema_object(s, "Account")->custom);
    assert_int_equal(store_count(st, "Account", false), 2);
    assert_int_equal(store_count(st, "Teacher__c", false), 1);
    assert_int_equal(store_count(st, "Nope__c", false), -1);
    /* the seed teacher found its school by external id */
    char *school = account_id("S-1");
    char *t =
        sql1("SELECT \"School__c\" FROM \"Teacher__c\" WHERE \"Email__c\" = 'ada@example.org'",
             NULL);
    assert_string_equal(t, school);
    assert_true(sfid_has_prefix(school, "001"));
    free(school);
    free(t);
}

static void
test_system_fields(void **state)
{
    static const char *order[] = {"Id",
                                  "IsDeleted",
                                  "Name",
                                  "CreatedDate",
                                  "CreatedById",
                                  "LastModifiedDate",
                                  "LastModifiedById",
                                  "SystemModstamp",
                                  "OwnerId",
                                  "First_Name__c",
                                  "Email__c"};
    const lf_object *o = schema_object(store_schema(st), "Teacher__c");
    (void)state;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        assert_string_equal(o->fields[i]->name, order[i]);
    const lf_field *f = object_field(o, "CreatedById");
    assert_int_equal(f->type, FT_REFERENCE);
    assert_string_equal(f->reference_to, "User");
    assert_string_equal(f->relationship_name, "CreatedBy");
    assert_string_equal(object_field(o, "OwnerId")->relationship_name, "Owner");
    assert_true(object_field(o, "OwnerId")->createable);
    assert_false(object_field(o, "SystemModstamp")->createable);
    assert_true(object_field(o, "Name")->createable);
    assert_int_equal(object_field(o, "Name")->length, 80);
    assert_string_equal(object_field(o, "School__c")->relationship_name, "School__r");
    const lf_object *c = schema_object(store_schema(st), "Contact");
    assert_string_equal(object_field(c, "AccountId")->relationship_name, "Account");
    assert_false(object_field(c, "Name")->createable);
    /* defaults from the type */
    assert_int_equal(object_field(o, "Notes__c")->length, 32768);
    assert_int_equal(object_field(o, "Salary__c")->precision, 18);
    assert_int_equal(object_field(o, "Salary__c")->scale, 2);
    assert_int_equal(object_field(o, "Active__c")->type, FT_BOOLEAN);
}

/* ---- create and read ------------------------------------------------------ */

static void
test_create_and_get(void **state)
{
    char id[19];
    err_t e;
    (void)state;
    assert_int_equal(create("teacher__c",
                            "{\"attributes\":{\"type\":\"Teacher__c\"},\"first_name__c\":\"Grace\","
                            "\"Email__c\":\"grace@example.org\",\"Score__c\":12.5,"
                            "\"Salary__c\":10,\"Years__c\":7,\"Hired__c\":\"2024-01-02\","
                            "\"Last_Seen__c\":\"2024-01-02T03:04:05.678Z\",\"Start__c\":\"08:30\","
                            "\"Notes__c\":\"line1\\n\\\"quoted\\\"\"}",
                            id, &e),
                     0);
    sb out = SB_INIT;
    assert_int_equal(store_get(st, "Teacher__c", id, NULL, "59.0", &out, &e), 0);
    /* attributes first, then describe order */
    char head[200];
    snprintf(head, sizeof head,
             "{\"attributes\":{\"type\":\"Teacher__c\",\"url\":\"/services/data/v59.0/sobjects/"
             "Teacher__c/%s\"},\"Id\":\"%s\",\"IsDeleted\":false,\"Name\":\"%.15s\","
             "\"CreatedDate\":",
             id, id, id); /* no Name given: a custom object's record is named by its Id */
    assert_memory_equal(sb_str(&out), head, strlen(head));
    json_t *r = J(sb_str(&out));
    sb_free(&out);
    assert_string_equal(gs(r, "First_Name__c"), "Grace");
    assert_string_equal(gs(r, "Status__c"), "Active"); /* default */
    assert_true(json_is_true(json_object_get(r, "Active__c")));
    assert_true(json_is_null(json_object_get(r, "School__c")));
    assert_true(json_is_null(json_object_get(r, "Subjects__c")));
    assert_true(json_real_value(json_object_get(r, "Score__c")) == 12.5);
    assert_true(json_is_real(json_object_get(r, "Salary__c")));
    assert_int_equal(json_integer_value(json_object_get(r, "Years__c")), 7);
    assert_string_equal(gs(r, "Hired__c"), "2024-01-02");
    assert_string_equal(gs(r, "Last_Seen__c"), "2024-01-02T03:04:05.678+0000");
    assert_string_equal(gs(r, "Start__c"), "08:30:00.000Z");
    assert_string_equal(gs(r, "Notes__c"), "line1\n\"quoted\"");
    assert_string_equal(gs(r, "OwnerId"), demo_id);
    assert_string_equal(gs(r, "CreatedById"), demo_id);
    assert_string_equal(gs(r, "LastModifiedById"), demo_id);
    assert_string_equal(gs(r, "CreatedDate"), gs(r, "SystemModstamp"));
    assert_string_equal(gs(r, "CreatedDate"), gs(r, "LastModifiedDate"));
    assert_int_equal(json_object_size(r),
                     1 + schema_object(store_schema(st), "Teacher__c")->nfields);
    json_decref(r);
    /* the raw JSON prints a currency as 10.0 */
    assert_int_equal(store_get(st, "Teacher__c", id, "Salary__c", "59.0", &out, &e), 0);
    assert_non_null(strstr(sb_str(&out), "\"Salary__c\":10.0"));
    sb_free(&out);
}

static void
test_get_fields_and_errors(void **state)
{
    char id[19];
    err_t e;
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"Kay\"}", id, &e), 0);
    sb out = SB_INIT;
    assert_int_equal(store_get(st, "Teacher__c", id, " email__c ,First_Name__c", NULL, &out, &e),
                     0);
    char want[256];
    snprintf(want, sizeof want,
             "{\"attributes\":{\"type\":\"Teacher__c\",\"url\":\"/services/data/v59.0/sobjects/"
             "Teacher__c/%s\"},\"Email__c\":null,\"First_Name__c\":\"Kay\",\"Id\":\"%s\"}",
             id, id);
    assert_string_equal(sb_str(&out), want);
    sb_clear(&out);
    assert_err(store_get(st, "Teacher__c", id, "Id,Foo__c", "59.0", &out, &e), e, 400,
               "INVALID_FIELD", NULL);
    assert_non_null(strstr(e.msg, "No such column 'Foo__c' on entity 'Teacher__c'"));
    assert_err(store_get(st, "Teacher__c", "xyz", NULL, "59.0", &out, &e), e, 404, "NOT_FOUND",
               "The requested resource does not exist");
    char missing[19];
    sfid_make("a01", 999, missing);
    assert_err(store_get(st, "Teacher__c", missing, NULL, "59.0", &out, &e), e, 404, "NOT_FOUND",
               NULL);
    assert_err(store_get(st, "Nope__c", id, NULL, "59.0", &out, &e), e, 404, "NOT_FOUND", NULL);
    /* 15-character ID */
    char id15[16];
    memcpy(id15, id, 15);
    id15[15] = '\0';
    sb_clear(&out);
    assert_int_equal(store_get(st, "Teacher__c", id15, "Id", "59.0", &out, &e), 0);
    assert_non_null(strstr(sb_str(&out), id));
    sb_free(&out);
}

static void
test_ids(void **state)
{
    char a[19], b[19];
    err_t e;
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", a, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\"}", b, &e), 0);
    assert_int_equal(strlen(a), 18);
    assert_true(sfid_has_prefix(a, "a01"));
    assert_memory_equal(a + 3, SFID_POD, 2);
    assert_int_equal(sfid_seq(b), sfid_seq(a) + 1);
    char norm[19];
    assert_int_equal(sfid_normalize(a, norm), 0);
    assert_string_equal(norm, a);
    assert_ptr_equal(store_object_for_id(st, a), schema_object(store_schema(st), "Teacher__c"));
    char missing[19];
    sfid_make("a01", 999, missing);
    assert_null(store_object_for_id(st, missing));
    assert_null(store_object_for_id(st, "bogus"));
    assert_int_equal(create("Course__c", "{\"Title__c\":\"Algebra\"}", a, &e), 0);
    assert_true(sfid_has_prefix(a, "a02"));
}

/* ---- create errors -------------------------------------------------------- */

static void
test_err_system_fields(void **state)
{
    err_t e;
    (void)state;
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"SystemModstamp\":null}", NULL, &e),
               e, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
               "Unable to create/update fields: SystemModstamp. Please check the security "
               "settings of this field and verify that it is read/write for your profile or "
               "permission set.");
    assert_string_equal(e.fields, "SystemModstamp");
    assert_err(create("Teacher__c",
                      "{\"Id\":\"a01000000000001\",\"createddate\":1,"
                      "\"First_Name__c\":\"A\"}",
                      NULL, &e),
               e, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", NULL);
    assert_string_equal(e.fields, "Id,CreatedDate");
    assert_non_null(strstr(e.msg, "fields: Id, CreatedDate."));
    assert_err(create("Contact", "{\"LastName\":\"X\",\"Name\":\"Y\"}", NULL, &e), e, 400,
               "INVALID_FIELD_FOR_INSERT_UPDATE", NULL);
    assert_string_equal(e.fields, "Name");
}

static void
test_err_unknown_and_required(void **state)
{
    err_t e;
    (void)state;
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Foo\":1}", NULL, &e), e, 400,
               "INVALID_FIELD", "No such column 'Foo' on sobject of type Teacher__c");
    assert_err(create("Teacher__c", "{\"Email__c\":\"a@b.org\"}", NULL, &e), e, 400,
               "REQUIRED_FIELD_MISSING", "Required fields are missing: [First_Name__c]");
    assert_string_equal(e.fields, "First_Name__c");
    assert_err(create("Teacher__c", "{\"First_Name__c\":null}", NULL, &e), e, 400,
               "REQUIRED_FIELD_MISSING", NULL);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"\"}", NULL, &e), e, 400,
               "REQUIRED_FIELD_MISSING", NULL);
    assert_err(create("Nope__c", "{}", NULL, &e), e, 404, "NOT_FOUND", NULL);
    assert_err(create("Teacher__c", "[1]", NULL, &e), e, 400, "JSON_PARSER_ERROR", NULL);
}

static void
test_err_too_long_and_email(void **state)
{
    err_t e;
    char v[200];
    (void)state;
    memset(v, 'x', 90);
    v[90] = '\0';
    char rec[400];
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"Email__c\":\"%s@example.org\"}", v);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "STRING_TOO_LONG", NULL);
    char want[300];
    snprintf(want, sizeof want, "Email__c: data value too large: %s@example.org (max length=80)",
             v);
    assert_string_equal(e.msg, want);
    assert_string_equal(e.fields, "Email__c");
    /* length counts characters, not bytes: 10 x "é" fits a 10-character field */
    assert_int_equal(create("Teacher__c",
                            "{\"First_Name__c\":\"A\",\"Code__c\":\"\\u00e9\\u00e9\\u00e9\\u00e9"
                            "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
                            NULL, &e),
                     0);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Email__c\":\"foo\"}", NULL, &e), e,
               400, "INVALID_EMAIL_ADDRESS", "Email: invalid email address: foo");
    assert_string_equal(e.fields, "Email__c");
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Email__c\":\"a b@c.org\"}", NULL,
                      &e),
               e, 400, "INVALID_EMAIL_ADDRESS", NULL);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Email__c\":\"a@nodot\"}", NULL, &e),
               e, 400, "INVALID_EMAIL_ADDRESS", NULL);
}

static void
test_picklists(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Status__c\":\"Foo\"}", NULL, &e), e,
               400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
               "Status: bad value for restricted picklist field: Foo");
    assert_string_equal(e.fields, "Status__c");
    assert_int_equal(create("Teacher__c",
                            "{\"First_Name__c\":\"A\",\"Status__c\":\"on LEAVE\","
                            "\"Subjects__c\":\"math;ART\"}",
                            id, &e),
                     0);
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "Status__c"), "On leave");
    assert_string_equal(gs(r, "Subjects__c"), "Math;Art");
    json_decref(r);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Subjects__c\":\"Math;Chess\"}",
                      NULL, &e),
               e, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
               "Subjects: bad value for restricted picklist field: Chess");
    /* unrestricted: anything goes */
    assert_int_equal(create("Account", "{\"Name\":\"X\",\"Industry\":\"Mining\"}", NULL, &e), 0);
}

static void
test_type_errors(void **state)
{
    err_t e;
    (void)state;
    static const char *bad[] = {
        "{\"First_Name__c\":\"A\",\"Score__c\":\"abc\"}",
        "{\"First_Name__c\":\"A\",\"Active__c\":5}",
        "{\"First_Name__c\":\"A\",\"Years__c\":1.5}",
        "{\"First_Name__c\":\"A\",\"Hired__c\":\"2024-13-01\"}",
        "{\"First_Name__c\":\"A\",\"Hired__c\":20240101}",
        "{\"First_Name__c\":\"A\",\"Last_Seen__c\":\"yesterday\"}",
        "{\"First_Name__c\":\"A\",\"Start__c\":\"25:00\"}",
        "{\"First_Name__c\":\"A\",\"Start__c\":\"8:30\"}",
        "{\"First_Name__c\":\"A\",\"Start__c\":\"08:30:15junk\"}",
        "{\"First_Name__c\":{\"x\":1}}",
        "{\"First_Name__c\":\"A\",\"Notes__c\":[1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_err(create("Teacher__c", bad[i], NULL, &e), e, 400, "JSON_PARSER_ERROR", NULL);
        assert_non_null(strstr(e.msg, "Cannot deserialize instance of"));
        assert_true(e.fields[0] != '\0');
    }
    assert_err(create("Teacher__c", bad[0], NULL, &e), e, 400, "JSON_PARSER_ERROR",
               "Cannot deserialize instance of double from VALUE_STRING value abc or request may "
               "be missing a required field (field Score__c)");
    /* lenient conversions */
    char id[19];
    assert_int_equal(create("Teacher__c",
                            "{\"First_Name__c\":42,\"Score__c\":\"7.25\",\"Years__c\":\"12\","
                            "\"Active__c\":\"FALSE\",\"Hired__c\":\"2024-05-06T23:00:00-02:00\","
                            "\"Last_Seen__c\":\"2024-01-02T03:04:05+0100\","
                            "\"Start__c\":\"23:59:59.5Z\"}",
                            id, &e),
                     0);
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "First_Name__c"), "42");
    assert_true(json_real_value(json_object_get(r, "Score__c")) == 7.3); /* scale 1 */
    assert_int_equal(json_integer_value(json_object_get(r, "Years__c")), 12);
    assert_true(json_is_false(json_object_get(r, "Active__c")));
    assert_string_equal(gs(r, "Hired__c"), "2024-05-07");
    assert_string_equal(gs(r, "Last_Seen__c"), "2024-01-02T02:04:05.000+0000");
    assert_string_equal(gs(r, "Start__c"), "23:59:59.500Z");
    json_decref(r);
}

static void
test_number_range(void **state)
{
    err_t e;
    (void)state;
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Score__c\":10000}", NULL, &e), e,
               400, "NUMBER_OUTSIDE_VALID_RANGE", NULL);
    assert_string_equal(e.fields, "Score__c");
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Score__c\":9999.9}", NULL,
                            &e),
                     0);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Years__c\":1000}", NULL, &e), e,
               400, "NUMBER_OUTSIDE_VALID_RANGE", NULL);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Years__c\":-999}", NULL, &e),
                     0);
}

static void
test_duplicates(void **state)
{
    err_t e;
    char a[19], b[19];
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Email__c\":\"x@y.org\"}", a,
                            &e),
                     0);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"B\",\"Email__c\":\"X@Y.ORG\"}", NULL, &e),
               e, 400, "DUPLICATE_VALUE", NULL);
    char want[200];
    snprintf(want, sizeof want,
             "duplicate value found: Email__c duplicates value on record with id: %s", a);
    assert_string_equal(e.msg, want);
    assert_string_equal(e.fields, "Email__c");
    /* an update colliding with another record */
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\",\"Email__c\":\"b@y.org\"}", b,
                            &e),
                     0);
    assert_err(update("Teacher__c", b, "{\"Email__c\":\"x@y.org\"}", &e), e, 400, "DUPLICATE_VALUE",
               want);
    /* re-saving its own value is fine */
    assert_int_equal(update("Teacher__c", a, "{\"Email__c\":\"X@y.org\"}", &e), 0);
    /* deleted records free their values */
    err_clear(&e);
    assert_int_equal(store_delete(st, &actor, "Teacher__c", a, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"C\",\"Email__c\":\"x@y.org\"}",
                            NULL, &e),
                     0);
}

static void
test_lookups(void **state)
{
    err_t e;
    char id[19], contact[19];
    (void)state;
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"School__c\":\"xyz\"}", NULL, &e), e,
               400, "MALFORMED_ID", "School: id value of incorrect type: xyz");
    assert_string_equal(e.fields, "School__c");
    assert_int_equal(create("Contact", "{\"LastName\":\"L\"}", contact, &e), 0);
    char rec[200], want[200];
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"School__c\":\"%s\"}", contact);
    snprintf(want, sizeof want, "School ID: id value of incorrect type: %s", contact);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "FIELD_INTEGRITY_EXCEPTION", want);
    char missing[19];
    sfid_make("001", 999, missing);
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"School__c\":\"%s\"}", missing);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "FIELD_INTEGRITY_EXCEPTION", NULL);
    /* 15-character ID of a live account: stored as 18 */
    char *acc = account_id("S-2");
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"School__c\":\"%.15s\"}", acc);
    assert_int_equal(create("Teacher__c", rec, id, &e), 0);
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "School__c"), acc);
    json_decref(r);
    /* a deleted account can no longer be referenced */
    assert_int_equal(store_delete(st, &actor, "Account", acc, &e), 0);
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"School__c\":\"%s\"}", acc);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "FIELD_INTEGRITY_EXCEPTION", NULL);
    /* OwnerId may be given, and must be a user */
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"OwnerId\":\"%s\"}",
             store_user_by_name(st, "other@localforce.test")->id);
    assert_int_equal(create("Teacher__c", rec, id, &e), 0);
    r = get("Teacher__c", id, "OwnerId,CreatedById", &e);
    assert_string_equal(gs(r, "OwnerId"), store_user_by_name(st, "other@localforce.test")->id);
    assert_string_equal(gs(r, "CreatedById"), demo_id);
    json_decref(r);
    snprintf(rec, sizeof rec, "{\"First_Name__c\":\"A\",\"OwnerId\":\"%s\"}", acc);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "FIELD_INTEGRITY_EXCEPTION", NULL);
    free(acc);
}

static void
test_relationship_external_id(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    assert_int_equal(create("Teacher__c",
                            "{\"First_Name__c\":\"A\",\"School__r\":{\"attributes\":{\"type\":"
                            "\"Account\"},\"External_Id__c\":\"s-2\"}}",
                            id, &e),
                     0);
    char *acc = account_id("S-2");
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "School__c"), acc);
    json_decref(r);
    assert_err(create("Teacher__c",
                      "{\"First_Name__c\":\"A\",\"School__r\":{\"External_Id__c\":\"S-9\"}}", NULL,
                      &e),
               e, 400, "INVALID_FIELD",
               "Foreign key external ID: S-9 not found for field External_Id__c in entity Account");
    char rec[300];
    snprintf(rec, sizeof rec,
             "{\"First_Name__c\":\"A\",\"School__c\":\"%s\",\"School__r\":{\"External_Id__c\":"
             "\"S-2\"}}",
             acc);
    assert_err(create("Teacher__c", rec, NULL, &e), e, 400, "INVALID_FIELD", NULL);
    assert_err(create("Teacher__c", "{\"First_Name__c\":\"A\",\"School__r\":{\"Name\":\"x\"}}",
                      NULL, &e),
               e, 400, "INVALID_FIELD", NULL);
    /* a child of a custom object, by the parent's email */
    assert_int_equal(create("Course__c",
                            "{\"Title__c\":\"C\",\"Teacher__r\":{\"Email__c\":\"ADA@example.org\"}"
                            "}",
                            id, &e),
                     0);
    char *t = sql1("SELECT \"Teacher__c\" FROM \"Course__c\" WHERE \"Id\" = ?1", id);
    char *ada = sql1("SELECT \"Id\" FROM \"Teacher__c\" WHERE \"Email__c\" = 'ada@example.org'",
                     NULL);
    assert_string_equal(t, ada);
    free(t);
    free(ada);
    free(acc);
}

/* ---- update, delete, upsert ------------------------------------------------ */

static void
test_update(void **state)
{
    err_t e;
    char id[19], c[19];
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Years__c\":3}", id, &e), 0);
    char rec[100];
    snprintf(rec, sizeof rec, "{\"Id\":\"%.15s\",\"first_name__C\":\"B\",\"Years__c\":null}", id);
    assert_int_equal(update("Teacher__c", id, rec, &e), 0);
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "First_Name__c"), "B");
    assert_true(json_is_null(json_object_get(r, "Years__c")));
    assert_string_equal(gs(r, "Status__c"), "Active");
    json_decref(r);
    assert_err(update("Teacher__c", id, "{\"First_Name__c\":null}", &e), e, 400,
               "REQUIRED_FIELD_MISSING", "Required fields are missing: [First_Name__c]");
    assert_err(update("Teacher__c", id, "{\"CreatedDate\":\"2024-01-01T00:00:00Z\"}", &e), e, 400,
               "INVALID_FIELD_FOR_INSERT_UPDATE", NULL);
    assert_err(update("Teacher__c", "xyz", "{}", &e), e, 400, "MALFORMED_ID",
               "Teacher ID: id value of incorrect type: xyz");
    char missing[19];
    sfid_make("a01", 999, missing);
    assert_err(update("Teacher__c", missing, "{}", &e), e, 404, "NOT_FOUND",
               "The requested resource does not exist");
    /* Contact Name follows First/Last */
    assert_int_equal(create("Contact", "{\"FirstName\":\"Ada\",\"LastName\":\"Byron\"}", c, &e), 0);
    r = get("Contact", c, "Name", &e);
    assert_string_equal(gs(r, "Name"), "Ada Byron");
    json_decref(r);
    assert_int_equal(update("Contact", c, "{\"LastName\":\"Lovelace\"}", &e), 0);
    r = get("Contact", c, "Name", &e);
    assert_string_equal(gs(r, "Name"), "Ada Lovelace");
    json_decref(r);
}

static void
test_modstamps(void **state)
{
    err_t e;
    char a[19], b[19];
    (void)state;
    int64_t prev = store_next_modstamp(st);
    for (int i = 0; i < 50; i++) {
        int64_t s = store_next_modstamp(st);
        assert_true(s > prev);
        prev = s;
    }
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", a, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\"}", b, &e), 0);
    const char *q = "SELECT \"SystemModstamp\" FROM \"Teacher__c\" WHERE \"Id\" = ?1";
    int64_t sa = sql_int(q, a), sb_ = sql_int(q, b);
    assert_true(sa > prev);
    assert_true(sb_ > sa);
    assert_int_equal(sql_int("SELECT \"CreatedDate\" FROM \"Teacher__c\" WHERE \"Id\" = ?1", a),
                     sa);
    assert_int_equal(update("Teacher__c", a, "{\"Years__c\":1}", &e), 0);
    int64_t sa2 = sql_int(q, a);
    assert_true(sa2 > sb_);
    assert_int_equal(sql_int("SELECT \"LastModifiedDate\" FROM \"Teacher__c\" WHERE \"Id\" = ?1",
                             a),
                     sa2);
    assert_int_equal(sql_int("SELECT \"CreatedDate\" FROM \"Teacher__c\" WHERE \"Id\" = ?1", a),
                     sa);
    assert_int_equal(store_delete(st, &actor, "Teacher__c", b, &e), 0);
    int64_t sb2 = sql_int(q, b);
    assert_true(sb2 > sa2);
    assert_int_equal(sql_int("SELECT \"_deleted_at\" FROM \"Teacher__c\" WHERE \"Id\" = ?1", b),
                     sb2);
    assert_true(store_next_modstamp(st) > sb2);
    /* within a few seconds of the wall clock */
    assert_true(llabs(sb2 - util_now_ms()) < 10000);
}

static void
test_delete(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", id, &e), 0);
    int64_t live = store_count(st, "Teacher__c", false);
    int64_t all = store_count(st, "Teacher__c", true);
    assert_int_equal(store_delete(st, &actor, "Teacher__c", id, &e), 0);
    assert_int_equal(store_count(st, "Teacher__c", false), live - 1);
    assert_int_equal(store_count(st, "Teacher__c", true), all);
    assert_int_equal(sql_int("SELECT \"IsDeleted\" FROM \"Teacher__c\" WHERE \"Id\" = ?1", id), 1);
    assert_err(store_get(st, "Teacher__c", id, NULL, "59.0", &(sb)SB_INIT, &e), e, 404,
               "ENTITY_IS_DELETED", "entity is deleted");
    assert_err(store_delete(st, &actor, "Teacher__c", id, &e), e, 404, "ENTITY_IS_DELETED", NULL);
    assert_err(update("Teacher__c", id, "{}", &e), e, 404, "ENTITY_IS_DELETED", NULL);
    assert_err(store_delete(st, &actor, "Teacher__c", "nonsense", &e), e, 400, "MALFORMED_ID",
               NULL);
    assert_string_equal(e.fields, "Id");
    char *acc = account_id("S-1");
    assert_err(store_delete(st, &actor, "Teacher__c", acc, &e), e, 400, "MALFORMED_ID", NULL);
    free(acc);
    /* deleted records still belong to their object */
    assert_non_null(store_object_for_id(st, id));
}

static void
test_undelete(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"U\"}", id, &e), 0);
    int64_t live = store_count(st, "Teacher__c", false);
    assert_err(store_undelete(st, &actor, "Teacher__c", id, &e), e, 400, "UNDELETE_FAILED",
               "Entity is not in the recycle bin");
    assert_int_equal(store_delete(st, &actor, "Teacher__c", id, &e), 0);
    assert_int_equal(store_undelete(st, &actor, "Teacher__c", id, &e), 0);
    assert_int_equal(store_count(st, "Teacher__c", false), live);
    assert_int_equal(sql_int("SELECT \"IsDeleted\" FROM \"Teacher__c\" WHERE \"Id\" = ?1", id), 0);
    sb out = SB_INIT;
    assert_int_equal(store_get(st, "Teacher__c", id, NULL, "59.0", &out, &e), 0);
    sb_free(&out);
    assert_err(store_undelete(st, &actor, "Teacher__c", "nonsense", &e), e, 400, "MALFORMED_ID",
               NULL);
    char *acc = account_id("S-1");
    assert_err(store_undelete(st, &actor, "Teacher__c", acc, &e), e, 400, "MALFORMED_ID", NULL);
    free(acc);
}

static int
upsert(const char *field, const char *value, const char *rec, char id[19], bool *created,
       sb *matches, err_t *e)
{
    json_t *r = J(rec);
    err_clear(e);
    int rc = store_upsert(st, &actor, "Teacher__c", field, value, r, "60.0", id, created, matches,
                          e);
    json_decref(r);
    return rc;
}

static void
test_upsert(void **state)
{
    err_t e;
    char id[19], id2[19];
    bool created = false;
    (void)state;
    assert_int_equal(upsert("Email__c", "new@example.org", "{\"First_Name__c\":\"N\"}", id,
                            &created, NULL, &e),
                     0);
    assert_true(created);
    json_t *r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "Email__c"), "new@example.org");
    json_decref(r);
    assert_int_equal(upsert("email__c", "NEW@example.org",
                            "{\"First_Name__c\":\"M\",\"Email__c\":\"new@example.org\"}", id2,
                            &created, NULL, &e),
                     0);
    assert_false(created);
    assert_string_equal(id, id2);
    r = get("Teacher__c", id, NULL, &e);
    assert_string_equal(gs(r, "First_Name__c"), "M");
    json_decref(r);
    /* several matches (Code__c is an external id that is not unique) */
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Code__c\":\"K1\"}", id, &e),
                     0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\",\"Code__c\":\"K1\"}", id2, &e),
                     0);
    sb m = SB_INIT;
    assert_err(upsert("Code__c", "K1", "{}", id, &created, &m, &e), e, 300, "MULTIPLE_CHOICES",
               NULL);
    json_t *arr = J(sb_str(&m));
    assert_int_equal(json_array_size(arr), 2);
    char url[100];
    snprintf(url, sizeof url, "/services/data/v60.0/sobjects/Teacher__c/%s", id2);
    assert_string_equal(json_string_value(json_array_get(arr, 1)), url);
    json_decref(arr);
    sb_free(&m);
    /* Code__c is case-sensitive: "k1" matches nothing and creates */
    assert_int_equal(upsert("Code__c", "k1", "{\"First_Name__c\":\"C\"}", id, &created, NULL, &e),
                     0);
    assert_true(created);
    /* not an external id, or no such field */
    assert_err(upsert("First_Name__c", "x", "{}", id, &created, NULL, &e), e, 404, "NOT_FOUND",
               NULL);
    assert_err(upsert("Nope__c", "x", "{}", id, &created, NULL, &e), e, 404, "NOT_FOUND", NULL);
    /* Id with no value creates, with a value updates */
    assert_int_equal(upsert("Id", NULL, "{\"First_Name__c\":\"I\"}", id, &created, NULL, &e), 0);
    assert_true(created);
    assert_int_equal(upsert("Id", id, "{\"First_Name__c\":\"J\"}", id2, &created, NULL, &e), 0);
    assert_false(created);
    assert_string_equal(id, id2);
    /* errors of the record still apply */
    assert_err(upsert("Email__c", "z@example.org", "{}", id, &created, NULL, &e), e, 400,
               "REQUIRED_FIELD_MISSING", NULL);
}

/* ---- replication ----------------------------------------------------------- */

static void
test_updated_deleted(void **state)
{
    err_t e;
    char a[19], b[19], c[19];
    (void)state;
    int64_t now = util_now_ms();
    int64_t t0 = now - (now % 60000) - 10 * 60000; /* ten minutes ago, on the minute */
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", a, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\"}", b, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"C\"}", c, &e), 0);
    assert_int_equal(store_delete(st, &actor, "Teacher__c", c, &e), 0);
    /* move the changes into the past: a at t0+1min, b at t0+3min, c deleted at t0+2min */
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE \"Teacher__c\" SET \"SystemModstamp\" = %lld WHERE \"Id\" = '%s';"
             "UPDATE \"Teacher__c\" SET \"SystemModstamp\" = %lld WHERE \"Id\" = '%s';"
             "UPDATE \"Teacher__c\" SET \"_deleted_at\" = %lld WHERE \"Id\" = '%s'",
             (long long)(t0 + 60000), a, (long long)(t0 + 180000), b, (long long)(t0 + 120500), c);
    sql_exec(sql);
    sb out = SB_INIT;
    err_clear(&e);
    assert_int_equal(store_updated(st, "Teacher__c", t0 + 30000, t0 + 240000, &out, &e), 0);
    json_t *r = J(sb_str(&out));
    json_t *ids = json_object_get(r, "ids");
    assert_int_equal(json_object_size(r), 2);
    assert_int_equal(json_array_size(ids), 2); /* start truncates to t0 */
    assert_string_equal(json_string_value(json_array_get(ids, 0)), a);
    assert_string_equal(json_string_value(json_array_get(ids, 1)), b);
    char want[32];
    util_fmt_datetime(t0 + 240000, want);
    assert_string_equal(gs(r, "latestDateCovered"), want);
    json_decref(r);
    /* end is exclusive and truncated too: b (t0+3min) is outside [t0, t0+3min) */
    sb_clear(&out);
    assert_int_equal(store_updated(st, "Teacher__c", t0, t0 + 180000 + 59000, &out, &e), 0);
    r = J(sb_str(&out));
    assert_int_equal(json_array_size(json_object_get(r, "ids")), 1);
    json_decref(r);
    sb_clear(&out);
    assert_int_equal(store_deleted(st, "Teacher__c", t0, t0 + 240000, &out, &e), 0);
    r = J(sb_str(&out));
    assert_int_equal(json_object_size(r), 3);
    json_t *del = json_object_get(r, "deletedRecords");
    assert_int_equal(json_array_size(del), 1);
    assert_string_equal(gs(json_array_get(del, 0), "id"), c);
    util_fmt_datetime(t0 + 120500, want);
    assert_string_equal(gs(json_array_get(del, 0), "deletedDate"), want);
    assert_non_null(gs(r, "earliestDateAvailable"));
    assert_non_null(gs(r, "latestDateCovered"));
    json_decref(r);
    /* an end in the future is covered only up to the current minute */
    sb_clear(&out);
    assert_int_equal(store_updated(st, "Teacher__c", t0, now + 3600000, &out, &e), 0);
    r = J(sb_str(&out));
    util_fmt_datetime(now - now % 60000, want);
    assert_string_equal(gs(r, "latestDateCovered"), want);
    json_decref(r);
    sb_free(&out);
    assert_err(store_updated(st, "Teacher__c", t0 + 60000, t0, &out, &e), e, 400,
               "INVALID_REPLICATION_DATE", NULL);
    assert_err(store_updated(st, "Teacher__c", now - 31 * 86400000LL, now, &out, &e), e, 400,
               "INVALID_REPLICATION_DATE", NULL);
    assert_err(store_deleted(st, "Teacher__c", now - 16 * 86400000LL, now, &out, &e), e, 400,
               "INVALID_REPLICATION_DATE", NULL);
    assert_err(store_updated(st, "Nope__c", t0, now, &out, &e), e, 404, "NOT_FOUND", NULL);
    sb_free(&out);
}

/* ---- transactions ---------------------------------------------------------- */

static void
test_transactions(void **state)
{
    err_t e;
    char a[19], b[19], c[19];
    (void)state;
    int64_t n0 = store_count(st, "Teacher__c", true);
    assert_int_equal(store_begin(st, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", a, &e), 0);
    store_rollback(st);
    assert_int_equal(store_count(st, "Teacher__c", true), n0);
    assert_int_equal(store_begin(st, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\"}", a, &e), 0);
    assert_int_equal(store_begin(st, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"B\"}", b, &e), 0);
    store_rollback(st);
    assert_int_equal(store_commit(st, &e), 0);
    assert_int_equal(store_count(st, "Teacher__c", true), n0 + 1);
    assert_non_null(store_object_for_id(st, a));
    assert_null(store_object_for_id(st, b));
    char rolled_back[19];
    memcpy(rolled_back, b, 19);
    /* a stray rollback (no transaction) is harmless; commit without begin fails */
    store_rollback(st);
    assert_int_equal(store_commit(st, &e), -1);
    /* the caller's own lock around a transaction */
    store_lock(st);
    assert_int_equal(store_begin(st, &e), 0);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"L\"}", b, &e), 0);
    assert_int_equal(store_commit(st, &e), 0);
    store_rollback(st);
    store_unlock(st);
    assert_non_null(store_object_for_id(st, b));
    /* IDs are not reused after a rollback */
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"C\"}", c, &e), 0);
    assert_true(sfid_seq(c) > sfid_seq(b));
    assert_true(sfid_seq(b) > sfid_seq(rolled_back));
}

/* ---- schema changes -------------------------------------------------------- */

static void
test_add_field(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    json_t *def = J("{\"type\":\"string\",\"length\":20,\"default\":\"n/a\"}");
    err_clear(&e);
    assert_int_equal(store_add_field(st, "Teacher__c", "Room__c", def, &e), 0);
    json_decref(def);
    const lf_object *o = schema_object(store_schema(st), "Teacher__c");
    assert_string_equal(o->fields[o->nfields - 1]->name, "Room__c");
    char *ada = sql1("SELECT \"Id\" FROM \"Teacher__c\" WHERE \"Email__c\" = 'ada@example.org'",
                     NULL);
    json_t *r = get("Teacher__c", ada, NULL, &e);
    assert_string_equal(gs(r, "Room__c"), "n/a"); /* existing rows get the default */
    json_decref(r);
    free(ada);
    assert_int_equal(create("Teacher__c", "{\"First_Name__c\":\"A\",\"Room__c\":\"B12\"}", id, &e),
                     0);
    r = get("Teacher__c", id, "Room__c", &e);
    assert_string_equal(gs(r, "Room__c"), "B12");
    json_decref(r);
    /* a unique checkbox... no: errors */
    def = J("{\"type\":\"string\"}");
    assert_err(store_add_field(st, "Teacher__c", "Room__c", def, &e), e, 400,
               "DUPLICATE_DEVELOPER_NAME", NULL);
    assert_err(store_add_field(st, "Teacher__c", "Room", def, &e), e, 400, "INVALID_FIELD", NULL);
    assert_int_equal(store_add_field(st, "Account", "Region", def, &e), 0); /* standard object */
    json_decref(def);
    def = J("{\"type\":\"emial\"}");
    assert_err(store_add_field(st, "Teacher__c", "Mail__c", def, &e), e, 400, "INVALID_FIELD",
               "Mail__c: unknown type 'emial'");
    json_decref(def);
    def = J("{\"type\":\"reference\",\"reference_to\":\"Nope__c\"}");
    assert_err(store_add_field(st, "Teacher__c", "Ref__c", def, &e), e, 400, "INVALID_FIELD", NULL);
    assert_null(object_field(o, "Ref__c"));
    json_decref(def);
    def = J("{\"type\":\"reference\",\"reference_to\":\"Teacher__c\"}");
    assert_int_equal(store_add_field(st, "Teacher__c", "Mentor__c", def, &e), 0);
    json_decref(def);
    assert_int_equal(create("Teacher__c",
                            "{\"First_Name__c\":\"A\",\"Mentor__r\":{\"Email__c\":\"ada@example."
                            "org\"}}",
                            id, &e),
                     0);
}

static void
test_add_object(void **state)
{
    err_t e;
    char id[19];
    (void)state;
    json_t *def = J("{\"fields\":{\"Teacher__c\":{\"type\":\"reference\",\"reference_to\":"
                    "\"Teacher__c\"},\"Mark__c\":{\"type\":\"percent\"}}}");
    err_clear(&e);
    assert_int_equal(store_add_object(st, "Grade__c", def, &e), 0);
    const lf_object *o = schema_object(store_schema(st), "Grade__c");
    assert_non_null(o);
    assert_string_equal(o->key_prefix, "a03");
    assert_string_equal(o->label, "Grade");
    assert_string_equal(o->label_plural, "Grades");
    assert_int_equal(create("Grade__c", "{\"Mark__c\":95.5}", id, &e), 0);
    assert_true(sfid_has_prefix(id, "a03"));
    assert_err(store_add_object(st, "grade__c", def, &e), e, 400, "DUPLICATE_DEVELOPER_NAME", NULL);
    json_decref(def);
    def = J("{\"fields\":{\"X__c\":{\"type\":\"reference\",\"reference_to\":\"Nope__c\"}}}");
    size_t n = store_schema(st)->nobjects;
    assert_err(store_add_object(st, "Bad__c", def, &e), e, 400, "INVALID_FIELD", NULL);
    assert_int_equal(store_schema(st)->nobjects, n);
    assert_int_equal(store_count(st, "Bad__c", true), -1);
    json_decref(def);
}

static void
test_load_records(void **state)
{
    err_t e;
    int64_t n = 0;
    (void)state;
    int64_t before = store_count(st, "Teacher__c", true);
    json_t *recs = J(
        "[{\"First_Name__c\":\"A\"},{\"First_Name__c\":\"B\",\"Email__c\":\"b@x.org\"},"
        "{\"First_Name__c\":\"C\",\"School__r\":{\"External_Id__c\":\"S-2\"}}]");
    err_clear(&e);
    assert_int_equal(store_load_records(st, &actor, "Teacher__c", recs, 0, &n, &e), 0);
    assert_int_equal(n, 3);
    json_decref(recs);
    assert_int_equal(store_count(st, "Teacher__c", true), before + 3);
    recs = J("[{\"First_Name__c\":\"D\"},{\"Email__c\":\"c@x.org\"},{\"First_Name__c\":\"E\"}]");
    assert_err(store_load_records(st, &actor, "Teacher__c", recs, 0, &n, &e), e, 400,
               "REQUIRED_FIELD_MISSING",
               "records[1]: Required fields are missing: [First_Name__c]");
    json_decref(recs);
    assert_int_equal(store_count(st, "Teacher__c", true), before + 3); /* all or nothing */
    recs = J("{}");
    assert_err(store_load_records(st, &actor, "Teacher__c", recs, 0, &n, &e), e, 400,
               "JSON_PARSER_ERROR", NULL);
    json_decref(recs);
}

/* ---- org file errors ------------------------------------------------------- */

static void
org_error(const char *json, const char *want)
{
    store *s;
    err_t e;
    assert_int_equal(store_open(":memory:", &s, &e), 0);
    json_t *j = J(json);
    err_clear(&e);
    assert_int_equal(store_load_org_json(s, j, &e), -1);
    if (strstr(e.msg, want) == NULL)
        fail_msg("expected '%s' in '%s'", want, e.msg);
    /* nothing half-applied */
    assert_int_equal(store_schema(s)->nobjects, 1);
    assert_int_equal(store_count(s, "User", true), 0);
    assert_null(store_user_by_name(s, "a@b.c"));
    assert_string_equal(store_org_name(s), "localforce");
    assert_int_equal(store_session_ttl_s(s), 7200);
    assert_null(object_field(schema_object(store_schema(s), "User"), "Badge__c"));
    /* the User table and its cache still agree */
    json_t *u = J("{\"Username\":\"z@y.org\",\"LastName\":\"Z\",\"Email\":\"z@y.org\"}");
    char id[19];
    assert_int_equal(store_create(s, NULL, "User", u, id, &e), 0);
    json_decref(u);
    json_decref(j);
    store_close(s);
}

static void
test_org_errors(void **state)
{
    (void)state;
    org_error("{\"objects\":{\"Teacher__c\":{\"fields\":{\"Email__c\":{\"type\":\"emial\"}}}}}",
              "objects.Teacher__c.fields.Email__c: unknown type 'emial'");
    org_error("{\"object\":{}}", "unknown key 'object'");
    org_error("{\"objects\":{\"Teacher\":{}}}",
              "objects.Teacher: custom object names must end in __c");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"Email\":{\"type\":\"email\"}}}}}",
              "objects.T__c.fields.Email: custom field names must end in __c");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"A__c\":{\"type\":\"string\",\"lenght\":5}}}}}",
              "objects.T__c.fields.A__c: unknown key 'lenght'");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"A__c\":{\"type\":\"int\",\"length\":5}}}}}",
              "'length' does not apply to type int");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"A__c\":{\"type\":\"lookup\","
              "\"reference_to\":\"Nope__c\"}}}}}",
              "refers to unknown object 'Nope__c'");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"A__c\":{\"type\":\"picklist\","
              "\"values\":[\"a\"],\"restricted\":true,\"default\":\"b\"}}}}}",
              "default 'b' is not one of the picklist values");
    org_error("{\"objects\":{\"T__c\":{\"fields\":{\"OwnerId\":{\"type\":\"string\"}}}}}",
              "objects.T__c.fields.OwnerId");
    org_error("{\"objects\":{\"T__c\":{\"key_prefix\":\"005\"}}}", "key prefix 005");
    org_error("{\"settings\":{\"session_ttl_seconds\":-5}}", "settings.session_ttl_seconds");
    org_error("{\"settings\":{\"ttl\":5}}", "settings: unknown key 'ttl'");
    org_error("{\"users\":[{\"username\":\"a@b.c\"}]}", "users[0]: 'username' and 'password'");
    org_error("{\"users\":[{\"username\":\"a@b.c\",\"password\":\"x\",\"email\":\"bad\"}]}",
              "users[0]: Email: invalid email address: bad");
    org_error("{\"connected_apps\":[{\"client_id\":\"c\",\"client_secret\":\"s\",\"run_as\":"
              "\"x@y.z\"}]}",
              "connected_apps[0].run_as: 'x@y.z' is not one of the users");
    org_error("{\"organization\":{\"id\":\"001000000000001\"}}", "organization.id");
    org_error("{\"objects\":{\"T__c\":{}},\"records\":{\"T__c\":[{\"Nope__c\":1}]}}",
              "records.T__c[0]: No such column 'Nope__c' on sobject of type T__c");
    org_error("{\"records\":{\"Nope__c\":[]}}", "records.Nope__c: unknown object");
    /* a late failure undoes users, objects, fields and settings too */
    org_error("{\"organization\":{\"name\":\"X\"},\"settings\":{\"session_ttl_seconds\":60},"
              "\"users\":[{\"username\":\"a@b.c\",\"password\":\"x\"}],"
              "\"objects\":{\"User\":{\"fields\":{\"Badge__c\":{\"type\":\"string\"}}},"
              "\"T__c\":{}},\"records\":{\"T__c\":[{\"Name\":\"ok\"},{\"Name\":1,\"X__c\":2}]}}",
              "records.T__c[1]: No such column 'X__c'");
    /* file-level: JSON syntax */
    store *s;
    err_t e;
    char path[] = "/tmp/lf-store-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"users\": [}", 12), 12);
    close(fd);
    assert_int_equal(store_open(":memory:", &s, &e), 0);
    assert_int_equal(store_load_org_file(s, path, &e), -1);
    assert_string_equal(e.code, "JSON_PARSER_ERROR");
    assert_non_null(strstr(e.msg, "line 1, column"));
    assert_int_equal(store_load_org_file(s, "/nonexistent/org.json", &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/org.json"));
    store_close(s);
    unlink(path);
}

static void
test_schema_json_roundtrip(void **state)
{
    const lf_schema *s = store_schema(st);
    (void)state;
    for (size_t i = 0; i < s->nobjects; i++) {
        err_t e;
        json_t *j = schema_object_to_json(s->objects[i]);
        lf_object *o = schema_object_from_json(s->objects[i]->name, j, &e);
        if (o == NULL)
            fail_msg("%s: %s", s->objects[i]->name, e.msg);
        json_t *j2 = schema_object_to_json(o);
        assert_true(json_equal(j, j2));
        assert_int_equal(o->nfields, s->objects[i]->nfields);
        for (size_t k = 0; k < o->nfields; k++) {
            assert_string_equal(o->fields[k]->name, s->objects[i]->fields[k]->name);
            assert_int_equal(o->fields[k]->createable, s->objects[i]->fields[k]->createable);
        }
        json_decref(j);
        json_decref(j2);
        object_free(o);
    }
    /* a field definition alone */
    err_t e;
    json_t *d = J("{\"type\":\"currency\",\"precision\":10,\"scale\":3,\"default\":1.5,"
                  "\"required\":true,\"label\":\"Fee\"}");
    lf_field *f = schema_field_from_json("Fee__c", d, &e);
    assert_non_null(f);
    assert_string_equal(f->default_value, "1.5");
    json_t *back = schema_field_to_json(f);
    assert_true(json_real_value(json_object_get(back, "default")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(back, "scale")), 3);
    assert_true(json_is_true(json_object_get(back, "required")));
    json_decref(back);
    json_decref(d);
    field_free(f);
}

/* ---- persistence ------------------------------------------------------------ */

static void
test_reopen_file(void **state)
{
    char dir[] = "/tmp/lf-store-db-XXXXXX";
    (void)state;
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/org.db", dir);
    store *s;
    err_t e;
    char id[19];
    assert_int_equal(store_open(path, &s, &e), 0);
    assert_int_equal(store_load_org_file(s, fixture, &e), 0);
    json_t *r = J("{\"First_Name__c\":\"Persist\",\"Email__c\":\"p@example.org\"}");
    assert_int_equal(store_create(s, NULL, "Teacher__c", r, id, &e), 0);
    json_decref(r);
    json_t *def = J("{\"type\":\"int\",\"default\":4}");
    assert_int_equal(store_add_field(s, "Teacher__c", "Level__c", def, &e), 0);
    json_decref(def);
    char org_id[19], user_id[19];
    memcpy(org_id, store_org_id(s), 19);
    memcpy(user_id, store_user_by_name(s, "demo@localforce.test")->id, 19);
    int64_t stamp = store_next_modstamp(s);
    int64_t n_teachers = store_count(s, "Teacher__c", true);
    store_close(s);

    assert_int_equal(store_open(path, &s, &e), 0);
    store_lock(s);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    store_unlock(s);
    assert_string_equal(store_org_id(s), org_id);
    assert_string_equal(store_org_name(s), "Store Test Org");
    assert_int_equal(store_session_ttl_s(s), 3600);
    const lf_object *t = schema_object(store_schema(s), "Teacher__c");
    assert_non_null(t);
    assert_string_equal(t->key_prefix, "a01");
    assert_non_null(object_field(t, "Level__c"));
    assert_string_equal(t->fields[t->nfields - 1]->name, "Level__c");
    assert_true(object_field(t, "Email__c")->unique);
    assert_int_equal(store_count(s, "Teacher__c", true), n_teachers);
    assert_true(store_next_modstamp(s) > stamp);
    /* no passwords before the org file is loaded again */
    assert_null(store_user_by_name(s, "demo@localforce.test"));
    assert_non_null(store_user_by_id(s, user_id));
    sb out = SB_INIT;
    assert_int_equal(store_get(s, "Teacher__c", id, NULL, "59.0", &out, &e), 0);
    r = J(sb_str(&out));
    sb_free(&out);
    assert_string_equal(gs(r, "First_Name__c"), "Persist");
    assert_int_equal(json_integer_value(json_object_get(r, "Level__c")), 4);
    assert_string_equal(gs(r, "CreatedById"), user_id); /* no actor: the first user */
    json_decref(r);
    /* unique index survived */
    r = J("{\"First_Name__c\":\"Dup\",\"Email__c\":\"P@example.org\"}");
    assert_int_equal(store_create(s, NULL, "Teacher__c", r, id, &e), -1);
    assert_string_equal(e.code, "DUPLICATE_VALUE");
    json_decref(r);
    /* loading the file again adds nothing, keeps users, restores passwords */
    assert_int_equal(store_load_org_file(s, fixture, &e), 0);
    assert_int_equal(store_count(s, "Teacher__c", true), n_teachers);
    assert_int_equal(store_count(s, "Account", true), 2);
    assert_int_equal(store_count(s, "User", true), 2);
    assert_string_equal(store_user_by_name(s, "demo@localforce.test")->id, user_id);
    assert_string_equal(store_user_by_name(s, "demo@localforce.test")->password, "localforce");
    /* a new ID continues the sequence */
    r = J("{\"First_Name__c\":\"Next\"}");
    char id2[19];
    assert_int_equal(store_create(s, NULL, "Teacher__c", r, id2, &e), 0);
    assert_true(sfid_seq(id2) > sfid_seq(id));
    json_decref(r);
    store_close(s);

    /* an org file that adds an object and a field to an existing one */
    assert_int_equal(store_open(path, &s, &e), 0);
    json_t *org = J(
        "{\"objects\":{\"Teacher__c\":{\"fields\":{\"Extra__c\":{\"type\":\"string\"}}},"
        "\"Room__c\":{\"fields\":{\"Size__c\":{\"type\":\"int\"}}}},"
        "\"records\":{\"Room__c\":[{\"Name\":\"R1\"}],\"Teacher__c\":"
        "[{\"First_Name__c\":\"Skipped\"}]}}");
    assert_int_equal(store_load_org_json(s, org, &e), 0);
    json_decref(org);
    assert_non_null(object_field(schema_object(store_schema(s), "Teacher__c"), "Extra__c"));
    assert_string_equal(schema_object(store_schema(s), "Room__c")->key_prefix, "a03");
    assert_int_equal(store_count(s, "Room__c", true), 1);
    assert_int_equal(store_count(s, "Teacher__c", true), n_teachers + 1);
    store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- hostile input ---------------------------------------------------------- */

static void
test_hostile_input(void **state)
{
    err_t e;
    (void)state;
    static const char *recs[] = {
        "{\"First_Name__c\":\"A\",\"School__r\":{\"External_Id__c\":{\"x\":[[[[1]]]]}}}",
        "{\"First_Name__c\":\"A\",\"School__r\":{\"External_Id__c\":\"S-1\",\"Name\":\"x\"}}",
        "{\"First_Name__c\":\"A\",\"School__r\":\"S-1\"}",
        "{\"First_Name__c\":\"A\",\"School__r\":{}}",
        "{\"First_Name__c\":\"a\\u0000b\"}",
        "{\"First_Name__c\":\"A\",\"School__c\":\"001000000000001AAAX\"}",
        "{\"First_Name__c\":\"A\",\"School__c\":12345}",
        "{\"First_Name__c\":\"A\",\"Score__c\":1e308}",
        "{\"First_Name__c\":\"A\",\"Years__c\":9223372036854775807}",
        "{\"First_Name__c\":\"A\",\"Last_Seen__c\":\"2024-01-02T03:04:05.+01:00\"}",
        "{\"First_Name__c\":\"A\",\"Subjects__c\":\";;;\"}",
        "{\"\\\"; DROP TABLE x; --\":1}",
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        assert_int_equal(create("Teacher__c", recs[i], NULL, &e), -1);
        assert_int_equal(e.http, 400);
    }
    /* a 1 MB value into a textarea, and a very long key */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    json_t *r = json_object();
    json_object_set_new(r, "First_Name__c", json_string("A"));
    json_object_set_new(r, "Notes__c", json_string(big));
    char id[19];
    assert_int_equal(store_create(st, &actor, "Teacher__c", r, id, &e), -1);
    assert_string_equal(e.code, "STRING_TOO_LONG");
    assert_true(strlen(e.msg) < 500);
    json_object_clear(r);
    big[5000] = '\0';
    json_object_set_new(r, big, json_integer(1));
    assert_int_equal(store_create(st, &actor, "Teacher__c", r, id, &e), -1);
    assert_string_equal(e.code, "INVALID_FIELD");
    json_decref(r);
    sb out = SB_INIT;
    assert_int_equal(store_get(st, "Teacher__c", big, big, "59.0", &out, &e), -1);
    assert_int_equal(store_upsert(st, &actor, "Teacher__c", big, big, NULL, "59.0", id, NULL, NULL,
                                  &e),
                     -1);
    assert_int_equal(store_upsert(st, &actor, "Teacher__c", "Email__c", "", NULL, "59.0", id, NULL,
                                  NULL, &e),
                     -1);
    assert_int_equal(store_update(st, &actor, "Teacher__c", NULL, NULL, &e), -1);
    assert_int_equal(store_delete(st, &actor, NULL, big, &e), -1);
    sb_free(&out);
    free(big);
    /* the table is still there */
    assert_true(store_count(st, "Teacher__c", true) > 0);
}

/* ---- speed ----------------------------------------------------------------- */

static void
test_speed(void **state)
{
    err_t e;
    (void)state;
    const char *env = getenv("LF_BENCH_N");
    int n = env ? atoi(env) : 20000;
    json_t *def = J("{\"fields\":{\"A__c\":{\"type\":\"string\",\"length\":40},"
                    "\"B__c\":{\"type\":\"int\"},\"C__c\":{\"type\":\"double\"},"
                    "\"D__c\":{\"type\":\"boolean\"},\"E__c\":{\"type\":\"datetime\"},"
                    "\"F__c\":{\"type\":\"email\"}}}");
    assert_int_equal(store_add_object(st, "Bench__c", def, &e), 0);
    json_decref(def);
    json_t *recs = json_array();
    for (int i = 0; i < n; i++) {
        char email[64];
        snprintf(email, sizeof email, "user%d@example.org", i);
        json_t *r = json_object();
        json_object_set_new(r, "Name", json_sprintf("Record %d", i));
        json_object_set_new(r, "A__c", json_string("some text value"));
        json_object_set_new(r, "B__c", json_integer(i));
        json_object_set_new(r, "C__c", json_real(i * 1.5));
        json_object_set_new(r, "D__c", json_boolean(i & 1));
        json_object_set_new(r, "E__c", json_string("2024-01-02T03:04:05.000Z"));
        json_object_set_new(r, "F__c", json_string(email));
        json_array_append_new(recs, r);
    }
    int64_t t0 = util_mono_ms();
    assert_int_equal(store_begin(st, &e), 0);
    for (int i = 0; i < n; i++) {
        char id[19];
        if (store_create(st, &actor, "Bench__c", json_array_get(recs, i), id, &e))
            fail_msg("%s", e.msg);
    }
    assert_int_equal(store_commit(st, &e), 0);
    int64_t t1 = util_mono_ms();
    int64_t loaded = 0;
    assert_int_equal(store_load_records(st, &actor, "Bench__c", recs, 0, &loaded, &e), 0);
    int64_t t2 = util_mono_ms();
    assert_int_equal(loaded, n);
    double c = (double)n / ((double)(t1 - t0 + 1) / 1000.0);
    double l = (double)n / ((double)(t2 - t1 + 1) / 1000.0);
    fprintf(stderr,
            "# speed: store_create in a transaction: %d records in %lld ms (%.0f/s); "
            "store_load_records: %lld ms (%.0f/s)\n",
            n, (long long)(t1 - t0), c, (long long)(t2 - t1), l);
    json_decref(recs);
    assert_int_equal(store_count(st, "Bench__c", false), 2 * n);
}

/* ---- main ------------------------------------------------------------------ */

#define T(fn) cmocka_unit_test_setup_teardown(fn, open_org, close_org)

int
main(int argc, char **argv)
{
    /* argv[1] (a source directory or the fixture itself), LF_SRCDIR, ".", ".." */
    const char *dirs[] = {argc > 1 ? argv[1] : NULL, getenv("LF_SRCDIR"), ".", ".."};
    fixture[0] = '\0';
    for (size_t i = 0; i < 4 && fixture[0] == '\0'; i++) {
        char path[1024];
        if (dirs[i] == NULL)
            continue;
        if (strstr(dirs[i], ".json"))
            snprintf(path, sizeof path, "%s", dirs[i]);
        else
            snprintf(path, sizeof path, "%s/tests/unit/fixtures/store-org.json", dirs[i]);
        if (access(path, R_OK) == 0)
            memcpy(fixture, path, sizeof fixture);
        else if (i < 2)
            break; /* an explicit location that is wrong is an error */
    }
    if (fixture[0] == '\0') {
        fprintf(stderr, "test_store: fixture tests/unit/fixtures/store-org.json not found (pass "
                        "the source directory as the first argument or set LF_SRCDIR)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_store),
        T(test_org_loaded),
        T(test_prefixes_and_seed),
        T(test_system_fields),
        T(test_create_and_get),
        T(test_get_fields_and_errors),
        T(test_ids),
        T(test_err_system_fields),
        T(test_err_unknown_and_required),
        T(test_err_too_long_and_email),
        T(test_picklists),
        T(test_type_errors),
        T(test_number_range),
        T(test_duplicates),
        T(test_lookups),
        T(test_relationship_external_id),
        T(test_update),
        T(test_modstamps),
        T(test_delete),
        T(test_undelete),
        T(test_upsert),
        T(test_updated_deleted),
        T(test_transactions),
        T(test_add_field),
        T(test_add_object),
        T(test_load_records),
        cmocka_unit_test(test_org_errors),
        T(test_schema_json_roundtrip),
        cmocka_unit_test(test_reopen_file),
        T(test_hostile_input),
        T(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
