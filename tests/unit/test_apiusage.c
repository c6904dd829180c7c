/*
 * Unit tests for apiusage: the Sforce-Limit-Info header as real orgs send it,
 * anything else refused, and the share of the allowance compared without
 * overflow whatever figures the header carried.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>

#include "apiusage.h"

static void
parse(const char *v, int want_rc, long want_used, long want_max)
{
    long used = -7, max = -7;
    assert_int_equal(au_parse(v, &used, &max), want_rc);
    assert_int_equal(used, want_rc == 0 ? want_used : -7); /* untouched when refused */
    assert_int_equal(max, want_rc == 0 ? want_max : -7);
}

static void
headers_real_orgs_send(void **state)
{
    (void)state;
    parse("api-usage=10018/100000", 0, 10018, 100000);
    parse("api-usage=18/15000\r\n", 0, 18, 15000);
    parse("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)", 0, 25, 5000);
    parse("api-usage=1/15000; api-bursts=1/750", 0, 1, 15000);
    /* the per-app figures are not the org's, wherever they stand */
    parse("per-app-api-usage=17/250(appName=x); api-usage=40/5000", 0, 40, 5000);
    parse("per-app-api-usage=17/250(appName=x)", -1, 0, 0);
    parse("api-usage=16000/15000", 0, 16000,
          15000); /* over the allowance: Salesforce allows bursts */
}

static void
anything_else_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        NULL,
        "",
        "api-usage",
        "api-usage=",
        "api-usage=/5000",
        "api-usage=5",
        "api-usage=5/",
        "api-usage=-5/5000",
        "api-usage=5/-1",
        "api-usage=5/0",
        "api-usage= 5/5000",
        "api-usage=+5/5000",
        "api-usage=5/5000x",
        "api-usage=5.5/5000",
        "api-usage=99999999999999999999/5000",
        "api-usage=5/99999999999999999999",
        "xapi-usage=5/5000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse(bad[i], -1, 0, 0);
}

static void
the_share_used(void **state)
{
    (void)state;
    assert_false(au_reached(7499, 15000, 50));
    assert_true(au_reached(7500, 15000, 50));
    assert_true(au_reached(16000, 15000, 100));
    assert_true(au_reached(0, 15000, 0));
    assert_false(au_reached(0, 15000, 1));
    assert_false(au_reached(15000, 0, 50));  /* unknown allowance */
    assert_false(au_reached(15000, -1, 50)); /* not told yet */
    /* the largest figures a header can carry: no overflow (UBSan watches) */
    assert_true(au_reached(LONG_MAX, LONG_MAX, 100));
    assert_false(au_reached(LONG_MAX / 2, LONG_MAX, 51));
    assert_true(au_reached(LONG_MAX, 1, 100));
    assert_false(au_reached(1, LONG_MAX, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_real_orgs_send),
        cmocka_unit_test(anything_else_is_refused),
        cmocka_unit_test(the_share_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
