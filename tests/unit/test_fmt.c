/*
 * Unit tests for fmt: every field type written as Salesforce's REST JSON,
 * nulls, numbers, datetimes, escaping, and the "attributes" object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fmt.h"

static sqlite3 *db;

static int
open_db(void **state)
{
    (void)state;
    return sqlite3_open(":memory:", &db) == SQLITE_OK ? 0 : -1;
}

static int
close_db(void **state)
{
    (void)state;
    sqlite3_close(db);
    return 0;
}

/* fmt_value of the single column of `SELECT <expr>` for a field of type t. */
static void
check(lf_ftype t, const char *expr, const char *want)
{
    char sql[512];
    sqlite3_stmt *q;
    lf_field f;
    memset(&f, 0, sizeof f);
    f.name = (char *)"F__c";
    f.type = t;
    snprintf(sql, sizeof sql, "SELECT %s", expr);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    sb out = SB_INIT;
    fmt_value(&out, &f, q, 0);
    sqlite3_finalize(q);
    if (strcmp(sb_str(&out), want) != 0)
        fail_msg("type %s, SELECT %s: got %s, want %s", lf_types[t].name, expr, sb_str(&out), want);
    sb_free(&out);
}

static void
test_nulls(void **state)
{
    (void)state;
    for (int t = 0; t < FT__COUNT; t++)
        check((lf_ftype)t, "NULL", "null");
    /* an empty text is null too */
    check(FT_STRING, "''", "null");
    check(FT_TEXTAREA, "''", "null");
}

static void
test_text(void **state)
{
    (void)state;
    check(FT_STRING, "'Acme'", "\"Acme\"");
    check(FT_EMAIL, "'a@b.org'", "\"a@b.org\"");
    check(FT_PHONE, "'+1 555'", "\"+1 555\"");
    check(FT_URL, "'https://x.org/?a=1&b=2'", "\"https://x.org/?a=1&b=2\"");
    check(FT_PICKLIST, "'On leave'", "\"On leave\"");
    check(FT_MULTIPICKLIST, "'Math;Art'", "\"Math;Art\"");
    check(FT_ID, "'001000000000001AAA'", "\"001000000000001AAA\"");
    check(FT_REFERENCE, "'a01000000000001AAA'", "\"a01000000000001AAA\"");
    check(FT_TIME, "'08:30:00.000Z'", "\"08:30:00.000Z\"");
}

static void
test_escaping(void **state)
{
    (void)state;
    check(FT_STRING, "'say \"hi\"'", "\"say \\\"hi\\\"\"");
    check(FT_STRING, "'back\\slash'", "\"back\\\\slash\"");
    check(FT_TEXTAREA, "'a' || char(10) || 'b' || char(9) || 'c' || char(13)", "\"a\\nb\\tc\\r\"");
    check(FT_STRING, "char(1)", "\"\\u0001\"");
    check(FT_STRING, "'caf' || char(233)", "\"caf\xc3\xa9\"");
    check(FT_STRING, "'</script>'", "\"</script>\"");
    /* invalid UTF-8 bytes become U+FFFD */
    check(FT_STRING, "CAST(x'41ff42' AS TEXT)",
          "\"A\xef\xbf\xbd"
          "B\"");
}

static void
test_numbers(void **state)
{
    (void)state;
    check(FT_INT, "42", "42");
    check(FT_INT, "-7", "-7");
    check(FT_INT, "9007199254740993", "9007199254740993");
    check(FT_DOUBLE, "10.0", "10.0");
    check(FT_DOUBLE, "10", "10.0");
    check(FT_DOUBLE, "12.5", "12.5");
    check(FT_DOUBLE, "0.1", "0.1");
    check(FT_DOUBLE, "-3.0", "-3.0");
    check(FT_CURRENCY, "1234.56", "1234.56");
    check(FT_CURRENCY, "0", "0.0");
    check(FT_PERCENT, "99.5", "99.5");
}

static void
test_booleans(void **state)
{
    (void)state;
    check(FT_BOOLEAN, "1", "true");
    check(FT_BOOLEAN, "0", "false");
}

static void
test_dates(void **state)
{
    (void)state;
    check(FT_DATETIME, "0", "\"1970-01-01T00:00:00.000+0000\"");
    check(FT_DATETIME, "1704164645123", "\"2024-01-02T03:04:05.123+0000\"");
    check(FT_DATETIME, "951782400000", "\"2000-02-29T00:00:00.000+0000\"");
    check(FT_DATETIME, "-1", "\"1969-12-31T23:59:59.999+0000\"");
    check(FT_DATE, "'2024-01-02'", "\"2024-01-02\"");
}

static void
test_attributes(void **state)
{
    sb out = SB_INIT;
    (void)state;
    fmt_attributes(&out, "Account", "59.0", "001000000000001AAA");
    assert_string_equal(sb_str(&out), "{\"type\":\"Account\",\"url\":\"/services/data/v59.0/"
                                      "sobjects/Account/001000000000001AAA\"}");
    sb_clear(&out);
    fmt_attributes(&out, "Teacher__c", NULL, "a01000000000001AAA");
    assert_string_equal(sb_str(&out), "{\"type\":\"Teacher__c\",\"url\":\"/services/data/v59.0/"
                                      "sobjects/Teacher__c/a01000000000001AAA\"}");
    sb_clear(&out);
    fmt_attributes(&out, "AggregateResult", "60.0", NULL);
    assert_string_equal(sb_str(&out), "{\"type\":\"AggregateResult\"}");
    sb_clear(&out);
    /* odd characters are escaped, never copied raw */
    fmt_attributes(&out, "X", "5\"9", "i\\d");
    assert_string_equal(sb_str(&out),
                        "{\"type\":\"X\",\"url\":\"/services/data/v5\\\"9/sobjects/X/i\\\\d\"}");
    sb_free(&out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, open_db, close_db)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_nulls),
        T(test_text),
        T(test_escaping),
        T(test_numbers),
        T(test_booleans),
        T(test_dates),
        cmocka_unit_test(test_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
