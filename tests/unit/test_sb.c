/*
 * Unit tests for sb (string builder, JSON escaping) and util (dates, numbers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sb.h"
#include "util.h"

static void
test_json_escape(void **state)
{
    sb s = SB_INIT;
    (void)state;
    sb_json_str(&s, "a\"b\\c\n\x01");
    assert_string_equal(sb_str(&s), "\"a\\\"b\\\\c\\n\\u0001\"");
    sb_clear(&s);
    sb_json_str(&s, "caf\xC3\xA9 \xFF");
    assert_string_equal(sb_str(&s), "\"caf\xC3\xA9 \xEF\xBF\xBD\"");
    sb_clear(&s);
    sb_json_str(&s, NULL);
    assert_string_equal(sb_str(&s), "null");
    sb_free(&s);
}

static void
test_json_double(void **state)
{
    sb s = SB_INIT;
    (void)state;
    sb_json_double(&s, 10);
    sb_putc(&s, ' ');
    sb_json_double(&s, 12.5);
    sb_putc(&s, ' ');
    sb_json_double(&s, 0.1);
    sb_putc(&s, ' ');
    sb_json_double(&s, -3);
    assert_string_equal(sb_str(&s), "10.0 12.5 0.1 -3.0");
    sb_free(&s);
}

static void
test_i64(void **state)
{
    sb s = SB_INIT;
    (void)state;
    sb_put_i64(&s, 0);
    sb_putc(&s, ',');
    sb_put_i64(&s, INT64_MIN);
    sb_putc(&s, ',');
    sb_put_i64(&s, 1234567);
    assert_string_equal(sb_str(&s), "0,-9223372036854775808,1234567");
    char *p = sb_steal(&s);
    assert_non_null(p);
    free(p);
}

static void
test_datetime(void **state)
{
    int64_t ms;
    char buf[32];
    (void)state;
    assert_int_equal(util_parse_datetime("2024-01-02T03:04:05.000+0000", &ms), 0);
    assert_int_equal(ms, 1704164645000LL);
    util_fmt_datetime(ms, buf);
    assert_string_equal(buf, "2024-01-02T03:04:05.000+0000");
    util_fmt_datetime_z(ms + 7, buf);
    assert_string_equal(buf, "2024-01-02T03:04:05.007Z");
    assert_int_equal(util_parse_datetime("2024-01-02T04:04:05+01:00", &ms), 0);
    assert_int_equal(ms, 1704164645000LL);
    assert_int_equal(util_parse_datetime("2024-01-02T03:04:05Z", &ms), 0);
    assert_int_equal(ms, 1704164645000LL);
    assert_int_equal(util_parse_datetime("2024-01-02", &ms), 0);
    assert_int_equal(util_parse_datetime("2023-02-29T00:00:00Z", &ms), -1);
    assert_int_equal(util_parse_datetime("2024-13-01T00:00:00Z", &ms), -1);
    assert_int_equal(util_parse_datetime("2024-01-02T03:04:05Zjunk", &ms), -1);
    assert_int_equal(util_parse_datetime("", &ms), -1);
    util_fmt_datetime(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999+0000");
}

static void
test_numbers(void **state)
{
    int64_t i;
    double d;
    (void)state;
    assert_int_equal(util_parse_i64("42", &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(util_parse_i64("42x", &i), -1);
    assert_int_equal(util_parse_i64(" 42", &i), -1);
    assert_int_equal(util_parse_i64("99999999999999999999", &i), -1);
    assert_int_equal(util_parse_double("1.5e3", &d), 0);
    assert_true(d == 1500.0);
    assert_int_equal(util_parse_double("inf", &d), -1);
}

static void
test_sql_ident(void **state)
{
    sb s = SB_INIT;
    (void)state;
    sb_sql_ident(&s, "Teacher__c");
    sb_putc(&s, ' ');
    sb_sql_ident(&s, "we\"ird");
    assert_string_equal(sb_str(&s), "\"Teacher__c\" \"we\"\"ird\"");
    sb_free(&s);
}

static void
test_url_decode(void **state)
{
    char s[] = "a%20b+c%2Fd%zz";
    (void)state;
    util_url_decode(s, true);
    assert_string_equal(s, "a b c/d%zz");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape), cmocka_unit_test(test_json_double),
        cmocka_unit_test(test_i64),         cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_numbers),     cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_sql_ident),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
