/*
 * pagepipe: pages fetched ahead of their loading, loaded side by side.
 *
 * A Bulk API 2.0 query's results come a page at a time, each page naming the
 * next (its locator), so pages are fetched one after the other. Fetching a
 * page and loading one use different resources (Salesforce's round trip and
 * the network; Postgres), and Postgres parses one COPY on one core. So pp_run
 * overlaps them: the calling thread fetches each page into a spool file (an
 * unlinked temporary file: memory stays flat whatever the page size), while
 * `loaders` loader threads (each with what its lane's `load` touches: its own
 * Postgres connection) load the pages spooled, several at once, each in a
 * transaction left open. Pages commit in page order, one at a time (`commit`
 * records the next page's locator with the page), so a crash resumes at the
 * first page not committed, exactly as if they had been loaded one by one.
 * The caller's thread alone uses what `fetch` touches (the Salesforce client).
 *
 * Where the pages are listed ahead (`list`: Bulk API 2.0's resultPages names
 * up to five pages at a time), `fetchers` threads fetch them side by side,
 * each with what its slot of `fetch` touches (a Salesforce client of its
 * own), and hand them to the loaders in page order; a page's `next` is then
 * the locator listed after it, and a resumed run skips the listed pages
 * before its locator.
 *
 * Failures: the first one stops the fetching; pages before a failing page
 * still commit, pages after it are rolled back (`abort`), and the failure is
 * returned in e. Pages spooled before a fetch failure are all loaded.
 */
#ifndef PAGEPIPE_H
#define PAGEPIPE_H

#include <stdbool.h>
#include <signal.h>
#include <stdio.h>

#include "err.h"

#define PP_LOADERS_MAX  8
#define PP_FETCHERS_MAX 8

typedef struct pp_ops {
    /* Fetch the page at locator (NULL: the first) into f on fetcher `slot` (0
     * without `list`); *next gets the next page's locator (NULL at the end,
     * malloc'd otherwise; not used with `list`), *records its count. */
    int (*fetch)(void *ctx, int slot, const char *locator, FILE *f, char **next, long *records,
                 err_t *e);
    /* Optional: the next pages' locators in page order (*locs malloc'd, as each
     * of them), *more false once the last page is listed; called one call at a
     * time, on any fetcher's slot. NULL: each page names the next (fetch). */
    int (*list)(void *ctx, int slot, char ***locs, size_t *n, bool *more, err_t *e);
    /* Load a spooled page (f rewound) on loader `lane` (0 to loaders - 1), its
     * transaction left open; on failure, nothing of it stays. *records: the
     * fetch's count in, the rows really loaded out (what commit is given). */
    int (*load)(void *ctx, int lane, FILE *f, long *records, err_t *e);
    /* Commit the page lane loaded, with next (the following page's locator,
     * NULL after the last): pages commit in order, one at a time. */
    int (*commit)(void *ctx, int lane, const char *next, long records, err_t *e);
    /* Roll back the page lane loaded (a page before it failed, or its commit). */
    void (*abort)(void *ctx, int lane);
    void *ctx;
    int loaders;  /* 1 to PP_LOADERS_MAX */
    int fetchers; /* with list: 1 to PP_FETCHERS_MAX */
} pp_ops;

/* A page's spool file failed with errno err (what: "written", "read",
 * "created"): SPOOL in e, transient when the disk is full, a quota reached or
 * the process out of files (room may come back: the attempt is retried as a
 * network failure is), permanent otherwise. -1. */
int pp_spool_failed(int err, const char *what, err_t *e);
/* Write len bytes of a page to its spool file f: 0, or -1 (pp_spool_failed). */
int pp_spool_put(FILE *f, const char *data, size_t len, err_t *e);

/* Fetch from locator on, page after page, until the last page is committed
 * (0), a failure (-1, e filled), or *stop (1: the pages fetched are committed).
 * With list, a locator that is never listed fails as INVALID_QUERY_LOCATOR. */
int pp_run(const char *locator, const pp_ops *ops, volatile sig_atomic_t *stop, err_t *e);

#endif
