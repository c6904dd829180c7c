/*
 * Unit tests for apply: the SOQL and SQL text of the pull path for a small
 * mapping (typed values, the upsert, deletions, the bookkeeping tails,
 * staging and COPY statements, literals).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"

/* Teacher__c: Id, IsDeleted, Name, SystemModstamp, Start__c (date), Bell__c
 * (time), School__r.Code__c (a parent's field). */
static map_field fields[] = {
    {.name = "Id", .column = "sfid", .sftype = "id", .pgtype = "varchar(18)"},
    {.name = "IsDeleted", .column = "isdeleted", .sftype = "boolean", .pgtype = "boolean"},
    {.name = "Name", .column = "name", .sftype = "string", .pgtype = "varchar(80)"},
    {.name = "SystemModstamp",
     .column = "systemmodstamp",
     .sftype = "datetime",
     .pgtype = "timestamp"},
    {.name = "Start__c", .column = "start__c", .sftype = "date", .pgtype = "date"},
    {.name = "Bell__c", .column = "bell__c", .sftype = "time", .pgtype = "time"},
    {.name = "School__r.Code__c",
     .column = "school__r__code__c",
     .sftype = "string",
     .pgtype = "varchar(20)"},
};

static mapping
teacher(void)
{
    mapping m = {.object = "Teacher__c",
                 .table = "teacher__c",
                 .fields = fields,
                 .nfields = sizeof fields / sizeof fields[0]};
    return m;
}

static void
expect_has(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("expected to find\n  %s\nin\n  %s", part, text);
}

static void
expect_lacks(const char *text, const char *part)
{
    if (strstr(text, part))
        fail_msg("did not expect\n  %s\nin\n  %s", part, text);
}

static void
test_soql(void **state)
{
    (void)state;
    mapping m = teacher();
    sb q = SB_INIT;
    apply_soql_select_all(&q, &m, NULL);
    assert_string_equal(sb_str(&q),
                        "SELECT Id, IsDeleted, Name, SystemModstamp, Start__c, Bell__c, "
                        "School__r.Code__c FROM Teacher__c");
    sb_clear(&q);
    const map_field *two[] = {&fields[0], &fields[3]};
    apply_soql_select(&q, &m, two, 2, "SystemModstamp >= 2024-01-02T03:04:05.000Z");
    assert_string_equal(sb_str(&q),
                        "SELECT Id, SystemModstamp FROM Teacher__c WHERE SystemModstamp >= "
                        "2024-01-02T03:04:05.000Z");
    sb_clear(&q);
    const char *ids[] = {"a0B000000000001AAA", "it's\\"};
    apply_soql_ids(&q, ids, 2);
    assert_string_equal(sb_str(&q), "Id IN ('a0B000000000001AAA','it\\'s\\\\')");
    sb_free(&q);
    assert_true(apply_has_isdeleted(&m));
    m.nfields = 1;
    assert_false(apply_has_isdeleted(&m));
}

static void
test_since_literal(void **state)
{
    (void)state;
    char out[40];
    assert_int_equal(apply_since_literal("2024-01-02T03:04:05.000", 1500, out), 0);
    assert_string_equal(out, "2024-01-02T03:04:03.500Z");
    assert_int_equal(apply_since_literal("2024-01-02T00:00:00.250", 500, out), 0);
    assert_string_equal(out, "2024-01-01T23:59:59.750Z");
    assert_int_equal(apply_since_literal("not a time", 0, out), -1);
}

static void
test_literals_and_lists(void **state)
{
    (void)state;
    sb s = SB_INIT;
    sb_sql_literal(&s, "O'Brien's \"x\" \\");
    assert_string_equal(sb_str(&s), "'O''Brien''s \"x\" \\'");
    sb_clear(&s);
    const map_field *f[] = {&fields[0], &fields[2]};
    apply_column_list(&s, f, 2, NULL);
    assert_string_equal(sb_str(&s), "\"sfid\", \"name\"");
    sb_clear(&s);
    apply_column_list(&s, f, 2, "t.");
    assert_string_equal(sb_str(&s), "t.\"sfid\", t.\"name\"");
    sb_free(&s);
}

static void
test_typed_values(void **state)
{
    (void)state;
    static const char *const want[] = {
        "x.\"Id\"",
        "x.\"IsDeleted\"",
        "x.\"Name\"",
        "(x.\"SystemModstamp\" AT TIME ZONE 'UTC')",
        "x.\"Start__c\"",
        "rtrim(x.\"Bell__c\", 'Z')::time",
        "(x.\"School__r\" ->> 'Code__c')::varchar(20)",
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        sb s = SB_INIT;
        apply_value_expr(&s, &fields[i]);
        assert_string_equal(sb_str(&s), want[i]);
        sb_free(&s);
    }
    mapping m = teacher();
    const map_field **f = apply_all_fields(&m);
    sb s = SB_INIT;
    apply_recordset(&s, f, m.nfields);
    assert_string_equal(sb_str(&s),
                        "jsonb_to_recordset($1::jsonb) AS x(\"Id\" varchar(18), \"IsDeleted\" "
                        "boolean, "
                        "\"Name\" varchar(80), \"SystemModstamp\" timestamptz, \"Start__c\" date, "
                        "\"Bell__c\" text, \"School__r\" jsonb)");
    sb_free(&s);
    free(f);
}

static void
test_upsert(void **state)
{
    (void)state;
    mapping m = teacher();
    m.nfields = 3;
    sb s = SB_INIT;
    apply_upsert_from(&s, "salesforce", &m, "SELECT 1", false);
    assert_string_equal(sb_str(&s),
                        "INSERT INTO \"salesforce\".\"teacher__c\" AS t (\"sfid\", \"isdeleted\", "
                        "\"name\", "
                        "\"_hc_lastop\", \"_hc_err\") SELECT 1 ON CONFLICT (\"sfid\") DO UPDATE "
                        "SET "
                        "\"sfid\" = excluded.\"sfid\", \"isdeleted\" = excluded.\"isdeleted\", "
                        "\"name\" = excluded.\"name\", \"_hc_lastop\" = CASE WHEN "
                        "t.\"_hc_lastop\" IN ('INSERTED', 'UPDATED') AND (EXISTS (SELECT 1 FROM "
                        "\"salesforce\".\"_trigger_log\" o WHERE o.table_name = 'teacher__c' AND "
                        "o.record_id = t.id AND o.state IN ('SUCCESS', 'MERGED') AND "
                        "o.processed_at >= (excluded.\"systemmodstamp\" AT TIME ZONE 'UTC')) OR "
                        "EXISTS (SELECT 1 FROM \"salesforce\".\"_trigger_log_archive\" o WHERE "
                        "o.table_name = 'teacher__c' AND o.record_id = t.id AND o.state IN "
                        "('SUCCESS', 'MERGED') AND o.processed_at >= (excluded.\"systemmodstamp\" "
                        "AT "
                        "TIME ZONE 'UTC'))) THEN t.\"_hc_lastop\" ELSE 'SYNCED' END, \"_hc_err\" = "
                        "NULL WHERE "
                        "(t.\"systemmodstamp\" IS NULL OR excluded.\"systemmodstamp\" IS NULL OR "
                        "t.\"systemmodstamp\" <= excluded.\"systemmodstamp\") AND "
                        "(t.\"sfid\", t.\"isdeleted\", t.\"name\") IS DISTINCT FROM "
                        "(excluded.\"sfid\", excluded.\"isdeleted\", excluded.\"name\")");
    /* Read-write: a pending row is left alone, unless Salesforce won its conflict. */
    m.read_write = true;
    sb_clear(&s);
    apply_upsert_from(&s, "salesforce", &m, "SELECT 1", false);
    expect_has(sb_str(&s),
               "WHERE (t.\"_hc_lastop\" IS DISTINCT FROM 'PENDING') AND (t.\"_hc_lastop\" IS "
               "DISTINCT FROM 'FAILED' OR t.\"systemmodstamp\" IS NULL OR "
               "excluded.\"systemmodstamp\" > t.\"systemmodstamp\") AND (t.\"systemmodstamp\"");
    sb_clear(&s);
    apply_upsert_from(&s, "salesforce", &m, "SELECT 1", true);
    /* ... and a version older than sfbridge's own later write is left alone too. */
    expect_has(sb_str(&s),
               "WHERE NOT EXISTS (SELECT 1 FROM stale WHERE stale.sfid = t.sfid) AND "
               "(t.\"_hc_lastop\" IS DISTINCT FROM 'PENDING' OR EXISTS (SELECT 1 FROM conf "
               "WHERE conf.sfid = t.sfid AND conf.winner = 'salesforce')) AND");
    sb_free(&s);
}

static void
test_apply_sql(void **state)
{
    (void)state;
    mapping m = teacher();
    /* Deleted records are deleted; the poll tail advances the watermark. */
    char *sql = apply_sql("salesforce", &m, APPLY_TAIL_POLL, NULL);
    expect_has(sql, "WITH src AS (SELECT DISTINCT ON (x.\"Id\") * FROM "
                    "jsonb_to_recordset($1::jsonb) AS x(\"Id\" "
                    "varchar(18)");
    /* Issue 12 #1: a record named twice in one batch is applied once, newest version. */
    expect_has(sql, " ORDER BY x.\"Id\", x.\"SystemModstamp\" DESC NULLS LAST)");
    expect_has(sql, ", del AS (DELETE FROM \"salesforce\".\"teacher__c\" t USING src WHERE "
                    "src.\"IsDeleted\" "
                    "AND t.\"sfid\" = src.\"Id\" RETURNING 1)");
    expect_has(sql, ", up AS (INSERT INTO \"salesforce\".\"teacher__c\" AS t (");
    expect_has(sql, "SELECT x.\"Id\", x.\"IsDeleted\", x.\"Name\", (x.\"SystemModstamp\" AT TIME "
                    "ZONE 'UTC'), "
                    "x.\"Start__c\", rtrim(x.\"Bell__c\", 'Z')::time, (x.\"School__r\" ->> "
                    "'Code__c')::varchar(20), "
                    "'SYNCED', NULL FROM src x WHERE NOT coalesce(x.\"IsDeleted\", false)");
    expect_has(sql, ", wm AS (UPDATE \"salesforce\".\"_sfbridge_mapping\" SET watermark = "
                    "greatest(watermark, "
                    "(SELECT v FROM mx)), rows_synced = rows_synced + (SELECT count(*) FROM up) + "
                    "(SELECT count(*) FROM del), last_poll_at = now() WHERE object_name = $2 "
                    "RETURNING 1)");
    expect_has(sql,
               " SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM up), (SELECT to_char(v, "
               "'YYYY-MM-DD\"T\"HH24:MI:SS.MS') FROM mx), (SELECT count(*) FROM wm)");
    expect_lacks(sql, "conf");
    free(sql);

    /* Tombstones: deleted records stay as rows; the load tail records $3. */
    m.tombstones = true;
    sql = apply_sql("salesforce", &m, APPLY_TAIL_LOAD, NULL);
    expect_lacks(sql, "del AS");
    expect_lacks(sql, "coalesce(x.\"IsDeleted\"");
    expect_has(sql, ", wm AS (UPDATE \"salesforce\".\"_sfbridge_mapping\" SET load_locator = $3, "
                    "load_done = "
                    "load_done + (SELECT count(*) FROM src), rows_synced = rows_synced + (SELECT "
                    "count(*) FROM src) "
                    "WHERE object_name = $2 RETURNING 1)");
    expect_has(sql, " SELECT (SELECT 0), (SELECT count(*) FROM up)");
    free(sql);

    /* No tail: rows only; the conflict CTEs go right after src. */
    m.read_write = true;
    sql = apply_sql("salesforce", &m, APPLY_TAIL_NONE, ", conf AS (SELECT 1)");
    expect_has(sql, "\"Start__c\" date, \"Bell__c\" text, \"School__r\" jsonb) ORDER BY x.\"Id\", "
                    "x.\"SystemModstamp\" DESC NULLS LAST), conf AS (SELECT 1), up AS");
    expect_has(sql, "OR EXISTS (SELECT 1 FROM conf");
    expect_lacks(sql, "wm AS");
    expect_lacks(sql, "$2");
    free(sql);
}

static void
test_stage_and_copy(void **state)
{
    (void)state;
    mapping m = teacher();
    const map_field *f[] = {&fields[0], &fields[3]};
    sb s = SB_INIT;
    apply_copy_sql(&s, "\"salesforce\".\"teacher__c\"", f, 2);
    assert_string_equal(sb_str(&s), "COPY \"salesforce\".\"teacher__c\" (\"sfid\", "
                                    "\"systemmodstamp\") FROM STDIN "
                                    "WITH (FORMAT csv, FORCE_NULL (\"sfid\", \"systemmodstamp\"))");
    sb_clear(&s);
    apply_stage_create_sql(&s, f, 2);
    assert_string_equal(sb_str(&s),
                        "DROP TABLE IF EXISTS pg_temp._sfb_stage; CREATE TEMP TABLE _sfb_stage "
                        "(\"sfid\" varchar(18), \"systemmodstamp\" timestamp)");
    sb_clear(&s);
    apply_stage_insert_sql(&s, f, 2);
    assert_string_equal(sb_str(&s), "INSERT INTO pg_temp._sfb_stage (\"sfid\", \"systemmodstamp\") "
                                    "SELECT x.\"Id\", "
                                    "(x.\"SystemModstamp\" AT TIME ZONE 'UTC') FROM "
                                    "jsonb_to_recordset($1::jsonb) "
                                    "AS x(\"Id\" varchar(18), \"SystemModstamp\" timestamptz)");
    sb_clear(&s);
    apply_gone_sql(&s, "salesforce", &m, false);
    assert_string_equal(sb_str(&s),
                        "DELETE FROM \"salesforce\".\"teacher__c\" t WHERE t.sfid IS NOT NULL AND "
                        "($1::timestamp IS NULL OR t.systemmodstamp <= $1::timestamp) AND NOT "
                        "EXISTS "
                        "(SELECT 1 FROM pg_temp._sfb_stage s WHERE s.sfid = t.sfid)");
    sb_clear(&s);
    apply_gone_sql(&s, "salesforce", &m, true);
    expect_has(sb_str(&s),
               "UPDATE \"salesforce\".\"teacher__c\" t SET isdeleted = true, "
               "\"_hc_lastop\" = 'SYNCED' WHERE NOT t.isdeleted AND t.sfid IS NOT NULL AND");
    sb_clear(&s);
    const map_field *bf[] = {&fields[0], &fields[2], &fields[4]};
    apply_backfill_sql(&s, "salesforce", &m, bf, 3);
    assert_string_equal(sb_str(&s),
                        "WITH b AS (DELETE FROM pg_temp._sfb_stage WHERE ctid IN (SELECT ctid FROM "
                        "pg_temp._sfb_stage LIMIT 5000) RETURNING *) UPDATE "
                        "\"salesforce\".\"teacher__c\" "
                        "t SET \"name\" = b.\"name\", \"start__c\" = b.\"start__c\" FROM b WHERE "
                        "t.sfid = b.sfid");
    sb_clear(&s);
    apply_delete_ids_sql(&s, "salesforce", &m);
    assert_string_equal(sb_str(&s),
                        "DELETE FROM \"salesforce\".\"teacher__c\" WHERE sfid = ANY($1::text[])");
    sb_clear(&s);
    m.tombstones = true;
    apply_delete_ids_sql(&s, "salesforce", &m);
    assert_string_equal(sb_str(&s),
                        "UPDATE \"salesforce\".\"teacher__c\" SET isdeleted = true, "
                        "\"_hc_lastop\" = 'SYNCED', \"_hc_err\" = NULL WHERE NOT isdeleted "
                        "AND sfid = ANY($1::text[])");
    sb_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soql),
        cmocka_unit_test(test_since_literal),
        cmocka_unit_test(test_literals_and_lists),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_upsert),
        cmocka_unit_test(test_apply_sql),
        cmocka_unit_test(test_stage_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
