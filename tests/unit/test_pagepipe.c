/*
 * Unit tests for pagepipe: pages fetched ahead of their loading arrive in
 * order with their locators; a fetch failure still loads what was spooled; a
 * loader failure stops the fetching; a stop request ends it between pages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagepipe.h"
#include "util.h"

/* A fake Salesforce of `pages` pages: page i holds "row i\n" i+1 times; its
 * locator is "L<i>". fail_fetch / fail_load: the page that fails (-1: none). */
typedef struct fake {
    int pages, fail_fetch, fail_load, stop_after;
    int fetched, loaded;
    long rows;
    char order[64];
    volatile sig_atomic_t stop;
} fake;

static int
fetch(void *ctx, const char *locator, FILE *f, char **next, long *records, err_t *e)
{
    fake *k = ctx;
    int i = locator ? atoi(locator + 1) : 0;
    assert_int_equal(i, k->fetched); /* one after the other, from the first */
    if (i == k->fail_fetch)
        return err_set(e, 503, "SERVER_UNAVAILABLE", "page %d: unavailable", i);
    for (int r = 0; r <= i; r++)
        fprintf(f, "row %d\n", i);
    *records = i + 1;
    *next = NULL;
    if (i + 1 < k->pages) {
        char loc[16];
        snprintf(loc, sizeof loc, "L%d", i + 1);
        *next = xstrdup(loc);
    }
    k->fetched++;
    if (k->stop_after && k->fetched == k->stop_after)
        k->stop = 1;
    return 0;
}

static int
load(void *ctx, FILE *f, const char *next, long records, err_t *e)
{
    fake *k = ctx;
    int i = k->loaded;
    if (i == k->fail_load)
        return err_set(e, 500, "XX000", "page %d: refused by Postgres", i);
    char line[64];
    long n = 0;
    while (fgets(line, sizeof line, f)) {
        int got = -1;
        assert_int_equal(sscanf(line, "row %d", &got), 1);
        assert_int_equal(got, i); /* each page whole and in order */
        n++;
    }
    assert_int_equal(n, records);
    if (i + 1 < k->pages) {
        char loc[16];
        snprintf(loc, sizeof loc, "L%d", i + 1);
        assert_string_equal(next, loc);
    } else {
        assert_null(next);
    }
    k->rows += n;
    k->order[i] = (char)('a' + i);
    k->loaded++;
    return 0;
}

static void
every_page_in_order(void **state)
{
    (void)state;
    fake k = {.pages = 20, .fail_fetch = -1, .fail_load = -1};
    err_t e;
    err_clear(&e);
    assert_int_equal(pp_run(NULL, fetch, load, &k, &k.stop, &e), 0);
    assert_int_equal(k.loaded, 20);
    assert_int_equal(k.rows, 20 * 21 / 2);
    assert_string_equal(k.order, "abcdefghijklmnopqrst");
}

static void
resumes_at_a_locator(void **state)
{
    (void)state;
    fake k = {.pages = 5, .fail_fetch = -1, .fail_load = -1, .fetched = 3, .loaded = 3};
    err_t e;
    assert_int_equal(pp_run("L3", fetch, load, &k, &k.stop, &e), 0);
    assert_int_equal(k.loaded, 5);
    assert_int_equal(k.rows, 4 + 5);
}

static void
a_fetch_failure_loads_what_was_spooled(void **state)
{
    (void)state;
    fake k = {.pages = 10, .fail_fetch = 4, .fail_load = -1};
    err_t e;
    err_clear(&e);
    assert_int_equal(pp_run(NULL, fetch, load, &k, &k.stop, &e), -1);
    assert_string_equal(e.code, "SERVER_UNAVAILABLE");
    assert_int_equal(k.loaded, 4); /* pages 0 to 3 committed: a resume starts at page 4 */
}

static void
a_load_failure_stops_the_fetching(void **state)
{
    (void)state;
    fake k = {.pages = 50, .fail_fetch = -1, .fail_load = 2};
    err_t e;
    err_clear(&e);
    assert_int_equal(pp_run(NULL, fetch, load, &k, &k.stop, &e), -1);
    assert_string_equal(e.code, "XX000");
    assert_int_equal(k.loaded, 2);
    /* pages 0 to 2, one queued behind the failing page 2 and one in hand: 0 to 4 */
    assert_true(k.fetched <= 2 + 3);
}

static void
a_stop_ends_it_between_pages(void **state)
{
    (void)state;
    fake k = {.pages = 50, .fail_fetch = -1, .fail_load = -1, .stop_after = 3};
    err_t e;
    err_clear(&e);
    assert_int_equal(pp_run(NULL, fetch, load, &k, &k.stop, &e), 1);
    assert_int_equal(k.fetched, 3);
    assert_int_equal(k.loaded, 3); /* what was fetched is loaded */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_page_in_order),
        cmocka_unit_test(resumes_at_a_locator),
        cmocka_unit_test(a_fetch_failure_loads_what_was_spooled),
        cmocka_unit_test(a_load_failure_stops_the_fetching),
        cmocka_unit_test(a_stop_ends_it_between_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
