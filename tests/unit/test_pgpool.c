/*
 * Unit tests for pgpool: a connection that cannot be opened gives a clear
 * error and frees its slot (the next taker tries again instead of waiting
 * for ever), from several threads at once. The pool's use by the writer's
 * lanes, against a real Postgres, is tested end to end
 * (tests/e2e/test_writeback_concurrency.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "pgpool.h"

/* (port 1 on loopback: nothing listens there) */
#define NOWHERE "postgresql://sfbridge@127.0.0.1:1/none?connect_timeout=2"

static void
test_a_connection_that_cannot_open_is_an_error(void **state)
{
    (void)state;
    pgpool *p = pgpool_new(NOWHERE, 1, "SET jit = off");
    for (int i = 0; i < 3; i++) { /* the one slot is free again after each failure */
        err_t e;
        err_clear(&e);
        assert_null(pgpool_take(p, &e));
        assert_true(e.msg[0] != '\0');
    }
    pgpool_free(p);
}

static void *
take_once(void *arg)
{
    err_t e;
    err_clear(&e);
    return pgpool_take(arg, &e) == NULL && e.msg[0] ? arg : NULL;
}

static void
test_threads_waiting_for_a_slot_all_get_an_answer(void **state)
{
    (void)state;
    pgpool *p = pgpool_new(NOWHERE, 1, NULL);
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, take_once, p), 0);
    for (int i = 0; i < 6; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_ptr_equal(r, p);
    }
    pgpool_free(p);
}

static void
test_sizes_are_bounded(void **state)
{
    (void)state;
    /* (0 and too many are taken as 1 and PGPOOL_MAX: no crash, errors as above) */
    pgpool *a = pgpool_new(NOWHERE, 0, NULL), *b = pgpool_new(NOWHERE, 1000, NULL);
    err_t e;
    err_clear(&e);
    assert_null(pgpool_take(a, &e));
    err_clear(&e);
    assert_null(pgpool_take(b, &e));
    pgpool_free(a);
    pgpool_free(b);
    pgpool_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_connection_that_cannot_open_is_an_error),
        cmocka_unit_test(test_threads_waiting_for_a_slot_all_get_an_answer),
        cmocka_unit_test(test_sizes_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
