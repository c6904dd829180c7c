/*
 * Unit tests for ddl: field resolution against a describe, Heroku Connect's
 * type mapping, table and index names, refusals naming the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"

static const char describe_json[] =
    "{\"name\":\"Teacher__c\",\"fields\":["
    "{\"name\":\"Id\",\"type\":\"id\",\"length\":18},"
    "{\"name\":\"IsDeleted\",\"type\":\"boolean\"},"
    "{\"name\":\"Name\",\"type\":\"string\",\"length\":80},"
    "{\"name\":\"CreatedDate\",\"type\":\"datetime\"},"
    "{\"name\":\"SystemModstamp\",\"type\":\"datetime\"},"
    "{\"name\":\"Email__c\",\"type\":\"email\",\"length\":80},"
    "{\"name\":\"Bio__c\",\"type\":\"textarea\",\"length\":32768},"
    "{\"name\":\"Note__c\",\"type\":\"textarea\",\"length\":1000},"
    "{\"name\":\"Subjects__c\",\"type\":\"multipicklist\",\"length\":4099},"
    "{\"name\":\"Salary__c\",\"type\":\"currency\"},"
    "{\"name\":\"Years__c\",\"type\":\"int\"},"
    "{\"name\":\"Start__c\",\"type\":\"date\"},"
    "{\"name\":\"Photo__c\",\"type\":\"base64\"},"
    "{\"name\":\"School__c\",\"type\":\"reference\",\"length\":18},"
    "{\"name\":\"Uuid__c\",\"type\":\"string\",\"length\":36,\"externalId\":true},"
    "{\"name\":\"Loc__c\",\"type\":\"location\"},"
    "{\"name\":\"Loc__Latitude__s\",\"type\":\"double\",\"compoundFieldName\":\"Loc__c\"},"
    "{\"name\":\"Loc__Longitude__s\",\"type\":\"double\",\"compoundFieldName\":\"Loc__c\"}"
    "]}";

static json_t *
desc(void)
{
    json_t *d = json_loads(describe_json, 0, NULL);
    assert_non_null(d);
    return d;
}

static const char *
pg_of(const mapping *m, const char *col)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].column, col) == 0)
            return m->fields[i].pgtype;
    return NULL;
}

static void
test_resolve_types(void **state)
{
    (void)state;
    json_t *d = desc();
    mapping m = {0};
    err_t e;
    const char *want[] = {"email__c", "Bio__c",   "Note__c",   "Subjects__c", "Salary__c",
                          "Years__c", "Start__c", "School__c", "Loc__c"};
    assert_int_equal(ddl_resolve(d, want, sizeof want / sizeof want[0], false, &m, NULL, &e), 0);
    assert_string_equal(m.table, "teacher__c");
    assert_string_equal(m.fields[0].column, "sfid");
    assert_string_equal(pg_of(&m, "sfid"), "varchar(18)");
    assert_string_equal(pg_of(&m, "systemmodstamp"), "timestamp");
    assert_string_equal(pg_of(&m, "isdeleted"), "boolean");
    assert_string_equal(pg_of(&m, "name"), "varchar(80)");
    assert_string_equal(pg_of(&m, "email__c"), "varchar(80)");
    assert_string_equal(pg_of(&m, "bio__c"), "text");
    assert_string_equal(pg_of(&m, "note__c"), "varchar(1000)");
    assert_string_equal(pg_of(&m, "subjects__c"), "varchar(4099)");
    assert_string_equal(pg_of(&m, "salary__c"), "double precision");
    assert_string_equal(pg_of(&m, "years__c"), "integer");
    assert_string_equal(pg_of(&m, "start__c"), "date");
    assert_string_equal(pg_of(&m, "school__c"), "varchar(18)");
    assert_string_equal(pg_of(&m, "loc__latitude__s"), "double precision");
    assert_string_equal(pg_of(&m, "loc__longitude__s"), "double precision");
    assert_null(pg_of(&m, "loc__c"));
    mapping_clear(&m);
    json_decref(d);
}

static void
test_refusals_name_the_field(void **state)
{
    (void)state;
    json_t *d = desc();
    mapping m = {0};
    err_t e;
    const char *unknown[] = {"Name", "Nope__c"};
    assert_int_equal(ddl_resolve(d, unknown, 2, false, &m, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "Nope__c"));
    mapping_clear(&m);
    const char *bin[] = {"Photo__c"};
    assert_int_equal(ddl_resolve(d, bin, 1, false, &m, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "Photo__c"));
    assert_non_null(strstr(e.msg, "base64"));
    mapping_clear(&m);
    char *canon = NULL;
    assert_int_equal(ddl_check_upsert_field(d, "Name", &canon, &e), -1);
    assert_non_null(strstr(e.msg, "External ID"));
    assert_int_equal(ddl_check_upsert_field(d, "uuid__c", &canon, &e), 0);
    assert_string_equal(canon, "Uuid__c");
    free(canon);
    json_decref(d);
}

static void
test_all_fields_skips_unsupported(void **state)
{
    (void)state;
    json_t *d = desc();
    mapping m = {0};
    err_t e;
    assert_int_equal(ddl_resolve(d, NULL, 0, true, &m, NULL, &e), 0);
    assert_null(pg_of(&m, "photo__c"));
    assert_non_null(pg_of(&m, "uuid__c"));
    assert_int_equal(m.nfields, 16);
    mapping_clear(&m);
    json_decref(d);
}

static void
test_table_sql(void **state)
{
    (void)state;
    json_t *d = desc();
    mapping m = {0};
    err_t e;
    const char *want[] = {"Uuid__c"};
    assert_int_equal(ddl_resolve(d, want, 1, false, &m, NULL, &e), 0);
    m.indexes = json_pack("{s:{s:b}}", "Name", "unique", 0);
    m.upsert_field = strdup("Uuid__c");
    sb s = SB_INIT;
    ddl_create_table(&s, "sales\"force", &m);
    const char *sql = sb_str(&s);
    assert_non_null(strstr(sql, "CREATE TABLE \"sales\"\"force\".\"teacher__c\""));
    assert_non_null(strstr(sql, "\"id\" serial PRIMARY KEY"));
    assert_non_null(strstr(sql, "\"_hc_lastop\" varchar(32)"));
    assert_non_null(strstr(sql, "\"_hc_err\" text"));
    assert_non_null(strstr(sql, "CREATE UNIQUE INDEX IF NOT EXISTS \"hcu_idx_teacher__c_sfid\""));
    assert_non_null(strstr(sql, "CREATE INDEX IF NOT EXISTS \"hc_idx_teacher__c_systemmodstamp\""));
    assert_non_null(strstr(sql, "CREATE INDEX IF NOT EXISTS \"hc_idx_teacher__c_name\""));
    assert_non_null(
        strstr(sql, "CREATE UNIQUE INDEX IF NOT EXISTS \"hcu_idx_teacher__c_uuid__c\""));
    sb_free(&s);
    ddl_status_trigger(&s, "salesforce", &m);
    assert_non_null(
        strstr(sb_str(&s),
               "CREATE TRIGGER \"hc_teacher__c_status_trigger\" BEFORE INSERT OR UPDATE"));
    assert_non_null(strstr(sb_str(&s), "'PENDING'"));
    sb_free(&s);
    char name[64];
    ddl_index_name(name, "a_very_long_table_name_that_goes_on_and_on__c",
                   "another_long_column_name__c", true);
    assert_int_equal(strlen(name), 63);
    mapping_clear(&m);
    json_decref(d);
}

/* Issue 12 #6: names derived from long table names stay distinct and within
 * 63 bytes (Postgres truncates longer ones, so two truncated to the same name
 * and one CREATE ... IF NOT EXISTS was silently skipped). */
static void
test_derived_names_at_the_limit(void **state)
{
    (void)state;
    char a[64], b[64], c[64], d[64], e2[64];
    /* short names are Heroku Connect's, unchanged */
    DDL_STATUS_TRIGGER(a, "teacher__c");
    assert_string_equal(a, "hc_teacher__c_status_trigger");
    DDL_LOGGER_FN(a, "teacher__c");
    assert_string_equal(a, "hc_teacher__c_logger");
    /* a 60-character table: every name distinct, <= 63 bytes, deterministic */
    const char *t60 = "ns__a_very_long_object_name_with_a_namespace_prefix_xxxxx__c";
    assert_int_equal(strlen(t60), 60);
    DDL_STATUS_FN(a, t60);
    DDL_STATUS_TRIGGER(b, t60);
    DDL_LOGGER_FN(c, t60);
    DDL_LOG_TRIGGER(d, t60);
    DDL_TRUNCATE_TRIGGER(e2, t60);
    const char *all[] = {a, b, c, d, e2};
    for (size_t i = 0; i < 5; i++) {
        assert_true(strlen(all[i]) <= 63);
        for (size_t j = i + 1; j < 5; j++)
            assert_string_not_equal(all[i], all[j]);
    }
    char again[64];
    DDL_LOG_TRIGGER(again, t60);
    assert_string_equal(again, d);
    /* two long tables sharing a 50-character prefix get different names */
    const char *t61 = "ns__a_very_long_object_name_with_a_namespace_prefix_xxxxy__c";
    DDL_LOG_TRIGGER(again, t61);
    assert_string_not_equal(again, d);
    /* index names: the unique upsert index never collides with the sfid index */
    const char *t55 = "a_table_name_of_fifty_five_characters_for_upserts_xx__c";
    assert_int_equal(strlen(t55), 55);
    ddl_index_name(a, t55, "sfid", true);
    ddl_index_name(b, t55, "email__c", true);
    ddl_index_name(c, t55, "systemmodstamp", false);
    assert_true(strlen(a) <= 63 && strlen(b) <= 63 && strlen(c) <= 63);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    /* PushTopic names (25 characters): short tables keep sfb_<table>, long ones differ */
    char t1[26], t2[26];
    ddl_name_within(t1, 25, "sfb_", "teacher__c", "");
    assert_string_equal(t1, "sfb_teacher__c");
    ddl_name_within(t1, 25, "sfb_", "a_long_object_name_one__c", "");
    ddl_name_within(t2, 25, "sfb_", "a_long_object_name_two__c", "");
    assert_int_equal(strlen(t1), 25);
    assert_string_not_equal(t1, t2);
    /* multi-byte names are never cut inside a character */
    char u[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(u, "\xC3\xA9");
    DDL_STATUS_TRIGGER(a, u);
    assert_true(strlen(a) <= 63);
    for (const unsigned char *p = (const unsigned char *)a + 3; *p != '_'; p += 2)
        assert_true(p[0] == 0xC3 && p[1] == 0xA9);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_types),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_all_fields_skips_unsupported),
        cmocka_unit_test(test_table_sql),
        cmocka_unit_test(test_derived_names_at_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
