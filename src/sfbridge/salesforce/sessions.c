/*
 * sessions: the process's shared Salesforce sessions (see sessions.h).
 */
#include "sessions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SESSIONS_MAX 8

static pthread_mutex_t sessions_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char fp[LATCH_FP_LEN + 1];
    session s;      /* gen 0: none published yet (only usage noted) */
    long used, max; /* max <= 0: no usage noted yet */
} published[SESSIONS_MAX];
static size_t npublished;
static uint64_t last_gen;

static void
wipe(char **p)
{
    if (*p)
        explicit_bzero(*p, strlen(*p));
    free(*p);
    *p = NULL;
}

void
session_forget(session *s)
{
    wipe(&s->access_token);
    free(s->instance_url);
    s->instance_url = NULL;
}

static void
copy(session *to, const session *from)
{
    session_forget(to);
    to->access_token = xstrdup(from->access_token);
    to->instance_url = xstrdup(from->instance_url);
    memcpy(to->org_id, from->org_id, sizeof to->org_id);
    memcpy(to->user_id, from->user_id, sizeof to->user_id);
    to->gen = from->gen;
}

bool
sessions_take(const char *fp, session *s)
{
    bool took = false;
    pthread_mutex_lock(&sessions_mu);
    for (size_t i = 0; i < npublished; i++)
        if (strcmp(published[i].fp, fp) == 0 && published[i].s.gen > s->gen) {
            copy(s, &published[i].s);
            took = true;
            break;
        }
    pthread_mutex_unlock(&sessions_mu);
    return took;
}

/* The entry for fp, made if there is none (full: the newest replaces the
 * last). Under sessions_mu. */
static size_t
entry(const char *fp)
{
    size_t i = 0;
    while (i < npublished && strcmp(published[i].fp, fp) != 0)
        i++;
    if (i < npublished)
        return i;
    i = npublished < SESSIONS_MAX ? npublished++ : SESSIONS_MAX - 1;
    session_forget(&published[i].s);
    published[i].s.gen = 0;
    published[i].used = published[i].max = -1;
    snprintf(published[i].fp, sizeof published[i].fp, "%s", fp);
    return i;
}

void
sessions_put(const char *fp, session *s)
{
    if (!s->access_token || !s->instance_url)
        return;
    pthread_mutex_lock(&sessions_mu);
    size_t i = entry(fp);
    s->gen = ++last_gen;
    copy(&published[i].s, s);
    pthread_mutex_unlock(&sessions_mu);
}

void
sessions_note_usage(const char *fp, long used, long max)
{
    if (max <= 0)
        return;
    pthread_mutex_lock(&sessions_mu);
    size_t i = entry(fp);
    published[i].used = used;
    published[i].max = max;
    pthread_mutex_unlock(&sessions_mu);
}

bool
sessions_usage(const char *fp, long *used, long *max)
{
    bool known = false;
    pthread_mutex_lock(&sessions_mu);
    for (size_t i = 0; i < npublished && !known; i++)
        if (strcmp(published[i].fp, fp) == 0 && published[i].max > 0) {
            *used = published[i].used;
            *max = published[i].max;
            known = true;
        }
    pthread_mutex_unlock(&sessions_mu);
    return known;
}

void
sessions_clear(void)
{
    pthread_mutex_lock(&sessions_mu);
    for (size_t i = 0; i < npublished; i++)
        session_forget(&published[i].s);
    npublished = 0;
    pthread_mutex_unlock(&sessions_mu);
}
