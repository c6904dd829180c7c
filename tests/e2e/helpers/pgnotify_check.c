/*
 * pgnotify_check DATABASE_URL: checks pg_wait_notify (db/pg.c) against a real
 * Postgres, for tests/e2e/test_pg_notify.py. A NOTIFY that libpq reads along
 * with a statement's results must wake the waiter at once, as one arriving
 * during the wait does; with none, the wait lasts its timeout. Prints one
 * line per case, exits 0 when all hold.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"
#include "util.h"

static int failed;

static void
check(const char *what, PGconn *c, int64_t wait_ms, bool want, int64_t max_ms)
{
    int64_t t0 = util_mono_ms();
    bool got = pg_wait_notify(c, wait_ms);
    int64_t took = util_mono_ms() - t0;
    bool ok = got == want && took <= max_ms;
    printf("%s %s: woke %s after %lld ms\n", ok ? "ok" : "not ok", what, got ? "yes" : "no",
           (long long)took);
    failed += !ok;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pgnotify_check DATABASE_URL\n");
        return 2;
    }
    err_t e;
    PGconn *l = pg_connect(argv[1], &e), *n = l ? pg_connect(argv[1], &e) : NULL;
    if (!l || !n) {
        fprintf(stderr, "pgnotify_check: %s\n", e.msg);
        return 2;
    }
    if (pg_exec(l, &e, "LISTEN pgnotify_check") != 0)
        return fprintf(stderr, "pgnotify_check: %s\n", e.msg), 2;
    check("nothing to wake for", l, 300, false, 2000);
    /* Sent, then read by the listener along with a statement's results. */
    if (pg_exec(n, &e, "NOTIFY pgnotify_check") != 0 || pg_exec(l, &e, "SELECT pg_sleep(0.2)") != 0)
        return fprintf(stderr, "pgnotify_check: %s\n", e.msg), 2;
    check("a NOTIFY read with an earlier statement's results", l, 3000, true, 500);
    check("and only once", l, 300, false, 2000);
    if (pg_exec(n, &e, "NOTIFY pgnotify_check") != 0)
        return fprintf(stderr, "pgnotify_check: %s\n", e.msg), 2;
    check("a NOTIFY on the socket", l, 3000, true, 1500);
    PQfinish(n);
    PQfinish(l);
    return failed ? 1 : 0;
}
