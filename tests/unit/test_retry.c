/*
 * Unit tests for retry: the one backoff rule and its presets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "retry.h"

static void
test_ceiling_doubles_to_cap(void **state)
{
    (void)state;
    const retry_policy p = {"t", 500, 8000, RETRY_JITTER_NONE};
    assert_int_equal(retry_ceiling_ms(&p, 0, 0), 500);
    assert_int_equal(retry_ceiling_ms(&p, 1, 0), 500);
    assert_int_equal(retry_ceiling_ms(&p, 2, 0), 1000);
    assert_int_equal(retry_ceiling_ms(&p, 5, 0), 8000);
    assert_int_equal(retry_ceiling_ms(&p, 1000, 0), 8000);
    assert_int_equal(retry_ceiling_ms(&p, 1000, 3000), 3000); /* cap override */
    assert_int_equal(retry_ceiling_ms(&p, 1, 100), 100);      /* cap below first */
}

static void
test_no_jitter_is_exact(void **state)
{
    (void)state;
    const retry_policy *p = &retry_presets[RETRY_STREAM];
    assert_int_equal(retry_delay_ms(p, 1, 0), 500);
    assert_int_equal(retry_delay_ms(p, 3, 0), 2000);
}

static void
test_jitter_stays_in_range(void **state)
{
    (void)state;
    for (int k = 0; k < RETRY_KIND_COUNT; k++) {
        const retry_policy *p = &retry_presets[k];
        assert_non_null(p->name);
        for (int n = 1; n < 40; n++)
            for (int i = 0; i < 50; i++) {
                long c = retry_ceiling_ms(p, n, 30000), d = retry_delay_ms(p, n, 30000);
                assert_true(d <= c);
                if (p->jitter == RETRY_JITTER_EQUAL)
                    assert_true(d >= c / 2);
                assert_true(d >= 0);
            }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_to_cap),
        cmocka_unit_test(test_no_jitter_is_exact),
        cmocka_unit_test(test_jitter_stays_in_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
