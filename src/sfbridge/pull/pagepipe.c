/*
 * pagepipe: pages fetched ahead of their loading, loaded side by side (see
 * pagepipe.h).
 */
#include "pagepipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    /* fetching side by side (ops->list): the pages listed and not yet taken,
     * under plan_mu (held while listing, so one list call at a time) */
    pthread_mutex_t plan_mu;
    pthread_cond_t plan_cv; /* a listing came back */
    bool listing;           /* a list call is in flight */
    bool list_failed;       /* and failed with list_err: the pages listed still go */
    err_t list_err;
    char **listed;
    size_t nlisted, taken;
    bool more;              /* the listing goes on */
    const char *skip_to;    /* resuming: the listed pages before this one are done */
    int64_t assigned;       /* pages handed to fetchers (the next one's seq) */
    bool fetch_failed;      /* under mu: the fetching stopped at fetch_fail_seq */
    int64_t fetch_fail_seq; /* pages before it are loaded, the ones after dropped */
    err_t fetch_err;
    bool stopped; /* under mu: a fetcher saw *stop */
    volatile sig_atomic_t *stop;
    int ahead;
} pipe_state;

typedef struct loader {
    pipe_state *s;
    int lane;
    worker_thread t;
} loader;

typedef struct fetcher {
    pipe_state *s;
    int slot;
    worker_thread t;
} fetcher;

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

int
pp_spool_failed(int err, const char *what, err_t *e)
{
    err_set(e, 500, "SPOOL", "a results page could not be %s: %s", what, strerror(err));
    bool room_may_come = err == ENOSPC || err == EDQUOT || err == EMFILE || err == ENFILE;
    return err_class_set(e, room_may_come ? ERR_TRANSIENT : ERR_PERMANENT);
}

int
pp_spool_put(FILE *f, const char *data, size_t len, err_t *e)
{
    errno = 0;
    if (len && fwrite(data, 1, len, f) != len)
        return pp_spool_failed(errno ? errno : EIO, "written", e);
    return 0;
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
    int rc = o->load(o->ctx, lane, p->f, &p->records, &e);
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

/* Whether page seq is no longer wanted: a page failed to load, or the
 * fetching failed at an earlier page. */
static bool
fetching_over(pipe_state *s, int64_t seq)
{
    return s->failed || (s->fetch_failed && seq > s->fetch_fail_seq);
}

/* Queue page seq once the pages before it are queued and a loader has room
 * (fewer than `ahead` pages wait for one); false (p freed) when the fetching
 * is over before it. */
static bool
hand_over(pipe_state *s, pp_page *p, int64_t seq)
{
    pthread_mutex_lock(&s->mu);
    while (!fetching_over(s, seq) && (s->fetched != seq || s->queued >= s->ahead))
        pthread_cond_wait(&s->changed, &s->mu);
    bool ok = !fetching_over(s, seq);
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
fetch_all(pipe_state *s, const char *locator, volatile sig_atomic_t *stop, err_t *e)
{
    const pp_ops *o = s->ops;
    char *at = locator ? xstrdup(locator) : NULL;
    int rc = 0;
    int64_t seq = 0;
    for (bool first = true; first || at; first = false) {
        if (stop && *stop) {
            rc = 1;
            break;
        }
        pp_page *p = xcalloc(1, sizeof *p);
        if (!(p->f = tmpfile())) {
            rc = pp_spool_failed(errno, "created", e);
            page_free(p);
            break;
        }
        if (o->fetch(o->ctx, 0, at, p->f, &p->next, &p->records, e) != 0) {
            page_free(p);
            rc = -1;
            break;
        }
        free(at);
        at = p->next ? xstrdup(p->next) : NULL;
        if (!hand_over(s, p, seq++))
            break; /* the loaders' failure is returned by the caller */
    }
    free(at);
    return rc;
}

/* ----- fetching side by side (ops->list) ------------------------------------ */

/* The fetching stops at page seq (the earliest failure is the one kept). */
static void
fetch_fail(pipe_state *s, int64_t seq, const err_t *e)
{
    pthread_mutex_lock(&s->mu);
    if (!s->fetch_failed || seq < s->fetch_fail_seq) {
        s->fetch_fail_seq = seq;
        s->fetch_err = *e;
    }
    s->fetch_failed = true;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}

/* Called with plan_mu: locs (n of them, from the listing) appended to the
 * pages to take, but those before skip_to (a resume). */
static void
plan_add(pipe_state *s, char **locs, size_t n)
{
    if (s->taken > 0) { /* drop what was taken */
        for (size_t i = s->taken; i < s->nlisted; i++)
            s->listed[i - s->taken] = s->listed[i];
        s->nlisted -= s->taken;
        s->taken = 0;
    }
    s->listed = xrealloc(s->listed, (s->nlisted + n + 1) * sizeof *s->listed);
    for (size_t i = 0; i < n; i++) {
        if (s->skip_to && strcmp(locs[i], s->skip_to) != 0) {
            free(locs[i]); /* committed before the resume */
            continue;
        }
        s->skip_to = NULL;
        s->listed[s->nlisted++] = locs[i];
    }
    free(locs);
}

/* Called with plan_mu, which it lets go during the call: one more listing.
 * The other fetchers meanwhile take the pages listed before. */
static int
plan_list(pipe_state *s, int slot, err_t *e)
{
    const pp_ops *o = s->ops;
    char **locs = NULL;
    size_t n = 0;
    bool more = false;
    s->listing = true;
    pthread_mutex_unlock(&s->plan_mu);
    int rc = o->list(o->ctx, slot, &locs, &n, &more, e);
    pthread_mutex_lock(&s->plan_mu);
    s->listing = false;
    pthread_cond_broadcast(&s->plan_cv);
    if (rc != 0)
        return -1;
    s->more = more;
    plan_add(s, locs, n);
    if (!more && s->skip_to) {
        err_set(e, 400, "INVALID_QUERY_LOCATOR",
                "the page to resume at is not among the job's result pages: %.100s", s->skip_to);
        return err_class_set(e, ERR_PERMANENT);
    }
    return 0;
}

/* Whether no page is to be given out any more (a failure, or *stop). */
static bool
plan_over(pipe_state *s)
{
    pthread_mutex_lock(&s->mu);
    bool over = s->failed || s->fetch_failed;
    if (!over && s->stop && *s->stop)
        s->stopped = over = true;
    pthread_mutex_unlock(&s->mu);
    return over;
}

/* The next page to fetch: 0 with its locator, the one after it (NULL after
 * the last) and its seq; 1 when none is left (or the fetching is over); -1
 * when the listing failed before the page after it (the fetching stops at
 * that page). A page is given out once the one after it is listed (it
 * commits with its locator); the listing runs a round of fetches ahead, one
 * call at a time. */
static int
plan_take(pipe_state *s, int slot, char **loc, char **next, int64_t *seq)
{
    int ahead = s->ops->fetchers + 1;
    err_t e;
    err_clear(&e);
    pthread_mutex_lock(&s->plan_mu);
    int rc = 1;
    for (;;) {
        if (plan_over(s))
            break;
        size_t left = s->nlisted - s->taken;
        if (s->more && !s->listing && !s->list_failed && (int)left < ahead) {
            if (plan_list(s, slot, &e) != 0) {
                s->list_failed = true; /* the pages listed before still go */
                s->list_err = e;
            }
            continue;
        }
        if (left >= 2 || (left == 1 && !s->more)) {
            *loc = s->listed[s->taken];
            s->listed[s->taken++] = NULL;
            *next = s->taken < s->nlisted ? xstrdup(s->listed[s->taken]) : NULL;
            *seq = s->assigned++;
            rc = 0;
            break;
        }
        if (s->list_failed) { /* this page's successor is not known (or the page itself) */
            fetch_fail(s, s->assigned, &s->list_err);
            rc = -1;
            break;
        }
        if (!s->more && left == 0)
            break;                                   /* the last page is taken */
        pthread_cond_wait(&s->plan_cv, &s->plan_mu); /* for the listing in flight */
    }
    pthread_mutex_unlock(&s->plan_mu);
    return rc;
}

static void *
fetcher_main(void *arg)
{
    fetcher *f = arg;
    pipe_state *s = f->s;
    const pp_ops *o = s->ops;
    char *loc, *next;
    int64_t seq;
    while (plan_take(s, f->slot, &loc, &next, &seq) == 0) {
        err_t e;
        err_clear(&e);
        pp_page *p = xcalloc(1, sizeof *p);
        p->next = next;
        char *ignored = NULL;
        int rc = (p->f = tmpfile()) ? 0 : pp_spool_failed(errno, "created", &e);
        if (rc == 0)
            rc = o->fetch(o->ctx, f->slot, loc, p->f, &ignored, &p->records, &e);
        free(ignored);
        free(loc);
        if (rc != 0) {
            fetch_fail(s, seq, &e);
            page_free(p);
            break;
        }
        if (!hand_over(s, p, seq))
            break;
    }
    return NULL;
}

/* The listed pages fetched by up to PP_FETCHERS_MAX threads side by side;
 * 0, 1 (stopped) or -1 (e filled). */
static int
fetch_listed(pipe_state *s, const char *locator, err_t *e)
{
    const pp_ops *o = s->ops;
    int want = o->fetchers < 1 ? 1 : o->fetchers > PP_FETCHERS_MAX ? PP_FETCHERS_MAX : o->fetchers;
    fetcher fs[PP_FETCHERS_MAX];
    int started = 0;
    pthread_mutex_init(&s->plan_mu, NULL);
    pthread_cond_init(&s->plan_cv, NULL);
    s->more = true;
    s->skip_to = locator;
    for (int i = 0; i < want; i++) {
        fs[started] = (fetcher){.s = s, .slot = started};
        if (worker_start(&fs[started].t, fetcher_main, &fs[started]) == 0)
            started++;
    }
    if (started == 0)
        fetcher_main(&(fetcher){.s = s, .slot = 0}); /* on this thread, then */
    for (int i = 0; i < started; i++)
        worker_join(&fs[i].t);
    for (size_t i = s->taken; i < s->nlisted; i++)
        free(s->listed[i]);
    free(s->listed);
    pthread_cond_destroy(&s->plan_cv);
    pthread_mutex_destroy(&s->plan_mu);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->fetch_failed) {
        *e = s->fetch_err;
        rc = -1;
    } else if (s->stopped) {
        rc = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int
pp_run(const char *locator, const pp_ops *ops, volatile sig_atomic_t *stop, err_t *e)
{
    pipe_state s = {.ops = ops, .stop = stop};
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
    s.ahead = started;
    rc = ops->list ? fetch_listed(&s, locator, e) : fetch_all(&s, locator, stop, e);
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
