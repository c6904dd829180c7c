/*
 * oauthweb: `sfbridge auth`, the OAuth 2.0 web-server flow with PKCE (S256),
 * as `heroku connect:sf:auth` and `sf org login web` do it: a loopback
 * callback (http://127.0.0.1:PORT/callback, libmicrohttpd), the authorize URL
 * printed (and opened with xdg-open on request), the code received and
 * checked against the state sent, exchanged with the code verifier, and the
 * refresh token stored in the credentials file (cfg_credentials_path; mode
 * 0600, or 0640 with the config file's group when that file is 0640), which
 * cfg_load reads from then on. The code, the verifier and the tokens are
 * never printed or logged.
 */
#ifndef OAUTHWEB_H
#define OAUTHWEB_H

#include <stdbool.h>

#include "config.h"
#include "err.h"

typedef struct oauthweb_opts {
    const char *login_url; /* where to log in (NULL: SF_LOGIN_URL) */
    int port;              /* the callback's port (0: a free one) */
    bool open;             /* run xdg-open on the authorize URL */
    long timeout_s;        /* how long to wait for the browser */
    const char *config_path;
} oauthweb_opts;

/* The whole flow; 0 once the refresh token is stored. */
int oauthweb_run(const cfg *c, const oauthweb_opts *o, err_t *e) ERR_MUST_CHECK;

/* The flow in two halves, for a callback served elsewhere (the dashboard's
 * /oauth/callback on the management API): what the second half needs. */
typedef struct oauthweb_flow {
    char login[1024];   /* the login host, no trailing slash */
    char redirect[512]; /* the callback URL sent */
    char state[64];     /* sent, and wanted back */
    char verifier[64];  /* PKCE's code verifier (secret) */
} oauthweb_flow;

/* The authorize URL (*url, the caller frees it) for login_url (NULL:
 * SF_LOGIN_URL) and the callback redirect, with a new state and PKCE pair in *f. */
int oauthweb_begin(const cfg *c, const char *login_url, const char *redirect, oauthweb_flow *f,
                   char **url, err_t *e) ERR_MUST_CHECK;
/* The code and state the callback brought: the state checked against f's,
 * the code exchanged with f's verifier, the refresh token stored; the
 * credentials file's path into path, the user's id (or "") into user. */
int oauthweb_finish(const cfg *c, const oauthweb_flow *f, const char *config_path, const char *code,
                    const char *state, char *path, size_t n, char user[64],
                    err_t *e) ERR_MUST_CHECK;

#endif
