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
    const char *want[] = {"email__c", "Bio__c", "Note__c", "Subjects__c", "Salary__c", "Years__c", "Start__c",
                          "School__c", "Loc__c"};
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
    assert_non_null(strstr(sql, "CREATE UNIQUE INDEX IF NOT EXISTS \"hcu_idx_teacher__c_uuid__c\""));
    sb_free(&s);
    ddl_status_trigger(&s, "salesforce", &m);
    assert_non_null(strstr(sb_str(&s), "CREATE TRIGGER \"hc_teacher__c_status_trigger\" BEFORE INSERT OR UPDATE"));
    assert_non_null(strstr(sb_str(&s), "'PENDING'"));
    sb_free(&s);
    char name[64];
    ddl_index_name(name, "a_very_long_table_name_that_goes_on_and_on__c", "another_long_column_name__c", true);
    assert_int_equal(strlen(name), 63);
    mapping_clear(&m);
    json_decref(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_types),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_all_fields_skips_unsupported),
        cmocka_unit_test(test_table_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
