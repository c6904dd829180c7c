/*
 * pagepipe: pages fetched ahead of their loading, loaded side by side (see
 * pagepipe.h).
 */
#include "pagepipe.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"
#include "worker.h"

typedef struct pp_page {
    FILE *f;
    char *next;
    long records;
    int64_t seq; /* 0 for the first page fetched */
    struct pp_page *link;
} pp_page;

typedef struct pipe_state {
    const pp_ops *ops;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    pp_page *head, *tail; /* spooled, oldest first */
    int queued;
    int64_t fetched;   /* pages handed over (the next one's seq) */
    int64_t committed; /* pages committed: the seq whose turn it is */
    bool no_more;      /* the fetcher has stopped: load what is queued, then end */
    bool failed;       /* a page failed: the fetcher stops, later pages roll back */
    int64_t fail_seq;  /* the first page that failed */
    err_t load_err;    /* its failure */
} pipe_state;

typedef struct loader {
    pipe_state *s;
    int lane;
    worker_thread t;
} loader;

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

/* Called locked: page seq failed with e (the earliest failure is the one kept). */
static void
fail(pipe_state *s, int64_t seq, const err_t *e)
{
    if (!s->failed || seq < s->fail_seq) {
        s->fail_seq = seq;
        s->load_err = *e;
    }
    s->failed = true;
    pthread_cond_broadcast(&s->changed);
}

/* Load p, wait for its turn, commit it. Called locked, returns locked;
 * false when this loader is done (its page failed or one before it did). */
static bool
load_one(pipe_state *s, int lane, pp_page *p)
{
    const pp_ops *o = s->ops;
    pthread_mutex_unlock(&s->mu);
    rewind(p->f);
    err_t e;
    err_clear(&e);
    int rc = o->load(o->ctx, lane, p->f, p->records, &e);
    pthread_mutex_lock(&s->mu);
    if (rc != 0) {
        fail(s, p->seq, &e);
        return false;
    }
    while (s->committed != p->seq && !(s->failed && p->seq > s->fail_seq))
        pthread_cond_wait(&s->changed, &s->mu);
    bool go = s->committed == p->seq;
    pthread_mutex_unlock(&s->mu);
    if (go)
        rc = o->commit(o->ctx, lane, p->next, p->records, &e);
    if (!go || rc != 0)
        o->abort(o->ctx, lane);
    pthread_mutex_lock(&s->mu);
    if (!go)
        return false;
    if (rc != 0) {
        fail(s, p->seq, &e);
        return false;
    }
    s->committed++;
    pthread_cond_broadcast(&s->changed);
    return true;
}

static void *
loader_main(void *arg)
{
    loader *l = arg;
    pipe_state *s = l->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->no_more && !s->failed)
            pthread_cond_wait(&s->changed, &s->mu);
        pp_page *p = s->failed ? NULL : s->head; /* queued pages come after a failed one */
        if (!p)
            break;
        s->head = p->link;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        pthread_cond_broadcast(&s->changed); /* room for the fetcher */
        bool more = load_one(s, l->lane, p);
        pthread_mutex_unlock(&s->mu);
        page_free(p);
        pthread_mutex_lock(&s->mu);
        if (!more)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue a spooled page, waiting while `ahead` pages wait for a loader. False
 * when a page failed (p is freed). */
static bool
hand_over(pipe_state *s, pp_page *p, int ahead)
{
    pthread_mutex_lock(&s->mu);
    while (s->queued >= ahead && !s->failed)
        pthread_cond_wait(&s->changed, &s->mu);
    bool ok = !s->failed;
    if (ok) {
        p->seq = s->fetched++;
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

/* Fetch page after page into the queue; 0, 1 (stopped) or -1 (e filled). */
static int
fetch_all(pipe_state *s, const char *locator, int ahead, volatile sig_atomic_t *stop, err_t *e)
{
    const pp_ops *o = s->ops;
    char *at = locator ? xstrdup(locator) : NULL;
    int rc = 0;
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
        if (o->fetch(o->ctx, at, p->f, &p->next, &p->records, e) != 0) {
            page_free(p);
            rc = -1;
            break;
        }
        free(at);
        at = p->next ? xstrdup(p->next) : NULL;
        if (!hand_over(s, p, ahead))
            break; /* the loaders' failure is returned by the caller */
    }
    free(at);
    return rc;
}

int
pp_run(const char *locator, const pp_ops *ops, volatile sig_atomic_t *stop, err_t *e)
{
    pipe_state s = {.ops = ops};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.changed, NULL);
    int want = ops->loaders < 1 ? 1 : ops->loaders > PP_LOADERS_MAX ? PP_LOADERS_MAX : ops->loaders;
    loader ls[PP_LOADERS_MAX];
    int started = 0, rc = 0;
    for (int i = 0; i < want; i++) {
        ls[started] = (loader){.s = &s, .lane = started};
        if (worker_start(&ls[started].t, loader_main, &ls[started]) == 0)
            started++;
    }
    if (started == 0) {
        rc = err_set(e, 500, "THREAD", "no page loader thread could start");
        goto out;
    }
    rc = fetch_all(&s, locator, started, stop, e);
    pthread_mutex_lock(&s.mu);
    s.no_more = true;
    pthread_cond_broadcast(&s.changed);
    pthread_mutex_unlock(&s.mu);
    for (int i = 0; i < started; i++)
        worker_join(&ls[i].t);
    if (s.failed && rc != -1) { /* the first failure: a page's */
        *e = s.load_err;
        rc = -1;
    }
out:
    while (s.head) {
        pp_page *p = s.head;
        s.head = p->link;
        page_free(p);
    }
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
