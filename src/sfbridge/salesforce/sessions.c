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
    session s;
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

void
sessions_put(const char *fp, session *s)
{
    if (!s->access_token || !s->instance_url)
        return;
    pthread_mutex_lock(&sessions_mu);
    size_t i = 0;
    while (i < npublished && strcmp(published[i].fp, fp) != 0)
        i++;
    if (i == npublished)
        i = npublished < SESSIONS_MAX ? npublished++
                                      : SESSIONS_MAX - 1; /* full: the newest replaces the last */
    snprintf(published[i].fp, sizeof published[i].fp, "%s", fp);
    s->gen = ++last_gen;
    copy(&published[i].s, s);
    pthread_mutex_unlock(&sessions_mu);
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
