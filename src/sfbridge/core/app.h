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

#define APP_OVERRIDES 4

typedef struct app {
    cfg cfg;
    /* Where the settings came from, to read them again (SIGHUP): the file
     * (NULL: $SFBRIDGE_CONFIG or none) and the command line's settings. */
    const char *config_path;
    const char *over_name[APP_OVERRIDES], *over_value[APP_OVERRIDES];
    int nover;
    PGconn *pg;
    bool pg_ensured; /* the catalog was created or upgraded on pg */
    sfapi *sf;
    bool org_checked;
} app;

extern volatile sig_atomic_t app_stop;   /* set by SIGINT/SIGTERM */
extern volatile sig_atomic_t app_reload; /* set by SIGHUP (the daemon reads its settings again) */

/* The Postgres connection, catalog ensured. NULL with e filled. */
PGconn *app_pg(app *a, err_t *e);
/* The Postgres connection for reading only: nothing is created; NOT_SET_UP
 * when the schema has no catalog. */
PGconn *app_pg_read(app *a, err_t *e);
/* Close the Postgres connection (the next app_pg* opens one). */
void app_close_pg(app *a);
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
/* SIGINT and SIGTERM set app_stop; with reload, SIGHUP sets app_reload
 * (else SIGHUP stops too, as a terminal hang-up should). */
void app_install_signals(bool reload);
/* Load the settings as at start: the file (or $SFBRIDGE_CONFIG), the
 * environment, then a setting given on the command line (app_override). */
int app_load_config(app *a, err_t *e) ERR_MUST_CHECK;
/* A command-line setting (--schema, --log-level, --http), kept for reloads. */
int app_override(app *a, const char *name, const char *value, err_t *e) ERR_MUST_CHECK;
/* The settings read again into *fresh (freed by the caller on failure). */
int app_reload_config(const app *a, cfg *fresh, err_t *e) ERR_MUST_CHECK;
/* Use fresh (taken over) from now on: the connections close, to open with it. */
void app_replace_config(app *a, cfg *fresh);

#endif
