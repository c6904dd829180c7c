/*
 * Unit tests for the writer's pure cores: folding a record's trigger-log
 * entries into one operation (fold), typed values (typed), the op-kind and
 * trigger-log state and action name tables, and the SQL tlog builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fold.h"
#include "log.h"
#include "sb.h"
#include "tlog.h"
#include "typed.h"

/* Contact: name (text), age (integer), vip (boolean), created (read-only
 * after insert), seen_at (timestamp -> datetime), school__r.ext__c (a parent
 * by external id), formula (neither createable nor updateable), uid__c (the
 * unique identifier). */
static map_field fields[] = {
    {"Id", "sfid", "id", "varchar(18)", false, false, NULL, NULL},
    {"Name", "name", "string", "varchar(80)", true, true, NULL, NULL},
    {"Age__c", "age__c", "double", "double precision", true, true, NULL, NULL},
    {"Vip__c", "vip__c", "boolean", "boolean", true, true, NULL, NULL},
    {"Created__c", "created__c", "string", "varchar(80)", true, false, NULL, NULL},
    {"Seen__c", "seen__c", "datetime", "timestamp without time zone", true, true, NULL, NULL},
    {"School__c", "school__c", "reference", "varchar(18)", true, true, "School__c", NULL},
    {"School__r.Ext__c", "school__r__ext__c", "string", "varchar(20)", true, true, "School__c",
     "School__c"},
    {"Formula__c", "formula__c", "string", "varchar(80)", false, false, NULL, NULL},
    {"Uid__c", "uid__c", "string", "varchar(36)", true, true, NULL, NULL},
};

static mapping contact = {
    .object = "Contact",
    .table = "contact",
    .read_write = true,
    .fields = fields,
    .nfields = sizeof fields / sizeof fields[0],
};

static fold_entry
ent(int64_t id, tlog_action a, const char *sfid, const char *vals)
{
    fold_entry e = {.id = id, .record_id = 7, .action = a, .sfid = sfid ? strdup(sfid) : NULL};
    if (vals)
        e.vals = json_loads(vals, 0, NULL);
    strcpy(e.sent_at, "2024-01-02T03:04:05.000Z");
    return e;
}

static void
free_all(fold_entry *es, size_t n, op *o)
{
    for (size_t i = 0; i < n; i++)
        fold_entry_free(&es[i]);
    op_free(o);
}

static const char *
str(const json_t *rec, const char *k)
{
    return json_string_value(json_object_get(rec, k));
}

static void
test_insert_then_updates_is_one_insert(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\",\"age__c\":30,\"vip__c\":false}"),
        ent(2, TLOG_UPDATE, NULL, "{\"age__c\":31}"),
        ent(3, TLOG_UPDATE, NULL, "{\"vip__c\":true}"),
    };
    fold_row row = {.record_id = 7, .row = json_object()};
    op o;
    fold_group(&contact, es, 3, &row, &o);
    assert_int_equal(o.kind, OP_INSERT);
    assert_int_equal(o.out, OUT_NONE);
    assert_string_equal(str(o.rec, "Name"), "Ann");
    assert_int_equal(json_integer_value(json_object_get(o.rec, "Age__c")), 31);
    assert_true(json_is_true(json_object_get(o.rec, "Vip__c")));
    assert_null(json_object_get(o.rec, "id"));
    /* All three entries settled, the last the survivor. */
    assert_int_equal(o.nids, 3);
    assert_int_equal(o.ids[0], 1);
    assert_int_equal(o.ids[2], 3);
    free_all(es, 3, &o);
    json_decref(row.row);
}

static void
test_updates_merge_later_wins(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_UPDATE, "003000000000001AAA", "{\"name\":\"A\",\"age__c\":1}"),
        ent(2, TLOG_UPDATE, "003000000000001AAA", "{\"name\":\"B\"}"),
        ent(3, TLOG_UPDATE, "003000000000001AAA", "{\"created__c\":\"x\",\"formula__c\":\"y\"}"),
    };
    op o;
    fold_group(&contact, es, 3, NULL, &o);
    assert_int_equal(o.kind, OP_UPDATE);
    assert_string_equal(str(o.rec, "Name"), "B");
    assert_int_equal(json_integer_value(json_object_get(o.rec, "Age__c")), 1);
    assert_string_equal(str(o.rec, "id"), "003000000000001AAA");
    /* Not updateable: never sent in an update. */
    assert_null(json_object_get(o.rec, "Created__c"));
    assert_null(json_object_get(o.rec, "Formula__c"));
    free_all(es, 3, &o);
}

static void
test_update_after_sent_insert_uses_known_sfid(void **state)
{
    (void)state;
    /* The insert went through earlier: its sfid is on the row (or in the log). */
    fold_entry es[] = {ent(5, TLOG_UPDATE, NULL, "{\"name\":\"New\"}")};
    fold_row row = {.record_id = 7, .sfid = "003000000000002AAA", .row = json_object()};
    op o;
    fold_group(&contact, es, 1, &row, &o);
    assert_int_equal(o.kind, OP_UPDATE);
    assert_string_equal(o.sfid, "003000000000002AAA");
    assert_string_equal(str(o.rec, "id"), "003000000000002AAA");
    assert_true(o.row_exists);
    free_all(es, 1, &o);
    json_decref(row.row);
}

static void
test_insert_with_sfid_becomes_update(void **state)
{
    (void)state;
    fold_entry es[] = {ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\",\"created__c\":\"c\"}")};
    fold_row row = {.record_id = 7, .sfid = "003000000000003AAA", .row = json_object()};
    op o;
    fold_group(&contact, es, 1, &row, &o);
    assert_int_equal(o.kind, OP_UPDATE);
    assert_string_equal(str(o.rec, "id"), "003000000000003AAA");
    assert_null(json_object_get(o.rec, "Created__c"));
    free_all(es, 1, &o);
    json_decref(row.row);
}

static void
test_update_of_never_sent_record_inserts_row(void **state)
{
    (void)state;
    /* Its insert was refused: the row as it is now is inserted. */
    fold_entry es[] = {ent(9, TLOG_UPDATE, NULL, "{\"age__c\":40}")};
    fold_row row = {.record_id = 7,
                    .row = json_loads("{\"id\":7,\"name\":\"Row\",\"age__c\":40,\"sfid\":null}", 0,
                                      NULL)};
    op o;
    fold_group(&contact, es, 1, &row, &o);
    assert_int_equal(o.kind, OP_INSERT);
    assert_string_equal(str(o.rec, "Name"), "Row");
    assert_null(json_object_get(o.rec, "Id"));
    free_all(es, 1, &o);
    json_decref(row.row);
}

static void
test_update_of_gone_never_sent_row_is_nothing(void **state)
{
    (void)state;
    fold_entry es[] = {ent(9, TLOG_UPDATE, NULL, "{\"age__c\":40}")};
    fold_row row = {.record_id = 7, .row = NULL};
    op o;
    fold_group(&contact, es, 1, &row, &o);
    assert_int_equal(o.kind, OP_NOTHING);
    assert_int_equal(o.out, OUT_DROPPED);
    assert_string_equal(o.lastop, "SYNCED");
    assert_false(o.row_exists);
    free_all(es, 1, &o);
}

static void
test_delete_after_insert_never_sent_is_ignored(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\"}"),
        ent(2, TLOG_DELETE, NULL, NULL),
    };
    op o;
    fold_group(&contact, es, 2, NULL, &o);
    assert_int_equal(o.kind, OP_NOTHING);
    assert_int_equal(o.out, OUT_DROPPED);
    free_all(es, 2, &o);
}

static void
test_delete_after_unknown_insert_looks_first(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\"}"),
        ent(2, TLOG_DELETE, NULL, NULL),
    };
    es[0].unknown = true;
    es[0].payload = json_loads("{\"Name\":\"Ann\"}", 0, NULL);
    es[0].attempts = 2;
    op o;
    fold_group(&contact, es, 2, NULL, &o);
    assert_int_equal(o.kind, OP_LOOKUP_DELETE);
    assert_int_equal(o.out, OUT_NONE);
    assert_true(o.unknown);
    assert_int_equal(o.attempts, 2);
    assert_string_equal(str(o.sent, "Name"), "Ann");
    free_all(es, 2, &o);
}

static void
test_delete_with_sfid_deletes(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_UPDATE, "003000000000004AAA", "{\"name\":\"x\"}"),
        ent(2, TLOG_DELETE, "003000000000004AAA", NULL),
    };
    op o;
    fold_group(&contact, es, 2, NULL, &o);
    assert_int_equal(o.kind, OP_DELETE);
    assert_string_equal(o.sfid, "003000000000004AAA");
    assert_null(o.rec);
    free_all(es, 2, &o);
}

static void
test_update_with_nothing_settable_is_nothing(void **state)
{
    (void)state;
    fold_entry es[] = {ent(1, TLOG_UPDATE, "003000000000005AAA", "{\"formula__c\":\"z\"}")};
    op o;
    fold_group(&contact, es, 1, NULL, &o);
    assert_int_equal(o.kind, OP_NOTHING);
    assert_int_equal(o.out, OUT_DROPPED);
    free_all(es, 1, &o);
}

/* An upsert may meet an existing record: the inserted row's nulls are not
 * sent (they would clear its values); a column a later UPDATE emptied is. */
static void
test_keyed_insert_is_upsert_without_nulls(void **state)
{
    (void)state;
    mapping m = contact;
    m.upsert_field = "Uid__c";
    fold_entry es[] = {
        ent(1, TLOG_INSERT, NULL, "{\"name\":null,\"uid__c\":\"u-1\",\"age__c\":null}")};
    op o;
    fold_group(&m, es, 1, NULL, &o);
    assert_int_equal(o.kind, OP_UPSERT);
    assert_string_equal(str(o.rec, "Uid__c"), "u-1");
    assert_null(json_object_get(o.rec, "Age__c"));
    assert_null(json_object_get(o.rec, "Name"));
    free_all(es, 1, &o);
    fold_entry es3[] = {
        ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\",\"uid__c\":\"u-1\",\"age__c\":3}"),
        ent(2, TLOG_UPDATE, NULL, "{\"age__c\":null,\"name\":null}"),
        ent(3, TLOG_UPDATE, NULL, "{\"name\":\"Bea\"}"),
    };
    fold_group(&m, es3, 3, NULL, &o);
    assert_int_equal(o.kind, OP_UPSERT);
    assert_true(json_is_null(json_object_get(o.rec, "Age__c")));
    assert_string_equal(str(o.rec, "Name"), "Bea");
    free_all(es3, 3, &o);
    /* Without the key set it stays an insert, and nulls are left out. */
    fold_entry es2[] = {ent(1, TLOG_INSERT, NULL, "{\"name\":\"Ann\",\"age__c\":null}")};
    fold_group(&m, es2, 1, NULL, &o);
    assert_int_equal(o.kind, OP_INSERT);
    assert_null(json_object_get(o.rec, "Age__c"));
    free_all(es2, 1, &o);
}

static void
test_latest_entry_sfid_wins_and_flags_carry(void **state)
{
    (void)state;
    fold_entry es[] = {
        ent(1, TLOG_UPDATE, NULL, "{\"name\":\"a\"}"),
        ent(2, TLOG_UPDATE, "003000000000006AAA", "{\"name\":\"b\"}"),
    };
    es[1].attempts = 3;
    es[1].unknown = true;
    strcpy(es[1].sent_at, "2030-01-01T00:00:00.000Z");
    fold_row row = {.record_id = 7, .sfid = "003000000000999AAA", .row = json_object()};
    op o;
    fold_group(&contact, es, 2, &row, &o);
    assert_int_equal(o.kind, OP_UPDATE);
    assert_string_equal(o.sfid, "003000000000006AAA");
    assert_int_equal(o.attempts, 3);
    assert_true(o.unknown);
    assert_null(o.sent);                                        /* no payload remembered */
    assert_string_equal(o.sent_at, "2024-01-02T03:04:05.000Z"); /* the first entry's */
    free_all(es, 2, &o);
    json_decref(row.row);
}

static void
test_parent_by_external_id(void **state)
{
    (void)state;
    json_t *vals = json_loads("{\"name\":\"x\",\"school__r__ext__c\":\"S-1\"}", 0, NULL);
    json_t *rec = fold_record(&contact, vals, true, NULL);
    assert_string_equal(str(json_object_get(rec, "School__r"), "Ext__c"), "S-1");
    json_decref(rec);
    /* The lookup itself set: it wins, no nested reference. */
    json_object_set_new(vals, "school__c", json_string("a00000000000001AAA"));
    rec = fold_record(&contact, vals, true, NULL);
    assert_null(json_object_get(rec, "School__r"));
    assert_string_equal(str(rec, "School__c"), "a00000000000001AAA");
    json_decref(rec);
    json_decref(vals);
}

static void
test_set_failed_and_retry(void **state)
{
    (void)state;
    op o = {.kind = OP_UPSERT};
    op_set_failed(&o, "REQUIRED_FIELD_MISSING", "Name is required", NULL);
    assert_int_equal(o.out, OUT_FAILED);
    assert_string_equal(o.lastop, "FAILED");
    assert_string_equal(o.msg, "REQUIRED_FIELD_MISSING: Name is required");
    json_t *j = json_loads(o.err_json, 0, NULL);
    assert_string_equal(str(j, "op"), "UPSERT");
    json_decref(j);
    op_set_retry(&o, "later", true);
    assert_int_equal(o.out, OUT_RETRY);
    assert_true(o.unknown);
    op_set_retry(&o, "again", false);
    assert_true(o.unknown); /* once unknown, stays unknown */
    op_free(&o);
}

/* ---- typed values ---------------------------------------------------------------- */

static json_t *
typed(const char *col, const char *text)
{
    json_t *v = json_string(text), *t = typed_value(typed_field(&contact, col), v);
    json_decref(v);
    return t;
}

static void
test_typed_values(void **state)
{
    (void)state;
    json_t *t = typed("vip__c", "t");
    assert_true(json_is_true(t));
    json_decref(t);
    t = typed("vip__c", "false");
    assert_true(json_is_false(t));
    json_decref(t);
    t = typed("vip__c", "maybe");
    assert_string_equal(json_string_value(t), "maybe");
    json_decref(t);
    t = typed("age__c", "42");
    assert_int_equal(json_integer_value(t), 42);
    json_decref(t);
    t = typed("age__c", "4.5");
    assert_true(json_is_real(t));
    json_decref(t);
    t = typed("age__c", "NaN");
    assert_true(json_is_string(t)); /* not finite: left as text */
    json_decref(t);
    t = typed("seen__c", "2024-01-02 03:04:05+05");
    assert_string_equal(json_string_value(t), "2024-01-02T03:04:05+05:00");
    json_decref(t);
    t = typed("seen__c", "2024-01-02 03:04:05.123");
    assert_string_equal(json_string_value(t), "2024-01-02T03:04:05.123");
    json_decref(t);
    t = typed("name", "42");
    assert_string_equal(json_string_value(t), "42"); /* text stays text */
    json_decref(t);
    t = typed("no_such_column", "1");
    assert_string_equal(json_string_value(t), "1");
    json_decref(t);
    json_t *raw = json_loads("{\"age__c\":\"7\",\"vip__c\":\"f\",\"name\":\"n\",\"x\":null}", 0,
                             NULL);
    typed_values(&contact, raw);
    assert_int_equal(json_integer_value(json_object_get(raw, "age__c")), 7);
    assert_true(json_is_false(json_object_get(raw, "vip__c")));
    assert_true(json_is_null(json_object_get(raw, "x")));
    json_decref(raw);
}

static void
test_sf_values(void **state)
{
    (void)state;
    map_field dt = {.sftype = "datetime"}, tm = {.sftype = "time"}, s = {.sftype = "string"};
    json_t *v = json_string("2024-01-02T03:04:05"), *t = typed_sf_value(&dt, v);
    assert_string_equal(json_string_value(t), "2024-01-02T03:04:05Z");
    json_decref(t);
    json_decref(v);
    v = json_string("2024-01-02T03:04:05+05:00");
    t = typed_sf_value(&dt, v);
    assert_string_equal(json_string_value(t), "2024-01-02T03:04:05+05:00");
    json_decref(t);
    json_decref(v);
    v = json_string("10:11:12");
    t = typed_sf_value(&tm, v);
    assert_string_equal(json_string_value(t), "10:11:12.000Z");
    json_decref(t);
    t = typed_sf_value(&s, v);
    assert_ptr_equal(t, v);
    json_decref(t);
    json_decref(v);
}

/* ---- name tables -------------------------------------------------------------------- */

static void
test_name_tables(void **state)
{
    (void)state;
    for (int k = 0; k < OP_KIND_COUNT; k++) {
        op_kind back;
        assert_non_null(op_kind_name((op_kind)k));
        assert_int_equal(op_kind_parse(op_kind_name((op_kind)k), &back), 0);
        assert_int_equal(back, k);
    }
    op_kind kk;
    assert_int_equal(op_kind_parse("merge", &kk), -1);
    assert_null(op_kind_name(OP_KIND_COUNT));
    assert_true(op_kind_creates(OP_INSERT) && op_kind_creates(OP_UPSERT) &&
                !op_kind_creates(OP_UPDATE));
    op_kinds set = OP_SET(OP_INSERT) | OP_SET(OP_UPSERT);
    assert_true(set & OP_SET(OP_UPSERT));
    assert_false(set & OP_SET(OP_DELETE));

    static const char *const states[] = {"NEW",    "PENDING", "SUCCESS",  "FAILED",  "MERGED",
                                         "IGNORE", "IGNORED", "READONLY", "REQUEUE", "REQUEUED"};
    assert_int_equal(sizeof states / sizeof states[0], TLOG_STATE_COUNT);
    for (int s = 0; s < TLOG_STATE_COUNT; s++) {
        tlog_state back;
        assert_string_equal(tlog_state_name((tlog_state)s), states[s]);
        assert_int_equal(tlog_state_parse(states[s], &back), 0);
        assert_int_equal(back, s);
    }
    tlog_state st;
    assert_int_equal(tlog_state_parse("new", &st), -1); /* exact, as stored */
    assert_int_equal(tlog_state_parse(NULL, &st), -1);
    assert_null(tlog_state_name(TLOG_STATE_COUNT));
    assert_string_equal(tlog_action_name(TLOG_INSERT), "INSERT");
    assert_string_equal(tlog_action_name(TLOG_DELETE), "DELETE");
    assert_null(tlog_action_name(TLOG_ACTION_COUNT));
}

/* ---- SQL builders --------------------------------------------------------------------- */

static void
test_tlog_sql(void **state)
{
    (void)state;
    sb s = SB_INIT;
    tlog_sql_claim(&s, "sales\"force", 10000);
    assert_non_null(
        strstr(sb_str(&s), "UPDATE \"sales\"\"force\".\"_trigger_log\" t SET state = 'PENDING'"));
    assert_non_null(strstr(sb_str(&s), "LIMIT 10000 FOR UPDATE OF l SKIP LOCKED"));
    assert_null(strstr(sb_str(&s), "%"));
    sb_clear(&s);
    tlog_sql_recover(&s, "salesforce");
    assert_non_null(strstr(sb_str(&s), "SET state = 'NEW'"));
    assert_non_null(strstr(sb_str(&s), "WHERE state = 'PENDING'"));
    sb_clear(&s);
    tlog_sql_housekeeping(&s, "salesforce");
    assert_non_null(strstr(sb_str(&s), "INSERT INTO \"salesforce\".\"_trigger_log_archive\""));
    assert_non_null(strstr(sb_str(&s), "WHERE state = 'REQUEUE'"));
    sb_clear(&s);
    tlog_sql_outcomes(&s, "salesforce");
    assert_non_null(strstr(sb_str(&s), "$6::text[]"));
    assert_null(strstr(sb_str(&s), "$7"));
    sb_clear(&s);
    tlog_sql_ddl(&s, "salesforce", "'it''s.hc_trigger_log'");
    assert_non_null(strstr(sb_str(&s), "pg_notify('it''s.hc_trigger_log', 'ping')"));
    assert_non_null(strstr(sb_str(&s), "CREATE TABLE IF NOT EXISTS \"salesforce\"._trigger_log ("));
    assert_non_null(strstr(sb_str(&s), "sfb_payload jsonb);"));
    sb_clear(&s);
    tlog_sql_not_own_write(&s, "salesforce", "'contact'", "t.id", "x.stamp");
    assert_non_null(
        strstr(sb_str(&s), " AND NOT EXISTS (SELECT 1 FROM \"salesforce\".\"_trigger_log\" o"));
    assert_non_null(
        strstr(sb_str(&s),
               " AND NOT EXISTS (SELECT 1 FROM \"salesforce\".\"_trigger_log_archive\" o"));
    /* a write in flight or tried with its answer unknown may have made the version */
    assert_non_null(strstr(sb_str(&s), "(o.state = 'PENDING' OR (o.state = 'NEW' AND "
                                       "o.sfb_attempts > 0))"));
    sb_clear(&s);
    tlog_sql_waiting_records(&s, "salesforce", "$5", "$1::int[]", "$7::bigint[]");
    assert_non_null(strstr(sb_str(&s), "l.table_name = $5"));
    assert_non_null(strstr(sb_str(&s), "l.id <> ALL($7::bigint[])"));
    sb_clear(&s);
    tlog_sql_status(&s, "\"salesforce\"");
    assert_non_null(strstr(sb_str(&s), "FROM \"salesforce\"._trigger_log)"));
    sb_free(&s);
}

int
main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_then_updates_is_one_insert),
        cmocka_unit_test(test_updates_merge_later_wins),
        cmocka_unit_test(test_update_after_sent_insert_uses_known_sfid),
        cmocka_unit_test(test_insert_with_sfid_becomes_update),
        cmocka_unit_test(test_update_of_never_sent_record_inserts_row),
        cmocka_unit_test(test_update_of_gone_never_sent_row_is_nothing),
        cmocka_unit_test(test_delete_after_insert_never_sent_is_ignored),
        cmocka_unit_test(test_delete_after_unknown_insert_looks_first),
        cmocka_unit_test(test_delete_with_sfid_deletes),
        cmocka_unit_test(test_update_with_nothing_settable_is_nothing),
        cmocka_unit_test(test_keyed_insert_is_upsert_without_nulls),
        cmocka_unit_test(test_latest_entry_sfid_wins_and_flags_carry),
        cmocka_unit_test(test_parent_by_external_id),
        cmocka_unit_test(test_set_failed_and_retry),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_sf_values),
        cmocka_unit_test(test_name_tables),
        cmocka_unit_test(test_tlog_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
