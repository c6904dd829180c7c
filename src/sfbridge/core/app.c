/*
 * app: lazily opened connections shared by the commands.
 */
#include "app.h"

#include <string.h>

#include "capture.h"
#include "catalog.h"
#include "locks.h"
#include "log.h"
#include "pg.h"
#include "sfjwt.h"

volatile sig_atomic_t app_stop = 0;
volatile sig_atomic_t app_reload = 0;

static void
on_signal(int sig)
{
    (void)sig;
    app_stop = 1;
}

static void
on_hangup(int sig)
{
    (void)sig;
    app_reload = 1;
}

void
app_install_signals(bool reload)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a waiting select() returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (reload)
        sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int
load_into(const app *a, cfg *c, err_t *e)
{
    if (cfg_load(c, a->config_path, e) != 0)
        return -1;
    for (int i = 0; i < a->nover; i++)
        if (cfg_set(c, a->over_name[i], a->over_value[i], e) != 0)
            return -1;
    return 0;
}

int
app_load_config(app *a, err_t *e)
{
    return load_into(a, &a->cfg, e);
}

int
app_override(app *a, const char *name, const char *value, err_t *e)
{
    if (a->nover == APP_OVERRIDES)
        return err_set(e, 500, "BAD_CONFIG", "too many settings on the command line");
    if (cfg_set(&a->cfg, name, value, e) != 0)
        return -1;
    a->over_name[a->nover] = name;
    a->over_value[a->nover++] = value;
    return 0;
}

int
app_reload_config(const app *a, cfg *fresh, err_t *e)
{
    memset(fresh, 0, sizeof *fresh);
    if (load_into(a, fresh, e) != 0)
        return -1;
    log_level lv;
    log_format lf;
    if (log_level_parse(fresh->log_level, &lv) == 0)
        log_set_level(lv);
    if (log_format_parse(fresh->log_format, &lf) == 0)
        log_set_format(lf);
    return 0;
}

void
app_replace_config(app *a, cfg *fresh)
{
    if (a->pg)
        PQfinish(a->pg);
    a->pg = NULL;
    a->pg_ensured = false;
    if (a->sf)
        sfapi_free(a->sf);
    a->sf = NULL;
    a->org_checked = false;
    cfg_free(&a->cfg);
    a->cfg = *fresh;
    memset(fresh, 0, sizeof *fresh);
}

static PGconn *
connect_db(app *a, err_t *e)
{
    if (!a->pg && cfg_require_db(&a->cfg, e) == 0)
        a->pg = pg_connect(a->cfg.database_url, e);
    return a->pg;
}

PGconn *
app_pg(app *a, err_t *e)
{
    if (a->pg && a->pg_ensured)
        return a->pg;
    PGconn *c = connect_db(a, e);
    if (!c)
        return NULL;
    if (cat_ensure(c, a->cfg.schema, e) != 0 || cap_ensure(c, a->cfg.schema, e) != 0) {
        PQfinish(c);
        a->pg = NULL;
        return NULL;
    }
    a->pg_ensured = true;
    return c;
}

PGconn *
app_pg_read(app *a, err_t *e)
{
    PGconn *c = connect_db(a, e);
    if (c && !a->pg_ensured && cat_check_exists(c, a->cfg.schema, e) != 0)
        return NULL;
    return c;
}

void
app_close_pg(app *a)
{
    if (a->pg)
        PQfinish(a->pg);
    a->pg = NULL;
    a->pg_ensured = false;
}

PGconn *
app_pg_reconnect(app *a, err_t *e)
{
    if (a->pg)
        PQfinish(a->pg);
    a->pg = NULL;
    a->pg_ensured = false;
    return app_pg(a, e);
}

sfapi *
app_sfapi_new(const cfg *c, int max_retries, long timeout_ms, volatile sig_atomic_t *abort_flag)
{
    sfapi_config sc = {
        .login_url = c->login_url,
        .client_id = c->client_id,
        .client_secret = c->client_secret,
        .username = c->username,
        .password = c->password,
        .refresh_token = c->refresh_token,
        .jwt_key_file = c->jwt_key_file,
        .jwt_audience = c->jwt_audience,
        .ca_file = c->ca_file,
        .api_version = c->api_version,
        .timeout_ms = timeout_ms,
        .max_retries = max_retries,
        .backoff_cap_ms = c->backoff_cap_ms < 8000 ? c->backoff_cap_ms : 8000,
        .abort_flag = abort_flag,
    };
    return sfapi_new(&sc);
}

/* A refused JWT bearer login, said in the settings' words. */
static void
explain_jwt(const cfg *c, const char *was, err_t *e)
{
    char aud[SFJWT_AUD_MAX];
    sfjwt_audience(c->login_url, c->jwt_audience, aud);
    const char *d = strchr(was, ':') ? strchr(was, ':') + 2 : "";
    if (strncmp(e->code, "invalid_client", 14) == 0)
        err_set(e, e->http, e->code,
                "Salesforce does not know the connected app SF_CLIENT_ID %s (%s): set it to the "
                "consumer key of the app that holds SF_JWT_KEY_FILE's certificate",
                c->client_id, was);
    else if (strstr(d, "expired"))
        err_set(e, e->http, e->code,
                "Salesforce refused the JWT bearer login as expired (%s): the assertion is valid "
                "for %d s from this machine's clock; check that the clock is right (NTP)",
                was, SFJWT_LIFETIME);
    else if (strstr(d, "audience"))
        err_set(e, e->http, e->code,
                "Salesforce refused the JWT's audience %s (%s): set SF_JWT_AUDIENCE (production: "
                "https://login.salesforce.com, sandbox: https://test.salesforce.com)",
                aud, was);
    else if (strstr(d, "approved"))
        err_set(e, e->http, e->code,
                "Salesforce refused the JWT bearer login of SF_USERNAME %s (%s): in the "
                "connected app's policies, choose \"Admin approved users are pre-authorized\" "
                "and add the user's profile or a permission set",
                c->username, was);
    else
        err_set(e, e->http, e->code,
                "Salesforce refused the JWT bearer login of SF_USERNAME %s (%s): check that "
                "SF_JWT_KEY_FILE is the private key of the certificate in the connected app of "
                "SF_CLIENT_ID, and that the user exists and is active",
                c->username, was);
}

/* A refused login, said in the settings' words: which setting to check. */
static void
explain_login(const cfg *c, err_t *e)
{
    if (!e || err_class_of(e) != ERR_AUTH)
        return;
    char was[ERR_CODE_MAX + 2 + 512];
    snprintf(was, sizeof was, "%s%s%.512s", e->code, e->msg[0] ? ": " : "", e->msg);
    sfapi_config sc = {.jwt_key_file = c->jwt_key_file,
                       .refresh_token = c->refresh_token,
                       .username = c->username,
                       .password = c->password,
                       .client_secret = c->client_secret};
    sfapi_flow flow = sfapi_flow_of(&sc);
    if (strcmp(e->code, "BAD_JWT_KEY") == 0 || strcmp(e->code, "NO_CREDENTIALS") == 0)
        ; /* already in the settings' words */
    else if (flow == SFAPI_FLOW_JWT && (strncmp(e->code, "invalid_", 8) == 0))
        explain_jwt(c, was, e);
    else if (flow == SFAPI_FLOW_CLIENT_CREDENTIALS && strcmp(e->code, "invalid_client") != 0)
        err_set(e, e->http, e->code,
                "Salesforce refused the client credentials login of SF_CLIENT_ID %s (%s): the "
                "flow needs SF_LOGIN_URL to be the org's My Domain URL, \"Enable Client "
                "Credentials Flow\" in the connected app, and a Run As user in its policies",
                c->client_id, was);
    else if (strncmp(e->code, "invalid_client", 14) == 0)
        err_set(e, e->http, e->code,
                "Salesforce refused the connected app (%s): check SF_CLIENT_ID and "
                "SF_CLIENT_SECRET (the app's consumer key and secret)",
                was);
    else if (strcmp(e->code, "invalid_grant") == 0 && flow == SFAPI_FLOW_REFRESH)
        err_set(e, e->http, e->code,
                "Salesforce refused SF_REFRESH_TOKEN (%s): it was revoked or has expired, or "
                "belongs to another connected app; get a new one (sfbridge auth)",
                was);
    else if (strcmp(e->code, "invalid_grant") == 0)
        err_set(e, e->http, e->code,
                "Salesforce refused the login of SF_USERNAME %s (%s): check SF_PASSWORD; unless "
                "the user's login IP ranges trust this machine, Salesforce wants the password "
                "followed by the user's security token. Salesforce locks a user after about 10 "
                "failed logins",
                c->username, was);
    else
        err_set(e, e->http, e->code, "Salesforce refused the login at SF_LOGIN_URL %s (%s)",
                c->login_url, was);
    err_class_set(e, ERR_AUTH);
}

sfapi *
app_sf(app *a, err_t *e)
{
    if (!a->sf) {
        if (cfg_require_sf(&a->cfg, e) != 0)
            return NULL;
        a->sf = app_sfapi_new(&a->cfg, -1, 0, NULL);
    }
    if (!a->org_checked) {
        if (sfapi_login(a->sf, e) != 0) {
            explain_login(&a->cfg, e);
            return NULL;
        }
        PGconn *c = app_pg(a, e);
        if (!c)
            return NULL;
        if (cat_set_org(c, a->cfg.schema, sfapi_org_id(a->sf), sfapi_instance_url(a->sf),
                        a->cfg.api_version, e) != 0)
            return NULL;
        a->org_checked = true;
    }
    return a->sf;
}

int
app_lock(app *a, err_t *e)
{
    PGconn *c = app_pg(a, e);
    if (!c)
        return -1;
    const char *p[] = {a->cfg.schema};
    PGresult *r = pg_query(c, e, "SELECT pg_try_advisory_lock(" LOCK_WORKER ", hashtext($1))", 1,
                           p);
    if (!r)
        return -1;
    bool got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!got)
        return err_set(e, 409, "LOCKED", "another sfbridge process is syncing schema %s",
                       a->cfg.schema);
    return 0;
}

void
app_close(app *a)
{
    if (a->pg)
        PQfinish(a->pg);
    a->pg = NULL;
    a->pg_ensured = false;
    if (a->sf)
        sfapi_free(a->sf);
    a->sf = NULL;
    cfg_free(&a->cfg);
}
