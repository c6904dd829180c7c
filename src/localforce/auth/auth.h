/*
 * auth: who may talk to the org.
 *
 * The OAuth 2.0 token endpoint (password, refresh_token, authorization_code,
 * client_credentials), the authorize page that issues codes, revoke, the SOAP
 * login (and logout) jsforce falls back to, the identity URL and userinfo, and
 * the session table behind them. Access tokens look like Salesforce session
 * ids ("<15-char org id>!<random>"), expire after the org's session TTL and are
 * then refused with 401 INVALID_SESSION_ID exactly as Salesforce refuses them.
 * Tokens are never logged (see log_redact()).
 */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "store.h"

typedef struct auth auth;

typedef struct lf_session {
    char user_id[19];
    char username[128];
    char client_id[128]; /* connected app that logged in, "" for SOAP */
    int64_t issued_ms;
    int64_t expires_ms;
} lf_session;

auth *auth_new(store *st);
void auth_free(auth *a);
/* Session time-to-live in seconds for tokens issued from now on. */
void auth_set_ttl(auth *a, int64_t seconds);
/* Expire every session now (fault injection, tests). */
void auth_expire_all(auth *a);

/* Check "Authorization: Bearer <t>" / "OAuth <t>" (or oauth_token=<t> in the
 * query, for the identity URL). On success copies the session into *out and
 * returns 0; otherwise fills resp with Salesforce's 401 and returns -1. */
int auth_check(auth *a, http_req *req, http_resp *resp, lf_session *out);

/* Route handlers; they reach the org through ctx_of(req) (ctx.h). */
void auth_handle_token(http_req *req, http_resp *resp);  /* POST /services/oauth2/token */
void auth_handle_revoke(http_req *req, http_resp *resp); /* POST /services/oauth2/revoke */
void auth_handle_authorize(http_req *req,
                           http_resp *resp);               /* GET|POST /services/oauth2/authorize */
void auth_handle_userinfo(http_req *req, http_resp *resp); /* GET /services/oauth2/userinfo */
void auth_handle_soap(http_req *req, http_resp *resp);     /* POST /services/Soap/u/{ver} */
void auth_handle_identity(http_req *req, http_resp *resp); /* GET /id/{org}/{user} */

#endif
