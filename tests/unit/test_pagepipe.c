/*
 * Unit tests for pagepipe: pages fetched ahead of their loading commit in
 * order with their locators, with one loader or several loading side by
 * side; a fetch failure still commits what was spooled; a load failure stops
 * the fetching, commits the pages before it and rolls back those after it; a
 * stop request ends it between pages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pagepipe.h"
#include "util.h"

/* A fake Salesforce of `pages` pages: page i holds "row i\n" i+1 times; its
 * locator is "L<i>". fail_fetch / fail_load: the page that fails (-1: none).
 * A fake Postgres: each lane's page is "open" from load to commit or abort.
 * slow_page loads for 50 ms; company_page waits (up to 10 s) until another
 * lane holds a page too, which only loading side by side brings about. */
typedef struct fake {
    int pages, fail_fetch, fail_load, stop_after, slow_page, company_page;
    /* listed pages (pp_ops.list): per_list locators a call, fail_list: the
     * call that fails (0: none); wait_page waits (up to 10 s) until a page
     * after it is being fetched, which only fetching side by side brings about */
    int per_list, listed, list_calls, fail_list, wait_page, later_fetching;
    int fetched, committed, aborted;
    long rows;
    char order[64];
    int open[PP_LOADERS_MAX]; /* the page each lane holds, -1: none */
    int held, most_held;      /* pages held from their load to their commit or abort */
    pthread_mutex_t mu;
    pthread_cond_t changed;
    volatile sig_atomic_t stop;
} fake;

static fake
fake_of(int pages)
{
    fake k = {.pages = pages,
              .fail_fetch = -1,
              .fail_load = -1,
              .slow_page = -1,
              .company_page = -1};
    for (int i = 0; i < PP_LOADERS_MAX; i++)
        k.open[i] = -1;
    return k;
}

/* Called locked: a page is no longer held. */
static void
let_go(fake *k)
{
    k->held--;
    pthread_cond_broadcast(&k->changed);
}

static int
fetch(void *ctx, int slot, const char *locator, FILE *f, char **next, long *records, err_t *e)
{
    (void)slot;
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

/* Called locked. */
static bool
wait_until(fake *k, const int *what, int at_least)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (*what < at_least)
        if (pthread_cond_timedwait(&k->changed, &k->mu, &until) != 0)
            return false;
    return true;
}

static int
list(void *ctx, int slot, char ***locs, size_t *n, bool *more, err_t *e)
{
    fake *k = ctx;
    assert_true(slot >= 0 && slot < PP_FETCHERS_MAX);
    if (++k->list_calls == k->fail_list)
        return err_set(e, 503, "SERVER_UNAVAILABLE", "listing %d: unavailable", k->list_calls);
    *n = 0;
    *locs = calloc((size_t)k->per_list, sizeof **locs);
    while ((int)*n < k->per_list && k->listed < k->pages) {
        char loc[16];
        snprintf(loc, sizeof loc, "L%d", k->listed++);
        (*locs)[(*n)++] = xstrdup(loc);
    }
    *more = k->listed < k->pages;
    return 0;
}

/* A listed page: fetched by any fetcher, in any order. */
static int
fetch_listed(void *ctx, int slot, const char *locator, FILE *f, char **next, long *records,
             err_t *e)
{
    (void)slot;
    fake *k = ctx;
    assert_non_null(locator);
    int i = atoi(locator + 1);
    pthread_mutex_lock(&k->mu);
    if (i > k->wait_page && k->wait_page >= 0)
        k->later_fetching++;
    pthread_cond_broadcast(&k->changed);
    if (i == k->wait_page)
        (void)wait_until(k, &k->later_fetching, 1);
    pthread_mutex_unlock(&k->mu);
    if (i == k->fail_fetch)
        return err_set(e, 503, "SERVER_UNAVAILABLE", "page %d: unavailable", i);
    for (int r = 0; r <= i; r++)
        fprintf(f, "row %d\n", i);
    *records = i + 1;
    *next = xstrdup("ignored with a list");
    pthread_mutex_lock(&k->mu);
    k->fetched++;
    if (k->stop_after && k->fetched == k->stop_after)
        k->stop = 1;
    pthread_mutex_unlock(&k->mu);
    return 0;
}

static int
load(void *ctx, int lane, FILE *f, long *records, err_t *e)
{
    fake *k = ctx;
    char line[64];
    long n = 0;
    int page = -1;
    while (fgets(line, sizeof line, f)) {
        int got = -1;
        assert_int_equal(sscanf(line, "row %d", &got), 1);
        if (page < 0)
            page = got;
        assert_int_equal(got, page); /* each page whole */
        n++;
    }
    assert_int_equal(n, *records);
    pthread_mutex_lock(&k->mu);
    assert_int_equal(k->open[lane], -1); /* a lane holds one page at a time */
    if (++k->held > k->most_held)
        k->most_held = k->held;
    pthread_cond_broadcast(&k->changed);
    if (page == k->company_page)
        (void)wait_until(k, &k->held, 2); /* alone after 10 s: most_held says so */
    pthread_mutex_unlock(&k->mu);
    if (page == k->slow_page)
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    pthread_mutex_lock(&k->mu);
    int rc = 0;
    if (page == k->fail_load) {
        rc = err_set(e, 500, "XX000", "page %d: refused by Postgres", page);
        let_go(k);
    } else {
        k->open[lane] = page;
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static int
commit(void *ctx, int lane, const char *next, long records, err_t *e)
{
    (void)e;
    fake *k = ctx;
    pthread_mutex_lock(&k->mu);
    int i = k->open[lane];
    assert_int_equal(i, k->committed); /* in page order */
    assert_int_equal(records, i + 1);
    if (i + 1 < k->pages) {
        char loc[16];
        snprintf(loc, sizeof loc, "L%d", i + 1);
        assert_string_equal(next, loc);
    } else {
        assert_null(next);
    }
    k->rows += records;
    k->order[i] = (char)('a' + i);
    k->committed++;
    k->open[lane] = -1;
    let_go(k);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

static void
abort_page(void *ctx, int lane)
{
    fake *k = ctx;
    pthread_mutex_lock(&k->mu);
    if (k->open[lane] >= 0) {
        k->aborted++;
        let_go(k);
    }
    k->open[lane] = -1;
    pthread_mutex_unlock(&k->mu);
}

static int
run_with(fake *k, const char *locator, int loaders, int fetchers, err_t *e)
{
    pp_ops o = {.fetch = fetchers ? fetch_listed : fetch,
                .list = fetchers ? list : NULL,
                .load = load,
                .commit = commit,
                .abort = abort_page,
                .ctx = k,
                .loaders = loaders,
                .fetchers = fetchers};
    err_clear(e);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->changed, NULL);
    int rc = pp_run(locator, &o, &k->stop, e);
    for (int i = 0; i < PP_LOADERS_MAX; i++)
        assert_int_equal(k->open[i], -1); /* nothing left open */
    assert_int_equal(k->held, 0);
    pthread_cond_destroy(&k->changed);
    pthread_mutex_destroy(&k->mu);
    return rc;
}

static int
run(fake *k, const char *locator, int loaders, err_t *e)
{
    return run_with(k, locator, loaders, 0, e);
}

static void
every_page_in_order(void **state)
{
    (void)state;
    for (int loaders = 1; loaders <= 3; loaders++) {
        fake k = fake_of(20);
        if (loaders == 1)
            k.slow_page = 2; /* nothing else loads meanwhile */
        else
            k.company_page = 2; /* a page after it loads meanwhile */
        err_t e;
        assert_int_equal(run(&k, NULL, loaders, &e), 0);
        assert_int_equal(k.committed, 20);
        assert_int_equal(k.rows, 20 * 21 / 2);
        assert_string_equal(k.order, "abcdefghijklmnopqrst");
        /* side by side, no more than asked */
        assert_true(loaders == 1 ? k.most_held == 1 : k.most_held >= 2 && k.most_held <= loaders);
    }
}

static void
resumes_at_a_locator(void **state)
{
    (void)state;
    fake k = fake_of(5);
    k.fetched = k.committed = 3;
    err_t e;
    assert_int_equal(run(&k, "L3", 2, &e), 0);
    assert_int_equal(k.committed, 5);
    assert_int_equal(k.rows, 4 + 5);
}

static void
a_fetch_failure_loads_what_was_spooled(void **state)
{
    (void)state;
    fake k = fake_of(10);
    k.fail_fetch = 4;
    err_t e;
    assert_int_equal(run(&k, NULL, 2, &e), -1);
    assert_string_equal(e.code, "SERVER_UNAVAILABLE");
    assert_int_equal(k.committed, 4); /* pages 0 to 3 committed: a resume starts at page 4 */
}

static void
a_load_failure_stops_the_fetching(void **state)
{
    (void)state;
    for (int loaders = 1; loaders <= 2; loaders++) {
        fake k = fake_of(50);
        k.fail_load = 2;
        k.slow_page = 1; /* with two loaders page 2 fails while page 1 still loads */
        err_t e;
        assert_int_equal(run(&k, NULL, loaders, &e), -1);
        assert_string_equal(e.code, "XX000");
        assert_int_equal(k.committed, 2); /* the pages before it commit */
        /* pages after it are rolled back: a resume starts at page 2 */
        assert_true(k.fetched <= 2 + 1 + 2 * loaders);
    }
}

static void
a_stop_ends_it_between_pages(void **state)
{
    (void)state;
    fake k = fake_of(50);
    k.stop_after = 3;
    err_t e;
    assert_int_equal(run(&k, NULL, 2, &e), 1);
    assert_int_equal(k.fetched, 3);
    assert_int_equal(k.committed, 3); /* what was fetched is committed */
}

static fake
listed_fake(int pages, int per_list)
{
    fake k = fake_of(pages);
    k.per_list = per_list;
    k.wait_page = -1;
    return k;
}

static void
listed_pages_fetched_side_by_side(void **state)
{
    (void)state;
    for (int fetchers = 1; fetchers <= 4; fetchers++) {
        fake k = listed_fake(20, 5);
        if (fetchers > 1)
            k.wait_page = 1; /* a page after it is fetched meanwhile */
        err_t e;
        assert_int_equal(run_with(&k, NULL, 2, fetchers, &e), 0);
        assert_int_equal(k.committed,
                         20); /* each page once, in order, with the next one's locator */
        assert_int_equal(k.rows, 20 * 21 / 2);
        assert_string_equal(k.order, "abcdefghijklmnopqrst");
        assert_int_equal(k.list_calls, 4);
        assert_true(fetchers == 1 || k.later_fetching >= 1);
    }
}

/* A spool file on a full disk (/dev/full answers every write with ENOSPC):
 * SPOOL, transient, since room may come back and the attempt is then retried
 * soon; a failure that no waiting mends (a file not open for writing) is
 * permanent. */
static void
spool_failures_are_classed(void **state)
{
    (void)state;
    FILE *full = fopen("/dev/full", "w");
    assert_non_null(full);
    setvbuf(full, NULL, _IONBF, 0); /* the write itself fails, not a later flush */
    err_t e;
    err_clear(&e);
    assert_int_equal(pp_spool_put(full, "row 1\n", 6, &e), -1);
    assert_string_equal(e.code, "SPOOL");
    assert_non_null(strstr(e.msg, "No space left on device"));
    assert_int_equal(err_class_of(&e), ERR_TRANSIENT);
    fclose(full);
    err_clear(&e);
    assert_int_equal(pp_spool_put(stdin, "", 0, &e), 0); /* nothing to write */
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    err_clear(&e);
    assert_int_equal(pp_spool_put(ro, "row 1\n", 6, &e), -1);
    assert_string_equal(e.code, "SPOOL");
    assert_int_equal(err_class_of(&e), ERR_PERMANENT);
    fclose(ro);
}

static void
listed_resume_skips_to_its_page(void **state)
{
    (void)state;
    fake k = listed_fake(12, 5);
    k.committed = 7;
    err_t e;
    assert_int_equal(run_with(&k, "L7", 2, 3, &e), 0);
    assert_int_equal(k.committed, 12);
    assert_int_equal(k.fetched, 5); /* pages 7 to 11 only */
    assert_int_equal(k.rows, 8 + 9 + 10 + 11 + 12);

    fake gone = listed_fake(12, 5);
    assert_int_equal(run_with(&gone, "L99", 2, 3, &e), -1);
    assert_string_equal(e.code, "INVALID_QUERY_LOCATOR");
    assert_int_equal(gone.committed, 0);
    assert_int_equal(gone.fetched, 0);
}

static void
listed_failures_commit_the_pages_before(void **state)
{
    (void)state;
    for (int fetchers = 1; fetchers <= 3; fetchers++) {
        fake k = listed_fake(20, 5);
        k.fail_fetch = 6;
        err_t e;
        assert_int_equal(run_with(&k, NULL, 2, fetchers, &e), -1);
        assert_string_equal(e.code, "SERVER_UNAVAILABLE");
        assert_int_equal(k.committed, 6); /* a resume starts at page 6 */
    }
    fake l = listed_fake(20, 3);
    l.fail_list = 2; /* pages 0 to 2 listed; page 2's successor is never known */
    err_t e;
    assert_int_equal(run_with(&l, NULL, 2, 3, &e), -1);
    assert_string_equal(e.code, "SERVER_UNAVAILABLE");
    assert_int_equal(l.committed, 2);

    fake s = listed_fake(50, 5);
    s.stop_after = 3;
    assert_int_equal(run_with(&s, NULL, 2, 1, &e), 1);
    assert_int_equal(s.committed, s.fetched); /* what was fetched is committed */
    assert_true(s.fetched >= 3 && s.fetched < 50);
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
        cmocka_unit_test(listed_pages_fetched_side_by_side),
        cmocka_unit_test(spool_failures_are_classed),
        cmocka_unit_test(listed_resume_skips_to_its_page),
        cmocka_unit_test(listed_failures_commit_the_pages_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
