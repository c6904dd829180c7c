/*
 * app: what every command works with: the configuration, the Postgres
 * connection (opened on first use, catalog ensured) and the Salesforce
 * client (logged in on first use, org recorded in the catalog).
 */
#ifndef APP_H
#define APP_H

#include <signal.h>

#include <libpq-fe.h>

#include "config.h"
#include "err.h"
#include "sfapi.h"

typedef struct app {
    cfg cfg;
    PGconn *pg;
    sfapi *sf;
    bool org_checked;
} app;

extern volatile sig_atomic_t app_stop; /* set by SIGINT/SIGTERM */

/* The Postgres connection, catalog ensured. NULL with e filled. */
PGconn *app_pg(app *a, err_t *e);
/* Reconnect after a lost connection. */
PGconn *app_pg_reconnect(app *a, err_t *e);
/* A new Salesforce client from the settings (the one place that maps cfg to
 * sfapi_config). max_retries: in-call retries (-1 default, 0 none: the caller
 * decides what may be sent again); timeout_ms 0 = default; abort_flag may be NULL. */
sfapi *app_sfapi_new(const cfg *c, int max_retries, long timeout_ms,
                     volatile sig_atomic_t *abort_flag);
/* The Salesforce client, logged in, org checked against the catalog. */
sfapi *app_sf(app *a, err_t *e);
/* Take the schema's worker lock (one process syncs a schema at a time). */
int app_lock(app *a, err_t *e) ERR_MUST_CHECK;
void app_close(app *a);
void app_install_signals(void);

#endif
