/*
 * catalog_conn: the connection row (_sfbridge_connection: org, connection
 * state, pause, the daemon's heartbeat) and Heroku Connect's _hcmeta.
 */
#include "catalog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog_int.h"
#include "pg.h"
#include "util.h"

int
cat_set_org(PGconn *c, const char *schema, const char *org_id, const char *instance_url,
            const char *api_version, err_t *e)
{
    char *have = NULL, *ver = NULL;
    if (cat_get_org(c, schema, &have, &ver, e) != 0)
        return -1;
    /* Compare the 15-character prefix: the same org may be named by 15 or 18 chars. */
    if (have && *have && strncmp(have, org_id, 15) != 0) {
        err_set(e, 409, "ORG_MISMATCH",
                "schema %s is connected to org %s, not %s; a connection cannot move to another org "
                "(use a new schema)",
                schema, have, org_id);
        free(have);
        free(ver);
        return -1;
    }
    free(have);
    free(ver);
    const char *p[] = {org_id, instance_url, api_version};
    if (cat_run(c, schema,
                "UPDATE %1$s._sfbridge_connection SET org_id = $1, instance_url = $2, "
                "api_version = $3, updated_at = now()",
                3, p, e) != 0)
        return -1;
    return cat_run(c, schema, "UPDATE %1$s._hcmeta SET org_id = $1", 1, p, e);
}

int
cat_get_org(PGconn *c, const char *schema, char **org_id, char **api_version, err_t *e)
{
    PGresult *r = cat_query(c, schema, "SELECT org_id, api_version FROM %1$s._sfbridge_connection",
                            0, NULL, e);
    if (!r)
        return -1;
    *org_id = PQntuples(r) && !PQgetisnull(r, 0, 0) ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    if (api_version)
        *api_version = PQntuples(r) && !PQgetisnull(r, 0, 1) ? xstrdup(PQgetvalue(r, 0, 1)) : NULL;
    PQclear(r);
    return 0;
}

int
cat_set_conn_state(PGconn *c, const char *schema, conn_state state, const char *error, err_t *e)
{
    const char *p[] = {fsm_conn_name(state), error};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_connection SET state = $1, last_error = $2, "
                   "updated_at = now() WHERE state IS DISTINCT FROM $1 OR last_error IS DISTINCT "
                   "FROM $2",
                   2, p, e);
}

int
cat_conn_paused(PGconn *c, const char *schema, bool *paused, err_t *e)
{
    PGresult *r = cat_query(c, schema, "SELECT paused FROM %1$s._sfbridge_connection", 0, NULL, e);
    if (!r)
        return -1;
    *paused = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return 0;
}

int
cat_set_conn_paused(PGconn *c, const char *schema, bool paused, err_t *e)
{
    if (paused)
        return cat_run(c, schema, "UPDATE %1$s._sfbridge_connection SET paused = true", 0, NULL, e);
    const char *p[] = {fsm_conn_name(CS_IDLE)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_connection SET paused = false, state = $1, last_error = "
                   "NULL",
                   1, p, e);
}

int
cat_heartbeat(PGconn *c, const char *schema, conn_state state, err_t *e)
{
    char pid[16], host[256] = "";
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    /* A host name that does not fit is cut (and shown cut): nothing depends on it. */
    (void)gethostname(host, sizeof host - 1);
    const char *p[] = {pid,
                       host,
                       fsm_conn_name(state),
                       fsm_conn_name(CS_IDLE),
                       fsm_conn_name(CS_NEED_AUTHENTICATION),
                       fsm_conn_name(CS_OFFLINE)};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_connection SET daemon_pid = $1::int, daemon_host = $2,"
                   " heartbeat_at = now(),"
                   /* an outage's error goes once the connection is idle again after it */
                   " last_error = CASE WHEN $3::text = $4::text AND state NOT IN ($5::text,"
                   " $6::text) THEN NULL ELSE last_error END,"
                   " state = CASE WHEN state IN ($5::text, $6::text) AND $3::text = $4::text"
                   " THEN state ELSE $3::text END",
                   6, p, e);
}

int
cat_heartbeat_clear(PGconn *c, const char *schema, const char *error, err_t *e)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *p[] = {pid, error};
    return cat_run(c, schema,
                   "UPDATE %1$s._sfbridge_connection SET heartbeat_at = NULL,"
                   " last_error = coalesce($2, last_error) WHERE daemon_pid = $1::int",
                   2, p, e);
}

int
cat_notify(PGconn *c, const char *schema, err_t *e)
{
    const char *p[] = {schema};
    return pg_run(c, e, "SELECT pg_notify('sfbridge_control', $1)", 1, p);
}
