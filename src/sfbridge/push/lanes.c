/*
 * lanes: concurrent collection senders (see lanes.h).
 */
#include "lanes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "send.h"
#include "sfapi.h"
#include "util.h"
#include "worker.h"

#define LANES_MAX 64

/* A queue of jobs (first in, first out). */
typedef struct jobq {
    lane_job **v;
    size_t head, len, cap;
} jobq;

struct lanes {
    const cfg *cfg;
    lane_hooks hooks;
    int max, limit, clean, in_flight;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    jobq pending, finished;
    int nthreads;
    bool quit;
    worker_thread threads[LANES_MAX];
};

static void
q_push(jobq *q, lane_job *j)
{
    if (q->head + q->len == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->len * sizeof *q->v);
            q->head = 0;
        } else {
            q->cap = q->cap ? q->cap * 2 : 16;
            q->v = xrealloc(q->v, q->cap * sizeof *q->v);
        }
    }
    q->v[q->head + q->len++] = j;
}

static lane_job *
q_pop(jobq *q)
{
    if (!q->len)
        return NULL;
    q->len--;
    return q->v[q->head++];
}

/* Send one job on this thread's client (logged in on first use). */
static void
send_job(const cfg *c, sfapi **sf, lane_job *j)
{
    err_t e;
    err_clear(&e);
    if (!*sf) /* no in-call retries: the writer decides what may be sent again */
        *sf = app_sfapi_new(c, 0, 0, NULL);
    if (!*sfapi_instance_url(*sf) && sfapi_login(*sf, &e) != 0) {
        char why[ERR_MSG_MAX + 40];
        snprintf(why, sizeof why, "login failed: %s", e.msg);
        for (size_t i = 0; i < j->n; i++) /* nothing was sent */
            op_set_retry(j->ops[i], why, false);
        j->st.retrying += (int64_t)j->n;
        return;
    }
    send_collection(*sf, c->api_version, j->m, j->ops, j->n, &j->st);
}

/* The before hook, the send, the after hook. */
static void
run_job(const lanes *l, sfapi **sf, lane_job *j)
{
    const lane_hooks *h = &l->hooks;
    err_clear(&j->e);
    j->rc = 0;
    if (j->remember && h->before && h->before(h->ctx, j, &j->e) != 0) {
        j->rc = -1;
        return;
    }
    send_job(l->cfg, sf, j);
    if (h->after && h->after(h->ctx, j, &j->e) != 0)
        j->rc = -1;
}

static void *
lane_main(void *arg)
{
    lanes *l = arg;
    sfapi *sf = NULL;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        lane_job *j;
        while (!(j = q_pop(&l->pending)) && !l->quit)
            pthread_cond_wait(&l->work, &l->mu);
        if (!j)
            break;
        pthread_mutex_unlock(&l->mu);
        run_job(l, &sf, j);
        pthread_mutex_lock(&l->mu);
        q_push(&l->finished, j);
        pthread_cond_broadcast(&l->done);
    }
    pthread_mutex_unlock(&l->mu);
    sfapi_free(sf);
    return NULL;
}

lanes *
lanes_new(const cfg *c, int max, const lane_hooks *hooks)
{
    lanes *l = xcalloc(1, sizeof *l);
    l->cfg = c;
    if (hooks)
        l->hooks = *hooks;
    l->max = max < 1 ? 1 : max > LANES_MAX ? LANES_MAX : max;
    l->limit = l->max;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->done, NULL);
    return l;
}

void
lanes_free(lanes *l)
{
    if (!l)
        return;
    lane_job *j;
    while ((j = lanes_done(l)) != NULL)
        lane_job_free(j);
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++)
        worker_join(&l->threads[i]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->done);
    free(l->pending.v);
    free(l->finished.v);
    free(l);
}

int
lanes_limit(const lanes *l)
{
    return l->limit;
}

int
lanes_in_flight(const lanes *l)
{
    return l->in_flight;
}

void
lanes_send(lanes *l, lane_job *job)
{
    pthread_mutex_lock(&l->mu);
    q_push(&l->pending, job);
    l->in_flight++;
    pthread_cond_broadcast(&l->work); /* (every waiting thread looks; one takes it) */
    pthread_mutex_unlock(&l->mu);
    /* As many threads as collections were ever in flight together (at most
     * max): a collection never waits for a thread while the limit allows it. */
    if (l->nthreads < l->in_flight && l->nthreads < l->max) {
        if (worker_start(&l->threads[l->nthreads], lane_main, l) == 0)
            l->nthreads++;
        else if (l->nthreads == 0)
            log_warn("writer: no sending thread could be started; sending in line");
    }
}

/* TCP's rule: halve on trouble, one more after `limit` clean answers. */
static void
adapt(lanes *l, const lane_job *j)
{
    bool trouble = false;
    for (size_t i = 0; i < j->n && !trouble; i++)
        trouble = j->ops[i]->out == OUT_RETRY;
    if (trouble) {
        int was = l->limit;
        l->limit = l->limit > 1 ? l->limit / 2 : 1;
        l->clean = 0;
        if (l->limit != was)
            log_info("writer: %s: a collection came back with entries to retry; %d collections "
                     "in flight at most now (was %d)",
                     j->m->object, l->limit, was);
    } else if (++l->clean >= l->limit && l->limit < l->max) {
        l->limit++;
        l->clean = 0;
        log_debug("writer: %d collections in flight at most now", l->limit);
    }
}

lane_job *
lanes_done(lanes *l)
{
    if (l->in_flight == 0)
        return NULL;
    pthread_mutex_lock(&l->mu);
    lane_job *j;
    while (!(j = q_pop(&l->finished))) {
        if (l->nthreads == 0) /* no thread to send it: send it here */
            break;
        pthread_cond_wait(&l->done, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    if (!j) {
        sfapi *sf = NULL;
        pthread_mutex_lock(&l->mu);
        j = q_pop(&l->pending);
        pthread_mutex_unlock(&l->mu);
        run_job(l, &sf, j);
        sfapi_free(sf);
    }
    l->in_flight--;
    adapt(l, j);
    return j;
}

void
lane_job_free(lane_job *j)
{
    if (!j)
        return;
    free(j->ops);
    free(j->skipped);
    free(j);
}
