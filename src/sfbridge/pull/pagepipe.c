/*
 * pagepipe: pages fetched ahead of their loading (see pagepipe.h).
 */
#include "pagepipe.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"
#include "worker.h"

/* Pages spooled and not loaded yet, at most: the fetcher is this far ahead. */
#define PP_AHEAD 1

typedef struct pp_page {
    FILE *f;
    char *next;
    long records;
    struct pp_page *link;
} pp_page;

typedef struct pipe_state {
    pp_load_fn load;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    pp_page *head, *tail; /* spooled, oldest first */
    int queued;
    bool no_more;   /* the fetcher has stopped: load what is queued, then end */
    bool failed;    /* the loader failed: the fetcher stops */
    err_t load_err; /* the loader's failure */
} pipe_state;

static void
page_free(pp_page *p)
{
    if (!p)
        return;
    if (p->f)
        fclose(p->f);
    free(p->next);
    free(p);
}

static void *
loader_main(void *arg)
{
    pipe_state *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->no_more)
            pthread_cond_wait(&s->changed, &s->mu);
        pp_page *p = s->head;
        if (!p)
            break;
        s->head = p->link;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        pthread_mutex_unlock(&s->mu);
        rewind(p->f);
        err_t e;
        err_clear(&e);
        int rc = s->load(s->ctx, p->f, p->next, p->records, &e);
        page_free(p);
        pthread_mutex_lock(&s->mu);
        if (rc != 0) {
            s->failed = true;
            s->load_err = e;
            pthread_cond_broadcast(&s->changed);
            break;
        }
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue a spooled page for the loader, waiting while it is PP_AHEAD behind.
 * False when the loader failed (p is freed). */
static bool
hand_over(pipe_state *s, pp_page *p)
{
    pthread_mutex_lock(&s->mu);
    while (s->queued >= PP_AHEAD && !s->failed)
        pthread_cond_wait(&s->changed, &s->mu);
    bool ok = !s->failed;
    if (ok) {
        if (s->tail)
            s->tail->link = p;
        else
            s->head = p;
        s->tail = p;
        s->queued++;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        page_free(p);
    return ok;
}

int
pp_run(const char *locator, pp_fetch_fn fetch, pp_load_fn load, void *ctx,
       volatile sig_atomic_t *stop, err_t *e)
{
    pipe_state s = {.load = load, .ctx = ctx};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.changed, NULL);
    worker_thread loader = {0};
    char *at = NULL;
    int rc = 0;
    if (worker_start(&loader, loader_main, &s) != 0) {
        rc = err_set(e, 500, "THREAD", "the page loader thread could not start");
        goto out;
    }
    at = locator ? xstrdup(locator) : NULL;
    for (bool first = true; first || at; first = false) {
        if (stop && *stop) {
            rc = 1;
            break;
        }
        pp_page *p = xcalloc(1, sizeof *p);
        if (!(p->f = tmpfile())) {
            page_free(p);
            rc = err_set(e, 500, "SPOOL", "no temporary file for a results page");
            break;
        }
        if (fetch(ctx, at, p->f, &p->next, &p->records, e) != 0) {
            page_free(p);
            rc = -1;
            break;
        }
        free(at);
        at = p->next ? xstrdup(p->next) : NULL;
        if (!hand_over(&s, p))
            break; /* the loader's failure is returned below */
    }
    pthread_mutex_lock(&s.mu);
    s.no_more = true;
    pthread_cond_broadcast(&s.changed);
    pthread_mutex_unlock(&s.mu);
    worker_join(&loader);
    if (s.failed && rc != -1) { /* the first failure: the loader's */
        *e = s.load_err;
        rc = -1;
    }
out:
    free(at);
    while (s.head) {
        pp_page *p = s.head;
        s.head = p->link;
        page_free(p);
    }
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
