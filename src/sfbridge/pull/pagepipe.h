/*
 * pagepipe: pages fetched ahead of their loading.
 *
 * A Bulk API 2.0 query's results come a page at a time, each page naming the
 * next (its locator). Fetching a page and loading the one before it use
 * different resources (Salesforce's round trip and the network; Postgres), so
 * pp_run overlaps them: the calling thread fetches each page into a spool
 * file (an unlinked temporary file: memory stays flat whatever the page
 * size), while a loader thread of its own loads the pages already spooled, in
 * order, one page behind. The loader alone uses what `load` touches (the
 * Postgres connection); the caller's thread alone what `fetch` touches (the
 * Salesforce client). At a real org's round-trip time the wait for the next
 * page is hidden behind the COPY of the current one.
 *
 * Failures: the first one stops both sides; pages spooled before a fetch
 * failure are still loaded (their progress commits), and the failure is
 * returned in e.
 */
#ifndef PAGEPIPE_H
#define PAGEPIPE_H

#include <stdbool.h>
#include <signal.h>
#include <stdio.h>

#include "err.h"

/* Fetch the page at locator (NULL: the first) into f; *next gets the next
 * page's locator (NULL at the end, malloc'd otherwise), *records its count. */
typedef int (*pp_fetch_fn)(void *ctx, const char *locator, FILE *f, char **next, long *records,
                           err_t *e);
/* Load one spooled page (f rewound; next and records as fetch gave them). */
typedef int (*pp_load_fn)(void *ctx, FILE *f, const char *next, long records, err_t *e);

/* Fetch from locator on, page after page, until the last page is loaded (0),
 * a failure (-1, e filled), or *stop (1: the pages fetched are loaded). */
int pp_run(const char *locator, pp_fetch_fn fetch, pp_load_fn load, void *ctx,
           volatile sig_atomic_t *stop, err_t *e);

#endif
