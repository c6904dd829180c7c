/*
 * control: the changes an operator asks of a running sfbridge, whoever asks
 * (the CLI or the management API): pause, resume and reload a mapping or the
 * connection. Each is a catalog flag or a state-machine event, followed by a
 * NOTIFY the daemon acts on at once. And the foreground commands (load,
 * poll, drift, push) when a daemon already syncs the schema: they ask it to
 * do the work and wait until it is done.
 */
#ifndef CONTROL_H
#define CONTROL_H

#include <stdio.h>

#include "app.h"
#include "err.h"

typedef enum {
    CONTROL_PAUSE,  /* a mapping's (or the connection's) paused flag */
    CONTROL_RESUME, /* clears the flag; a mapping in a failure state retries now (EV_RESUME) */
    CONTROL_RELOAD, /* a mapping only: RELOAD_TABLE (EV_RELOAD_REQUEST) */
} control_action;

/* Apply what to object (NULL: the whole connection; reload needs an
 * object). NOT_MAPPED (404) names an object that is not mapped. */
int control_apply(app *a, const char *object, control_action what, err_t *e) ERR_MUST_CHECK;
/* "pause", "resume", "reload" -> action; -1 for anything else. */
int control_parse(const char *name);

/* What a foreground command asks of a running daemon. */
typedef enum { ASK_LOAD, ASK_POLL, ASK_DRIFT, ASK_PUSH } control_ask;

/* Ask the daemon that holds the schema's lock to do it (load, poll, drift:
 * for objects[0..n), every mapping when n is 0; push: the writer's
 * backlog) and wait until it has, up to timeout_s (or a stop). Says what
 * happened on out. TIMEOUT when it did not finish in time. */
int control_via_daemon(app *a, control_ask what, const char *const *objects, size_t n,
                       int timeout_s, FILE *out, err_t *e) ERR_MUST_CHECK;

#endif
